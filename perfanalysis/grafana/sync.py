"""Apply each tenant's Grafana setup to a live Grafana, idempotently, keyed on names and uids.

Per tenant: an org (looked up by name, created when missing; orgs cannot be provisioned from
files; an existing one is taken only when marked for this tenant instance or not at all, see
``orgs``), then, acting in that org through ``X-Grafana-Org-Id``: the InfluxDB data source with
the tenant's read-only credentials, the PerfAnalysis folder, the dashboards, the alert rules (with
``X-Disable-Provenance``; the tenant's thresholds from thresholds.yaml, see ``alerts``, and the
rules of earlier syncs it no longer wants removed) and, given the admin app's URL, a webhook
contact point and the notification policy. Each object is read first and written only when it
differs, so a second run reports every object unchanged. Last, every org is checked for orphans
(``orgs``), which are reported, and deleted only by ``prune``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from perfanalysis.alerting.thresholds import Thresholds
from perfanalysis.grafana import alerts, orgs, provisioning
from perfanalysis.grafana.client import NO_PROVENANCE, Grafana, SyncError
from perfanalysis.grafana.render import as_dict
from perfanalysis.grafana.tenantsource import Instance, TenantGrafana, masked

CONTACT_POINT = provisioning.CONTACT_POINT


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    changes: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one per tenant not synced
    orphans: int = 0

    def note(self, tenant: str, what: str, outcome: str) -> None:
        self.lines.append(f"{tenant}: {what} {outcome}")
        self.changes += outcome != "unchanged"


def covers(current: Any, desired: Any) -> bool:
    """Whether ``current`` holds everything ``desired`` sets (Grafana adds fields of its own)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            covers(current.get(k), v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (isinstance(current, list) and len(current) == len(desired)
                and all(covers(c, d) for c, d in zip(current, desired, strict=True)))  # fmt: skip
    return bool(current == desired)


def credential_fingerprint(secret_key: str, tenant: TenantGrafana) -> str:
    """An HMAC of the read credentials, kept in jsonData: Grafana never returns the password, so
    this is how a rotated password is noticed without rewriting it on every run."""
    from tenants.crypto import derive

    key = derive(secret_key, "grafana datasource credentials")
    message = f"{tenant.read_user}\0{tenant.read_password}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


@dataclass
class TenantSync:
    grafana: Grafana  # acting in the tenant's org
    tenant: TenantGrafana
    settings: dict[str, Any]
    report: Report
    org_id: int
    dashboards_json: list[dict[str, Any]]
    panel_ids: dict[str, int]
    rules: tuple[alerts.Rule, ...]  # the tenant's, from its thresholds
    # the dashboards tenant orgs no longer get: removed where an earlier sync put them
    withdrawn_uids: list[str] = field(default_factory=list)

    def run(self) -> None:
        for step in (
            self.datasource,
            self.folder,
            self.dashboards,
            self.alert_rules,
            self.notifications,
        ):
            step()

    def _note(self, what: str, outcome: str) -> None:
        self.report.note(self.tenant.slug, what, outcome)

    def _upsert(self, what: str, get: str, desired: dict[str, Any], create: Callable[[], Any],
                update: Callable[[Any], Any]) -> Any:  # fmt: skip
        current = self.grafana.get(get)
        if current is None:
            create()
            self._note(what, "created")
        elif not covers(current, desired):
            update(current)
            self._note(what, "updated")
        else:
            self._note(what, "unchanged")
        return current

    def _replace(self, path: str, body: dict[str, Any], _current: Any) -> Any:
        return self.grafana.send("PUT", path, body, NO_PROVENANCE)

    def datasource(self) -> None:
        t = self.tenant
        json_data = {**provisioning.influxdb_json_data(t.database),
                     "perfanalysisCredential": credential_fingerprint(self.settings["secret_key"], t),
                     orgs.MARKER: orgs.marker(t.instance)}  # fmt: skip
        desired = {"name": "InfluxDB", "type": "influxdb", "uid": t.datasource_uid, "access": "proxy",
                   "url": self.settings["influxdb_url"], "user": t.read_user, "basicAuth": False,
                   "isDefault": True, "jsonData": json_data}  # fmt: skip
        body = {**desired, "secureJsonData": {"password": t.read_password}}
        path = f"/datasources/uid/{t.datasource_uid}"
        self._upsert(f"data source {t.datasource_uid}", path, desired,
                     lambda: self.grafana.send("POST", "/datasources", body),
                     lambda _: self.grafana.send("PUT", path, body))  # fmt: skip

    def folder(self) -> None:
        desired = {"uid": alerts.FOLDER_UID, "title": alerts.FOLDER_TITLE}
        path = f"/folders/{alerts.FOLDER_UID}"
        self._upsert(f"folder {alerts.FOLDER_UID}", path, desired,
                     lambda: self.grafana.send("POST", "/folders", desired),
                     lambda cur: self.grafana.send("PUT", path, {"title": alerts.FOLDER_TITLE,
                                                                 "version": cur.get("version"), "overwrite": True}))  # fmt: skip

    def dashboards(self) -> None:
        for dashboard in self.dashboards_json:
            uid = dashboard["uid"]
            body = {"dashboard": {**dashboard, "id": None}, "folderUid": alerts.FOLDER_UID,
                    "overwrite": True, "message": "perfanalysis grafana sync"}  # fmt: skip
            desired = {"dashboard": dashboard, "meta": {"folderUid": alerts.FOLDER_UID}}

            def save(_: Any = None, body: dict[str, Any] = body) -> Any:
                return self.grafana.send("POST", "/dashboards/db", body)

            self._upsert(f"dashboard {uid}", f"/dashboards/uid/{uid}", desired, save, save)
        for uid in self.withdrawn_uids:
            if self.grafana.get(f"/dashboards/uid/{uid}") is not None:
                self.grafana.send("DELETE", f"/dashboards/uid/{uid}", None)
                self._note(f"dashboard {uid}", "removed (it reads the platform's Prometheus)")

    def alert_rules(self) -> None:
        labels = {"tenant": self.tenant.slug}
        for rule in self.rules:
            body = alerts.to_api_rule(
                rule, self.tenant.datasource_uid, self.panel_ids, self.org_id, labels
            )
            path = f"/v1/provisioning/alert-rules/{rule.uid}"
            create = partial(
                self.grafana.send, "POST", "/v1/provisioning/alert-rules", body, NO_PROVENANCE
            )
            update = partial(self._replace, path, body)
            self._upsert(f"alert rule {rule.uid}", path, body, create, update)
        group_path = f"/v1/provisioning/folder/{alerts.FOLDER_UID}/rule-groups/{alerts.GROUP}"
        group = self.grafana.get(group_path) or {}
        # Rules of sync's own that the thresholds no longer ask for (a level set to null, a rule
        # disabled, the uids before rules followed the thresholds); rules made by hand stay.
        wanted = {rule.uid for rule in self.rules}
        stale = [str(r.get("uid")) for r in group.get("rules") or []
                 if r.get("uid") in alerts.OWNED_UIDS and r.get("uid") not in wanted]  # fmt: skip
        for uid in stale:
            self.grafana.send("DELETE", f"/v1/provisioning/alert-rules/{uid}", None, NO_PROVENANCE)
            self._note(f"alert rule {uid}", "removed (not in the tenant's thresholds)")
        if stale:
            group = self.grafana.get(group_path) or {}
        if not group.get("rules"):  # a group exists only through its rules: none to time
            self.report.lines.append(
                f"{self.tenant.slug}: rule group {alerts.GROUP}: no rules (every level disabled)"
            )
        elif group.get("interval") != alerts.INTERVAL_SECONDS:
            group = {**group, "title": alerts.GROUP, "folderUid": alerts.FOLDER_UID,
                     "interval": alerts.INTERVAL_SECONDS}  # fmt: skip
            self.grafana.send("PUT", group_path, group, NO_PROVENANCE)
            self._note(f"rule group {alerts.GROUP} interval", "updated")
        else:
            self._note(f"rule group {alerts.GROUP} interval", "unchanged")

    def notifications(self) -> None:
        webhook = self.settings.get("alert_webhook_url")
        if not webhook:
            self._note("contact point", "skipped (no --alert-webhook-url)")
            self.report.changes -= 1
            return
        uid = f"pa-{self.tenant.slug}-webhook"
        url = webhook.replace("{tenant}", self.tenant.slug)
        desired = {**provisioning.webhook_receiver(uid, url), "name": CONTACT_POINT}
        found = self.grafana.get("/v1/provisioning/contact-points", {"name": CONTACT_POINT}) or []
        current = next((c for c in found if c.get("uid") == uid), None)
        if current is None:
            self.grafana.send("POST", "/v1/provisioning/contact-points", desired, NO_PROVENANCE)
            self._note(f"contact point {uid}", "created")
        elif not covers(current, desired):
            self.grafana.send(
                "PUT", f"/v1/provisioning/contact-points/{uid}", desired, NO_PROVENANCE
            )
            self._note(f"contact point {uid}", "updated")
        else:
            self._note(f"contact point {uid}", "unchanged")
        tree = provisioning.policy_tree(CONTACT_POINT)
        current = self.grafana.get("/v1/provisioning/policies")
        # no child routes either (an earlier sync's route repeated critical alerts hourly)
        if covers(current, tree) and not current.get("routes"):
            self._note("notification policy", "unchanged")
        else:
            self.grafana.send("PUT", "/v1/provisioning/policies", tree, NO_PROVENANCE)
            self._note("notification policy", "updated")


def ensure_org(grafana: Grafana, survey: orgs.Survey, tenant: TenantGrafana,
               instances: frozenset[Instance], report: Report) -> int:  # fmt: skip
    """The org named after the tenant, created when missing; OrgRefused when it exists but is not
    this tenant instance's to take."""
    name = tenant.org_name
    found = grafana.get(f"/orgs/name/{name}")
    if found is not None:
        org_id = int(found["id"])
        outcome = orgs.claim(survey, org_id, name, tenant.instance, instances)
        report.note(tenant.slug, f"org {name!r} (id {org_id})", outcome)
        return org_id
    created = grafana.send("POST", "/orgs", {"name": name})
    report.note(tenant.slug, f"org {name!r} (id {created['orgId']})", "created")
    return int(created["orgId"])


def datasource_types(dashboard: dict[str, Any]) -> set[str]:
    """The datasource types a dashboard's panels and datasource variables use.

    A tenant's org gets only the dashboards that read its InfluxDB database alone: the others
    read the platform's Prometheus, which a tenant org has no datasource for, and the ingest
    dashboard there lists every tenant's traffic.
    """
    types = {
        str(variable.get("query"))
        for variable in dashboard.get("templating", {}).get("list", [])
        if variable.get("type") == "datasource"
    }
    for panel in dashboard.get("panels", []):
        source = panel.get("datasource")
        if isinstance(source, dict) and source.get("type"):
            types.add(str(source["type"]))
    return types


def connect(settings: dict[str, Any]) -> Grafana:
    credential: str | tuple[str, str] = settings["token"] or (
        settings["user"],
        settings["password"],
    )
    return Grafana(settings["url"], credential, settings["timeout"])


def sync(settings: dict[str, Any], tenants: list[TenantGrafana],
         instances: frozenset[Instance], thresholds: Thresholds) -> Report:  # fmt: skip
    """Sync ``tenants``, then report orphans among every org (``instances``: every tenant of the
    admin database). Each tenant's alert rules follow its settings in ``thresholds`` (the
    defaults for a tenant not listed there). A tenant whose org is another's, or for which
    Grafana refuses a request, is left part-way, with a line in ``report.failures``, and the
    others are synced. Raises SyncError when Grafana as a whole cannot be used
    (``grafana_wide``): every later tenant would fail alike.
    """
    from perfanalysis.grafana.dashboards import DASHBOARDS

    grafana = connect(settings)
    report = Report()
    dashboards: list[dict[str, Any]] = []
    withdrawn: list[str] = []
    for board in (as_dict(build()) for build in DASHBOARDS.values()):
        if datasource_types(board) == {"influxdb"}:
            dashboards.append(board)
        else:
            withdrawn.append(board["uid"])
    panel_ids = alerts.host_panel_ids()
    survey = orgs.Survey(grafana)
    synced: list[str] = []
    for tenant in tenants:
        rules = alerts.rules(alerts.settings_for(thresholds, tenant.slug))
        report.lines.append(
            f"{tenant.slug}: alert thresholds from {thresholds.source} "
            f"({alerts.scope_name(thresholds, tenant.slug)})"
        )
        try:
            org_id = ensure_org(grafana, survey, tenant, instances, report)
            TenantSync(
                grafana.in_org(org_id),
                tenant,
                settings,
                report,
                org_id,
                dashboards,
                panel_ids,
                rules,
                withdrawn,
            ).run()
        except orgs.OrgRefused as exc:
            report.failures.append(f"tenant {tenant.slug} not synced: {exc}")
            continue
        except SyncError as exc:
            if grafana_wide(exc):
                if not synced:
                    raise
                done = ", ".join(synced)
                raise SyncError(f"{exc} (tenants synced before it: {done})", exc.status) from None
            report.failures.append(
                f"tenant {tenant.slug} synced only in part (the next sync completes it): {exc}"
            )
            continue
        synced.append(tenant.slug)
    audit(survey, instances, {t.org_name for t in tenants}, report)
    return report


def grafana_wide(error: SyncError) -> bool:
    """Whether ``error`` would fail every tenant alike: no answer (or not Grafana's API), or the
    credentials refused outside any org. A refusal acting in one org (401 there means the user is
    not a member of it) or of one object is that tenant's alone."""
    if error.status is None:
        return True
    return error.org_id is None and error.status in (401, 403)


def audit(survey: orgs.Survey, instances: frozenset[Instance], tenant_orgs: set[str],
          report: Report) -> list[orgs.Org]:  # fmt: skip
    """Report the orphans among every org, and the orgs sync cannot tell the owner of (but not
    again those of ``tenant_orgs``, whose tenants' lines already say so); returns the orphans."""
    orphans = []
    for org in survey.all():
        if org.orphaned(instances):
            orphans.append(org)
            report.warnings.append(org.orphan_warning())
        elif org.name in tenant_orgs:
            continue
        elif doubt := org.doubt():
            report.warnings.append(doubt)
        elif not org.marked:
            report.lines.append(
                f"{org}: no sync marker (not made by sync, or by one before the marker): left alone"
            )
    report.orphans = len(orphans)
    return orphans


def prune(settings: dict[str, Any], instances: frozenset[Instance]) -> Report:
    """Delete the orphan orgs (only list them with ``dry_run``); raises PruneRefused, before any
    deletion, when they are every org sync manages and ``force`` is not set."""
    grafana = connect(settings)
    report = Report()
    survey = orgs.Survey(grafana)
    every = survey.all()
    for org in every:
        doubt = org.doubt()
        if doubt:
            report.warnings.append(doubt)
    found = orgs.to_prune(every, instances, masked(settings["database_url"]), settings["force"])
    for org in found:
        what = f"{org}, of {orgs.names(org.owners)} (no longer in the admin database)"
        if settings["dry_run"]:
            report.lines.append(f"{what}: would be deleted")
        else:
            try:
                orgs.delete(grafana, org)
            except SyncError as exc:
                done = [line for line in report.lines if line.endswith(": deleted")]
                raise SyncError(f"{exc}; deleted before it: {'; '.join(done) or 'none'}") from None
            report.lines.append(f"{what}: deleted")
            report.changes += 1
    report.orphans = len(found)
    return report


__all__ = ["Report", "SyncError", "audit", "covers", "prune", "sync"]
