"""Load tests, the price catalog and right-sizing: the pages and the /api/v1 routes.

Pages (login, CSRF on every POST form, POST/redirect/GET):
  /tenants/<slug>/loadtests                  history (a page at a time) and upload form
  /tenants/<slug>/loadtests/<id>             one run; set its price, re-price it, delete it
  /tenants/<slug>/loadtests/compare?ids=…    charts, table, price-performance
  /tenants/<slug>/loadtests/compare.csv|json exports
  /tenants/<slug>/prices                     the tenant's catalog; admins edit its rows
  /tenants/<slug>/collectors/<id>/rightsizing
API (JSON errors naming the field):
  POST /api/v1/loadtests                     collector key: into the key's tenant and collector
  /api/v1/tenants/<slug>/loadtests[/<id>[/price|/reprice]], /loadtests/compare, /prices[/<id>],
  /collectors/<id>/rightsizing

Every read is scoped by the tenant in the URL, which the caller must belong to: another
tenant's run, price or collector answers 404, as if it did not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from tenants import csvsafe, validation
from tenants import db as database
from tenants.access import Actor, role_in, tenant_for
from tenants.collectors import collectors_page, get_collector
from tenants.errors import Invalid, NotFound, ServiceError
from tenants.loadtests import advice as advising
from tenants.loadtests import compare as comparing
from tenants.loadtests import prices, runs, serialize
from tenants.loadtests.cpu_history import CpuHistory, InfluxCpuHistory, NoCpuHistory
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.openapi_paths import (
    IDS_PATTERN,
    OPTIONAL_PRICE_FIELDS,
    PRICE_FIELDS,
    components,
    paths,
)
from tenants.models import AuditEvent, Collector, Tenant
from tenants.views.api import list_arguments, listed
from tenants.views.pages import PAGE_ROWS, Failure, form_failure
from tenants.web import MAX_ROW_ID, ROW_ID, collector_endpoint, current_actor

pages = Blueprint("loadtests", __name__)
api = Blueprint("loadtests_api", __name__, url_prefix="/api/v1")

LABEL_LENGTH = 100
SEARCH_LENGTH = 253  # the longest hostname
HISTORY_EXTENSION = "pa_cpu_history"
# the most runs chosen for a comparison that the history page keeps while it pages; more than
# a comparison takes (runs.MAX_COMPARED): the form's hint says when too many are chosen
MAX_CHOSEN_KEPT = 5 * runs.MAX_COMPARED


def init_app(app: Flask) -> None:
    app.register_blueprint(pages)
    app.register_blueprint(api)
    settings = app.config["PA_SETTINGS"]
    history: CpuHistory = NoCpuHistory()
    if settings.get("influxdb_url"):
        history = InfluxCpuHistory(settings["influxdb_url"], app.extensions["pa_vault"])
    app.extensions.setdefault(HISTORY_EXTENSION, history)


def openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.0 path items of the routes under /api/v1 (relative to the server URL)."""
    return paths()


def openapi_components() -> dict[str, Any]:
    """Components the path items refer to besides the existing ones (the collector key scheme)."""
    return components()


# ---- shared helpers ---------------------------------------------------------------------------


def _db() -> Session:
    return database.session()


def _actor() -> Actor:
    return current_actor()


def _tenant(slug: str, need: str = "read") -> Tenant:
    return tenant_for(_db(), _actor(), slug, need)


def _history() -> CpuHistory:
    history: CpuHistory = current_app.extensions[HISTORY_EXTENSION]
    return history


def _id(text: str, field: str, what: str) -> int:
    if (
        not (text.isascii() and text.isdigit() and len(text) <= 10)
        or not 1 <= int(text) <= MAX_ROW_ID
    ):
        raise Invalid(f"{field} must be a {what} id (a whole number)", field)
    return int(text)


def _optional_id(text: str | None, field: str, what: str) -> int | None:
    text = (text or "").strip()
    return _id(text, field, what) if text else None


def _query_id(name: str, what: str) -> int | None:
    """An id in the API's query string: absent, or digits and nothing else."""
    text = request.args.get(name)
    return None if text is None else _id(text, name, what)


def _ids_argument() -> list[int]:
    """``ids=3,5`` or ``ids=3&ids=5`` (the history page's checkboxes), in the order given."""
    parts = [part.strip() for value in request.args.getlist("ids") for part in value.split(",")]
    return [_id(part, "ids", "load test") for part in parts if part]


def _compared_ids() -> list[int]:
    ids = _ids_argument()
    if not ids:
        raise Invalid("ids: choose 2 to 10 load tests to compare", "ids")
    return ids


def _comparison(tenant: Tenant) -> comparing.Comparison:
    ids = _compared_ids()
    baseline = _optional_id(request.args.get("baseline"), "baseline", "load test")
    found = runs.runs_by_ids(_db(), _actor(), tenant, ids)
    return comparing.compare(found, baseline, max_price_age_days=_max_price_age_days(),
                             global_prices=prices.global_counterparts(_db(), found))  # fmt: skip


def _max_price_age_days() -> int:
    days: int = current_app.config["PA_SETTINGS"].get(
        "loadtests_price_max_age_days", comparing.DEFAULT_MAX_PRICE_AGE_DAYS
    )
    return days


# ---- pages ------------------------------------------------------------------------------------


@pages.errorhandler(ServiceError)
def _page_error(error: ServiceError) -> ResponseReturnValue:
    return render_template("error.html", status=error.status, message=error.message), error.status


def _perms(tenant: Tenant) -> dict[str, Any]:
    actor = _actor()
    role = role_in(_db(), actor.user, tenant) if actor.user else None
    platform = actor.is_platform_admin
    label = ("platform admin" + (f" (and {role})" if role else "")) if platform else (role or "")
    return {"role": role, "platform": platform, "label": label,
            "admin": platform or role == "admin",
            "analyze": platform or role in ("admin", "analyst")}  # fmt: skip


def _render(
    template: str, tenant: Tenant, status: int = 200, **context: Any
) -> ResponseReturnValue:
    return render_template(template, tenant=tenant, perms=_perms(tenant), **context), status


@pages.app_template_filter("pa_usd")
def _usd(value: Decimal) -> str:
    """Dollars exactly as stored (up to six decimals), as the prices page shows them: a price
    rounded for display would disagree with the units per $/hour computed from it."""
    return f"{value.normalize():f}"


@pages.app_template_filter("pa_units_per_usd")
def _units_per_usd(value: Decimal | None) -> str:
    """Units per $/hour to the cent, as every page shows them: a positive value under half a
    cent is "< 0.01", not 0.00; none is an en dash."""
    if value is None:
        return "\N{EN DASH}"
    if value == 0:
        return "< 0.01"
    return f"{value:,.2f}"


@pages.get("/tenants/<slug>/loadtests")
def history(slug: str) -> ResponseReturnValue:
    return _history_page(_tenant(slug))


def _history_page(tenant: Tenant, failure: Failure | None = None) -> ResponseReturnValue:
    """A page of the runs, newest first (``?cursor=``), with the runs chosen for a comparison
    (``?ids=``) kept checked while the list pages: the form's page links send the choice along.
    Only the list pages; a comparison is made of the runs chosen, wherever they were listed. A
    refused upload shows the first page.

    The upload form offers a page of the collectors by name, those found by ``?q=`` (part of a
    name or hostname, as on the tenant's page), not the whole fleet; a refused upload keeps its
    search and offers the collector it had chosen."""
    db, actor = _db(), _actor()
    cursor = None if failure else request.args.get("cursor") or None
    page = runs.runs_page(db, actor, tenant, PAGE_ROWS, cursor)
    chosen = [] if failure else list(dict.fromkeys(_ids_argument()))[:MAX_CHOSEN_KEPT]
    on_this_page = {found.id for found in page.items}
    search = _collector_search(failure)
    found_collectors = collectors_page(db, actor, tenant, PAGE_ROWS, search=search)
    return _render(
        "loadtests.html", tenant, failure.status if failure else 200,
        runs=page.items, next_cursor=page.next_cursor, page_rows=PAGE_ROWS, chosen=set(chosen),
        chosen_ids=chosen,
        chosen_elsewhere=[found for found in runs.selected_runs(db, actor, tenant, chosen)
                          if found.id not in on_this_page],
        collectors=_with_kept(found_collectors.items, _kept_collector(db, tenant, failure)),
        more_collectors=found_collectors.next_cursor is not None, search=search,
        catalog=prices.effective_catalog(db, tenant), failure=failure,
        error=failure.message if failure else None,
        price_performance=comparing.price_performance,
    )  # fmt: skip


def _collector_search(failure: Failure | None) -> str:
    """The upload form's collector search: the page's ``q``, or the refused upload's."""
    given = failure.values.get("q", "") if failure else request.args.get("q", "")
    return given.strip()[:SEARCH_LENGTH]


def _kept_collector(db: Session, tenant: Tenant, failure: Failure | None) -> Collector | None:
    """The tenant's collector a refused upload had chosen; None for none, or an id it refused."""
    if failure is None:
        return None
    try:
        collector_id = _optional_id(failure.values.get("collector_id"), "collector_id", "collector")
    except Invalid:
        return None
    if collector_id is None:
        return None
    return db.scalar(select(Collector).where(
        Collector.id == collector_id, Collector.tenant_id == tenant.id))  # fmt: skip


def _with_kept(listed: list[Collector], kept: Collector | None) -> list[Collector]:
    return listed if kept is None or kept in listed else [kept, *listed]


@pages.post("/tenants/<slug>/loadtests")
def upload(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "analyze")
    try:
        file = request.files.get("file")
        if file is None or not file.filename:
            raise Invalid("choose the load test result file (JSON) to upload", "file")
        run = runs.upload_as_user(
            _db(), _actor(), tenant, file.read(),
            collector_id=_optional_id(request.form.get("collector_id"), "collector_id",
                                      "collector"),
            price_id=_optional_id(request.form.get("price_id"), "price_id", "price"),
            label=_label(request.form.get("label")),
        )  # fmt: skip
    except ServiceError as error:
        return _history_page(tenant, _upload_failure(error))
    flash(f"Load test {run.display_name} stored.")
    return redirect(url_for(".run", slug=slug, run_id=run.id), 303)


def _upload_failure(error: ServiceError) -> Failure:
    """A refusal of the file's content names its place in the file (``/levels/0/…``) in its
    message; it is shown at the file field."""
    failure = form_failure("upload", error)
    if failure.field and failure.field.startswith("/"):
        return replace(failure, field="file")
    return failure


def _label(text: str | None) -> str:
    return validation.text(text, "label", LABEL_LENGTH, required=False)


@pages.get(f"/tenants/<slug>/loadtests/<{ROW_ID}:run_id>")
def run(slug: str, run_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug)
    return _run_page(tenant, runs.get_run(_db(), _actor(), tenant, run_id))


def _run_page(
    tenant: Tenant, found: LoadTestRun, failure: Failure | None = None
) -> ResponseReturnValue:
    """The run's page; after a refused price form, with the refusal at the price field."""
    return _render("loadtests_run.html", tenant, failure.status if failure else 200,
                   run=found, catalog=prices.effective_catalog(_db(), tenant),
                   data=serialize.run_json(found, levels=True),
                   value=comparing.price_performance(found.max_units_per_second,
                                                     found.price_usd_per_hour),
                   no_price=_why_no_price(tenant, found), failure=failure,
                   other_type=comparing.priced_as_another_type(found))  # fmt: skip


def _why_no_price(tenant: Tenant, found: LoadTestRun) -> str | None:
    """Why the run has no price: a user removed it (the run keeps no trace of that, the audit log
    does), the upload named no machine, or the catalog had no row for it when it was stored."""
    if found.price_usd_per_hour is not None:
        return None
    removal = _price_removal(tenant, found)
    if removal is not None and removal.details.get("matched"):
        return (f"re-priced from the catalog by {removal.actor} on "
                f"{removal.at.date().isoformat()}, which had no row for this machine type")  # fmt: skip
    if removal is not None:
        return f"removed by {removal.actor} on {removal.at.date().isoformat()}"
    if found.cloud_provider is None or found.instance_type is None:
        return "the upload did not name the cloud provider and machine type"
    return "the catalog had no row for this machine type when the run was stored"


def _price_removal(tenant: Tenant, found: LoadTestRun) -> AuditEvent | None:
    """The latest "loadtest.price" event that took a price away from this run (an event from
    before its upload is of an earlier run that had the same id)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "loadtest.price",
               AuditEvent.target_type == "loadtest", AuditEvent.target_id == str(found.id),
               AuditEvent.at >= found.uploaded_at)
        .order_by(AuditEvent.id.desc())
    )  # fmt: skip
    return next((event for event in _db().scalars(query)
                 if event.details.get("before") is not None
                 and event.details.get("after") is None), None)  # fmt: skip


@pages.post(f"/tenants/<slug>/loadtests/<{ROW_ID}:run_id>/price")
def set_price(slug: str, run_id: int) -> ResponseReturnValue:
    """A price that left the catalog after the page was shown (or an id that was never in it)
    is refused at the form, the run's price unchanged."""
    tenant = _tenant(slug, "analyze")
    found = runs.get_run(_db(), _actor(), tenant, run_id)
    try:
        price_id = _optional_id(request.form.get("price_id"), "price_id", "price")
        runs.set_run_price(_db(), _actor(), tenant, found, price_id)
    except ServiceError as error:
        return _run_page(tenant, found, form_failure("price", error))
    flash("Price set." if price_id else "Price removed.")
    return redirect(url_for(".run", slug=slug, run_id=run_id), 303)


@pages.post(f"/tenants/<slug>/loadtests/<{ROW_ID}:run_id>/reprice")
def reprice(slug: str, run_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "analyze")
    found = runs.get_run(_db(), _actor(), tenant, run_id)
    runs.reprice_run(_db(), _actor(), tenant, found)
    if found.price_usd_per_hour is None:
        flash("Re-priced: the current catalog has no row for this machine type, so the run has "
              "no price now.")  # fmt: skip
    else:
        flash(f"Re-priced from the current catalog: ${found.price_usd_per_hour.normalize():f}/h "
              f"({found.price_scope} price of {found.price_as_of}).")  # fmt: skip
    return redirect(url_for(".run", slug=slug, run_id=run_id), 303)


@pages.post(f"/tenants/<slug>/loadtests/<{ROW_ID}:run_id>/delete")
def delete(slug: str, run_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "analyze")
    found = runs.get_run(_db(), _actor(), tenant, run_id)
    name = found.display_name
    runs.delete_run(_db(), _actor(), tenant, found)
    flash(f"Load test {name} deleted.")
    return redirect(url_for(".history", slug=slug), 303)


@pages.get("/tenants/<slug>/loadtests/compare")
def compare_page(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug)
    comparison = _comparison(tenant)
    data = comparing.to_json(comparison, serialize.run_json)
    ids = ",".join(str(s.run.id) for s in comparison.summaries)
    ordered = comparing.ranking_order(comparison.summaries)
    best = next((summary for summary in ordered if summary.rank == 1), None)
    return _render("loadtests_compare.html", tenant, comparison=comparison, data=data, ids=ids,
                   ranking=ordered, best=best)  # fmt: skip


@pages.get("/tenants/<slug>/loadtests/compare.csv")
def compare_csv(slug: str) -> Response:
    comparison = _comparison(_tenant(slug))
    body = csvsafe.records(comparing.csv_rows(comparison))
    return _download(body, "text/csv; charset=utf-8", slug, "csv")


@pages.get("/tenants/<slug>/loadtests/compare.json")
def compare_json(slug: str) -> Response:
    comparison = _comparison(_tenant(slug))
    body = json.dumps(comparing.to_json(comparison, serialize.run_json), indent=2)
    return _download(body, "application/json", slug, "json")


def _download(body: str, content_type: str, slug: str, extension: str) -> Response:
    response = Response(body, content_type=content_type)
    name = f"loadtests-{slug}-compare.{extension}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@pages.get("/tenants/<slug>/prices")
def prices_page(slug: str) -> ResponseReturnValue:
    return _prices_page(_tenant(slug))


def _prices_page(
    tenant: Tenant, failure: Failure | None = None, editing_id: int | None = None
) -> ResponseReturnValue:
    """``editing_id``: the tenant row whose change failed, so its form is shown again."""
    db = _db()
    catalog = prices.effective_catalog(db, tenant)
    editing, values = _prefill(tenant, catalog)
    if editing_id is not None:
        editing = next((e for e in catalog if e.id == editing_id and e.tenant_id is not None),
                       None)  # fmt: skip
    return _render(
        "prices.html", tenant, failure.status if failure else 200, catalog=catalog,
        overridden=prices.overridden_ids(db, tenant), failure=failure,
        error=failure.message if failure else None,
        kept=failure.values if failure else values, editing=editing,
    )  # fmt: skip


def _prefill(tenant: Tenant, catalog: list[Any]) -> tuple[Any, dict[str, str]]:
    """``?edit=<id>`` fills the form with a tenant row to change; ``?override=<id>`` with a
    global row to override."""
    wanted = request.args.get("edit") or request.args.get("override")
    entry = next((e for e in catalog if wanted and str(e.id) == wanted), None)
    if entry is None:
        return None, {}
    values = {name: str(getattr(entry, name)) for name in prices.FIELDS}
    values["burstable"] = values["burstable"].lower()
    editing = entry if request.args.get("edit") and entry.tenant_id is not None else None
    return editing, values


@pages.post("/tenants/<slug>/prices")
def create_price(slug: str) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    try:
        entry = prices.create_price(_db(), _actor(), tenant, request.form.to_dict())
    except ServiceError as error:
        return _prices_page(tenant, form_failure("price", error))
    flash(f"Price for {entry.instance_type} ({entry.region}) added.")
    for warning in prices.price_warnings(_db(), entry):
        flash(f"Warning: {warning}")
    return redirect(url_for(".prices_page", slug=slug), 303)


@pages.post(f"/tenants/<slug>/prices/<{ROW_ID}:price_id>")
def update_price(slug: str, price_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    try:
        entry = prices.update_price(_db(), _actor(), tenant, price_id, request.form.to_dict())
    except ServiceError as error:
        return _prices_page(tenant, form_failure("price", error), price_id)
    flash(f"Price for {entry.instance_type} ({entry.region}) changed; stored runs keep theirs.")
    for warning in prices.price_warnings(_db(), entry):
        flash(f"Warning: {warning}")
    return redirect(url_for(".prices_page", slug=slug), 303)


@pages.post(f"/tenants/<slug>/prices/<{ROW_ID}:price_id>/delete")
def delete_price(slug: str, price_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug, "admin")
    prices.delete_price(_db(), _actor(), tenant, price_id)
    flash("Price deleted; stored runs keep the price they had.")
    return redirect(url_for(".prices_page", slug=slug), 303)


@pages.get(f"/tenants/<slug>/collectors/<{ROW_ID}:collector_id>/rightsizing")
def rightsizing_page(slug: str, collector_id: int) -> ResponseReturnValue:
    tenant = _tenant(slug)
    collector = get_collector(_db(), _actor(), tenant, collector_id)
    given = {name: value for name, value in request.args.items() if value != ""}
    try:
        params = advising.parse_params(given)
    except Invalid as error:
        return _render("loadtests_rightsizing.html", tenant, 400, collector=collector,
                       advice=None, error=error.message, args=request.args)  # fmt: skip
    found = advising.advise(_db(), _actor(), tenant, collector, _history(), params)
    return _render("loadtests_rightsizing.html", tenant, collector=collector, advice=found,
                   args=request.args, hours_per_month=serialize.HOURS_PER_MONTH)  # fmt: skip


# ---- API --------------------------------------------------------------------------------------


@api.after_request
def _escape_markup(response: Response) -> Response:
    """'<', '>' and '&' leave as \\u escapes, so no JSON string can be read as HTML."""
    if response.mimetype == "application/json" and not response.direct_passthrough:
        text = response.get_data(as_text=True)
        if any(char in text for char in "<>&"):
            escaped = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            response.set_data(escaped)
    return response


def _only_query(*allowed: str) -> None:
    for name in request.args:
        if name not in allowed:
            raise Invalid(f"unknown query parameter {name[:60]!r}", name[:60])
        if len(request.args.getlist(name)) > 1:
            raise Invalid(f"give {name} once", name)


def _json_body() -> bytes:
    if not request.is_json:
        raise Invalid("send the result as JSON with 'Content-Type: application/json'", "/")
    return request.get_data(cache=True)


def _with_urls(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    body["url"] = url_for("loadtests.run", slug=tenant.slug, run_id=body["id"], _external=True)
    body["api_url"] = url_for(".run_view", slug=tenant.slug, run_id=body["id"])
    return body


@api.post("/loadtests")
@collector_endpoint
def collector_upload_view() -> Any:
    """A load-test result sent with ``Authorization: Token <collector key>``. A stored one is
    the key's use, as ingest records a write: the key's last use and the collector's last seen
    are written by the verifier's next flush; its points received, which count line-protocol
    points, are left as they are."""
    _only_query()
    identity = g.get("collector")
    if identity is None:
        raise Invalid("this endpoint takes a collector key ('Authorization: Token pak_…'); "
                      "users upload to /api/v1/tenants/<slug>/loadtests")  # fmt: skip
    found = runs.upload_as_collector(_db(), identity, _json_body(), request.remote_addr or "")
    current_app.extensions["pa_key_verifier"].record_use(identity, 0)
    tenant = _db().get(Tenant, identity.tenant_id)
    assert tenant is not None
    return _run_created(tenant, found)


def _run_created(tenant: Tenant, found: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    body = _with_urls(tenant, serialize.run_json(found, levels=True))
    return body, 201, {"Location": body["api_url"]}


@api.get("/tenants/<slug>/loadtests")
def list_view(slug: str) -> Any:
    """A page of the tenant's runs, newest first, paged as every list (``limit``, ``cursor``,
    ``next_cursor`` and a ``Link`` header)."""
    _only_query("collector_id", "limit", "cursor")
    tenant = _tenant(slug)
    page = runs.runs_page(_db(), _actor(), tenant, *list_arguments(),
                          collector_id=_query_id("collector_id", "collector"))  # fmt: skip
    return listed("loadtests", [_with_urls(tenant, serialize.run_json(r)) for r in page.items],
                  page)  # fmt: skip


@api.post("/tenants/<slug>/loadtests")
def upload_view(slug: str) -> Any:
    _only_query("collector_id", "price_id", "label")
    tenant = _tenant(slug, "analyze")
    label = request.args.get("label", "")
    if len(label) > LABEL_LENGTH:
        raise Invalid(f"label must be at most {LABEL_LENGTH} characters", "label")
    found = runs.upload_as_user(
        _db(), _actor(), tenant, _json_body(), collector_id=_query_id("collector_id", "collector"),
        price_id=_query_id("price_id", "price"), label=_label(label),
    )  # fmt: skip
    return _run_created(tenant, found)


@api.get("/tenants/<slug>/loadtests/<int:run_id>")
def run_view(slug: str, run_id: int) -> Any:
    _only_query()
    tenant = _tenant(slug)
    found = runs.get_run(_db(), _actor(), tenant, _row(run_id, "load test in this tenant"))
    return _with_urls(tenant, serialize.run_json(found, levels=True))


@api.delete("/tenants/<slug>/loadtests/<int:run_id>")
def delete_view(slug: str, run_id: int) -> Response:
    _only_query()
    tenant = _tenant(slug, "analyze")
    found = runs.get_run(_db(), _actor(), tenant, _row(run_id, "load test in this tenant"))
    runs.delete_run(_db(), _actor(), tenant, found)
    return Response(status=204)


@api.post("/tenants/<slug>/loadtests/<int:run_id>/price")
def price_view(slug: str, run_id: int) -> Any:
    _only_query()
    tenant = _tenant(slug, "analyze")
    body = _object({"price_id"})
    price_id = body.get("price_id")
    if price_id is not None and (not isinstance(price_id, int) or isinstance(price_id, bool)
                                 or not 1 <= price_id <= MAX_ROW_ID):  # fmt: skip
        raise Invalid("price_id must be a price id or null", "price_id")
    found = runs.get_run(_db(), _actor(), tenant, _row(run_id, "load test in this tenant"))
    runs.set_run_price(_db(), _actor(), tenant, found, price_id)
    return _with_urls(tenant, serialize.run_json(found, levels=True))


@api.post("/tenants/<slug>/loadtests/<int:run_id>/reprice")
def reprice_view(slug: str, run_id: int) -> Any:
    _only_query()
    tenant = _tenant(slug, "analyze")
    found = runs.get_run(_db(), _actor(), tenant, _row(run_id, "load test in this tenant"))
    runs.reprice_run(_db(), _actor(), tenant, found)
    return _with_urls(tenant, serialize.run_json(found, levels=True))


@api.get("/tenants/<slug>/loadtests/compare")
def compare_view(slug: str) -> Any:
    _only_query("ids", "baseline")
    tenant = _tenant(slug)
    if not re.fullmatch(IDS_PATTERN.strip("^$"), request.args.get("ids", "")):
        raise Invalid("ids must be 2 to 10 load test ids separated by commas, e.g. ids=3,5", "ids")
    comparison = _comparison(tenant)
    return comparing.to_json(comparison, lambda r: _with_urls(tenant, serialize.run_json(r)))


@api.get("/tenants/<slug>/prices")
def prices_view(slug: str) -> Any:
    _only_query()
    tenant = _tenant(slug)
    catalog = prices.list_catalog(_db(), _actor(), tenant)
    return {"prices": [serialize.price_json(entry) for entry in catalog]}


@api.post("/tenants/<slug>/prices")
def create_price_view(slug: str) -> Any:
    _only_query()
    tenant = _tenant(slug, "admin")
    entry = prices.create_price(_db(), _actor(), tenant, _price_body(required=True))
    location = url_for(".prices_view", slug=slug)
    return _price_written(entry), 201, {"Location": location}


def _price_written(entry: Any) -> dict[str, Any]:
    """A stored tenant price with what to check about it (far from the global catalog's)."""
    return {**serialize.price_json(entry), "warnings": prices.price_warnings(_db(), entry)}


@api.patch("/tenants/<slug>/prices/<int:price_id>")
def update_price_view(slug: str, price_id: int) -> Any:
    _only_query()
    tenant = _tenant(slug, "admin")
    body = _price_body(required=False)
    if not body:
        raise Invalid("send at least one field to change")
    entry = prices.update_price(_db(), _actor(), tenant, _row(price_id, "price"), body)
    return _price_written(entry)


@api.delete("/tenants/<slug>/prices/<int:price_id>")
def delete_price_view(slug: str, price_id: int) -> Response:
    _only_query()
    tenant = _tenant(slug, "admin")
    prices.delete_price(_db(), _actor(), tenant, _row(price_id, "price"))
    return Response(status=204)


@api.get("/tenants/<slug>/collectors/<int:collector_id>/rightsizing")
def rightsizing_view(slug: str, collector_id: int) -> Any:
    _only_query(*advising.LIMITS)
    tenant = _tenant(slug)
    collector: Collector = get_collector(_db(), _actor(), tenant, _row(collector_id, "collector"))
    found = advising.advise(_db(), _actor(), tenant, collector,
                            _history(), advising.parse_params(request.args))  # fmt: skip
    return serialize.advice_json(found, collector.id)


def _row(value: int, what: str) -> int:
    if not 1 <= value <= MAX_ROW_ID:
        raise NotFound(f"no such {what}")
    return value


def _object(allowed: Iterable[str], required: bool = True) -> dict[str, Any]:
    """The JSON object body; unknown fields are refused (``required``: all of ``allowed``)."""
    if not request.is_json:
        raise Invalid("send a JSON body with 'Content-Type: application/json'")
    try:
        value = json.loads(
            request.get_data(cache=True),
            parse_constant=_refuse_constant,
            object_pairs_hook=validation.unique_keys,
        )
    except (ValueError, RecursionError):
        raise Invalid("the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Invalid("the request body must be a JSON object")
    names = set(allowed)
    for name in value:
        if name not in names:
            raise Invalid(f"unknown field {name[:60]!r}", name[:60])
    if required:
        for name in sorted(names):
            if name not in value and name not in OPTIONAL_PRICE_FIELDS:
                raise Invalid(f"{name} is required", name)
    return value


def _price_body(required: bool) -> dict[str, Any]:
    """A price as JSON: the types and lengths the document gives, before the service's checks."""
    body = _object(PRICE_FIELDS, required)
    for name, value in body.items():
        schema = PRICE_FIELDS[name]
        kind = schema["type"]
        if kind == "boolean":
            if value is not None and not isinstance(value, bool):
                raise Invalid(f"{name} must be true, false or null", name)
        elif kind == "string":
            if (
                not isinstance(value, str)
                or not schema["minLength"] <= len(value) <= schema["maxLength"]
            ):
                raise Invalid(f"{name} must be a string of {schema['minLength']} to "
                              f"{schema['maxLength']} characters", name)  # fmt: skip
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"{name} must be a number", name)
        elif kind == "integer" and not isinstance(value, int):
            raise Invalid(f"{name} must be a whole number", name)
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
