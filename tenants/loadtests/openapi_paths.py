"""OpenAPI 3.0.3 path items of the load-test routes, to merge into /api/v1/openapi.json.

Schemas are inline so the path items stand alone; they refer only to components the main
document already has (``parameters/slug``, ``parameters/collector_id``, ``parameters/list_limit``,
``parameters/cursor``, ``responses/E4xx``) and
to the ``collectorKey`` security scheme from ``components()``. The request schemas are never
stricter than the checks in tenants.loadtests.contract and the views: what they refuse, the
API refuses too. The upload's schema is built from the rules of the shared contract
(exporter.loadtest.contract), so its types and limits are the ones checked; what a schema cannot
say (unpaired surrogates, the checks across levels, times in the future) is left to the check.
"""

from __future__ import annotations

from typing import Any

from exporter.loadtest import contract as shared

Schema = dict[str, Any]
MAX_ID = 2**31 - 1
IDS_PATTERN = r"^[1-9][0-9]{0,9}(,[1-9][0-9]{0,9}){1,9}$"

_ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_NULLABLE_ID: Schema = {**_ID, "nullable": True}
_TEXT: Schema = {"type": "string"}
_NULLABLE_TEXT: Schema = {"type": "string", "nullable": True}
_NUMBER: Schema = {"type": "number"}
_NULLABLE_NUMBER: Schema = {"type": "number", "nullable": True}
_TIME: Schema = {"type": "string", "format": "date-time"}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    names = list(properties) if required is None else required
    if names:  # OpenAPI 3.0 wants at least one name in "required"
        schema["required"] = names
    return schema


def _number(low: float, high: float, above_low: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": "number", "minimum": low, "maximum": high, **extra}
    if above_low:
        schema["exclusiveMinimum"] = True
    return schema


def _integer(low: int, high: int, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high, **extra}


def _string(low: int, high: int, pattern: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", "minLength": low, "maxLength": high, **extra}
    if pattern:
        schema["pattern"] = pattern
    return schema


DESCRIPTIONS = {
    "/settings/full_load_min": "busy% that accepted the 100% level (--full-load-min); when "
    "absent, the 100% level is checked against the tolerance band",
    "/levels": "strictly ascending targets ending with 100; units grow with busy%",
    "/levels/N/repeats": "one result per settings.repeats",
    "/max_units_per_second": "the 100% level's units_per_second",
    "/host/kernel": "null: not recorded (the original system's results)",
    "/started_at": "RFC 3339, such as 2026-01-10T00:18:51Z",
    "/finished_at": "RFC 3339, such as 2026-01-10T00:18:51Z",
}  # fmt: skip


def _rule_schema(rule: shared.Rule, where: str = "") -> Schema:
    """The JSON Schema of one rule of the shared contract: its type and limits, as checked."""
    schema: Schema
    if isinstance(rule, shared.Object):
        schema = _object({name: _rule_schema(item, f"{where}/{name}")
                          for name, item in rule.fields.items()}, list(rule.required()))  # fmt: skip
    elif isinstance(rule, shared.Array):
        schema = {"type": "array", "minItems": rule.low, "maxItems": rule.high,
                  "items": _rule_schema(rule.item, f"{where}/N")}  # fmt: skip
    elif isinstance(rule, shared.Numbers):
        schema = {"type": "array", "minItems": rule.low, "maxItems": rule.high,
                  "items": _rule_schema(rule.item)}  # fmt: skip
    elif isinstance(rule, shared.Text):
        schema = _string(rule.low, rule.high, rule.pattern)
    elif isinstance(rule, shared.Whole):
        schema = _integer(rule.low, rule.high)
        if rule.high > MAX_ID:
            schema["format"] = "int64"
    elif isinstance(rule, shared.Number):
        schema = _number(rule.low, rule.high, rule.above_low)
    elif isinstance(rule, shared.Choice):
        schema = {"type": "string", "enum": list(rule.options)}
    elif isinstance(rule, shared.Time):
        schema = dict(_TIME)
    else:
        schema = {"type": "boolean"}
    if rule.nullable:
        schema["nullable"] = True
    if where in DESCRIPTIONS:
        schema["description"] = DESCRIPTIONS[where]
    return schema


LEVEL = _rule_schema(shared.LEVEL, "/levels/N")
DOCUMENT = _rule_schema(shared.DOCUMENT)

PRICE_FIELDS: dict[str, Schema] = {
    "provider": _string(1, 20, description="aws, azure, gcp or oci, in any case (stored lower-case)"),
    "region": _string(1, 60, description="e.g. us-east-1 (stored lower-case)"),
    "instance_type": _string(1, 80, description="e.g. c5.large, VM.Standard.E5.Flex"),
    "vcpus": _integer(1, 4096),
    "memory_gib": _number(0, 1 << 20, True, description="at most 2 decimals"),
    "usd_per_hour": _number(0, 10000, True, description="on-demand; more than 0, at most 6 decimals"),
    "source": _string(1, 500, description="a URL or a text saying where the price comes from"),
    "as_of": _string(10, 10, format="date", description="the price's date, not in the future"),
    "notes": _string(0, 1000),
    "burstable": {"type": "boolean", "nullable": True,
                  "description": "a burstable machine type (CPU credits: AWS t2/t3/t3a/t4g, "
                  "Azure B-series, GCP shared-core), whose runs are not ranked; absent or null: "
                  "decided by the type. Those families cannot be set false."},
}  # fmt: skip
OPTIONAL_PRICE_FIELDS = ("notes", "burstable")
PRICE_CREATE = _object(PRICE_FIELDS, [name for name in PRICE_FIELDS
                                      if name not in OPTIONAL_PRICE_FIELDS])  # fmt: skip
PRICE_UPDATE = {**_object(PRICE_FIELDS, []), "minProperties": 1}

PRICE = _object({
    "id": _ID, "scope": {"type": "string", "enum": ["global", "tenant"]}, "provider": _TEXT,
    "region": _TEXT, "instance_type": _TEXT, "vcpus": _ID, "memory_gib": _NUMBER,
    "usd_per_hour": _NUMBER, "source": _TEXT, "as_of": {"type": "string", "format": "date"},
    "notes": _TEXT, "burstable": {"type": "boolean"}, "updated_at": _TIME,
})  # fmt: skip
PRICE_WRITTEN = {**PRICE, "properties": {**PRICE["properties"], "warnings": {
    "type": "array", "items": _TEXT, "description": "what to check about the stored price: one "
    "more than 10 times above or below the global catalog's for the same machine"}},
    "required": [*PRICE["required"], "warnings"]}  # fmt: skip
PRICE_SNAPSHOT = {**_object({
    "entry_id": _NULLABLE_ID, "scope": _NULLABLE_TEXT, "provider": _NULLABLE_TEXT,
    "region": _NULLABLE_TEXT, "instance_type": _NULLABLE_TEXT,
    "vcpus": {"type": "integer", "nullable": True}, "memory_gib": _NULLABLE_NUMBER,
    "usd_per_hour": _NULLABLE_NUMBER, "source": _NULLABLE_TEXT,
    "as_of": {"type": "string", "format": "date", "nullable": True}, "match": _NULLABLE_TEXT,
    "burstable": {"type": "boolean", "description": "the row's burstable flag"},
}), "nullable": True, "description": "the price copied when the run was stored (or set later)"}  # fmt: skip
RUN_HOST = _object({
    "hostname": _TEXT, "cpu_model": _TEXT, "vcpus": {"type": "integer"},
    "memory_bytes": {"type": "integer"},
    "kernel": {**_NULLABLE_TEXT, "minLength": 1,
               "description": "null: not recorded (the original system's results)"},
    "cloud_provider": _NULLABLE_TEXT, "region": _NULLABLE_TEXT, "instance_type": _NULLABLE_TEXT,
})  # fmt: skip
_RUN_FIELDS: dict[str, Schema] = {
    "id": _ID, "name": _TEXT, "label": _TEXT, "notes": _TEXT, "collector_id": _NULLABLE_ID,
    "collector_name": _NULLABLE_TEXT, "uploaded_at": _TIME, "uploaded_by": _TEXT,
    "uploaded_via": {"type": "string", "enum": ["collector_key", "user", "example"]},
    "started_at": _TIME, "finished_at": _TIME, "host": RUN_HOST, "unit": _TEXT,
    "max_units_per_second": _NUMBER, "repeatability_cv_percent": _NULLABLE_NUMBER,
    "all_levels_accepted": {"type": "boolean"}, "price": PRICE_SNAPSHOT,
    "units_per_usd_hour": {**_NUMBER, "nullable": True,
                           "description": "max_units_per_second / usd_per_hour"},
    "url": _TEXT, "api_url": _TEXT,
}  # fmt: skip
RUN = _object(_RUN_FIELDS)
RUN_WITH_LEVELS = _object({**_RUN_FIELDS, "levels": {"type": "array", "items": LEVEL}})
NULLABLE_NUMBERS: Schema = {"type": "array", "items": _NULLABLE_NUMBER}
COMPARISON = _object({
    "baseline_id": _ID,
    "levels": {"type": "array", "items": _integer(1, 100)},
    "value_range": {**_NULLABLE_NUMBER, "description": "best / worst units per $/hour"},
    "warnings": {"type": "array", "items": _TEXT},
    "runs": {"type": "array", "items": _object({
        "run": RUN, "units_per_second": NULLABLE_NUMBERS,
        "measured_busy_percent": NULLABLE_NUMBERS,
        "difference_vs_baseline_percent": NULLABLE_NUMBERS,
        "max_difference_vs_baseline_percent": _NULLABLE_NUMBER, "max_units_per_vcpu": _NUMBER,
        "units_per_usd_hour": {**_NULLABLE_NUMBER, "description": "to the cent, so a value "
                               "under half a cent is 0.0; null without a price"},
        "percent_of_best": {**_NULLABLE_NUMBER, "description": "of the rank-1 run's units per "
                            "$/hour, both unrounded; null for a run without a rank"},
        "rank": {"type": "integer", "nullable": True, "description": "by unrounded units per "
                 "$/hour, 1 = best, equal values share a rank; null for a run that is shown, "
                 "not ranked (unranked_reason says why)"},
        "unranked_reason": {**_NULLABLE_TEXT, "description": "why rank is null: 'no price', "
                            "'priced for another size', 'burstable machine type (measured at "
                            "burst speed)', 'different work unit' (from the baseline's), 'its "
                            "100% level was not accepted', or several joined by '; '"},
        "burstable": {"type": "boolean", "description": "a burstable machine type"},
        "price_age_days": {"type": "integer", "nullable": True,
                           "description": "days since the price's as_of; null without a price"},
        "price_stale": {"type": "boolean", "description": "the price is older than the "
                        "admin setting loadtests.price-max-age-days (default 180)"},
        "levels_accepted": {"type": "array", "items": {"type": "boolean", "nullable": True}},
    })},
})  # fmt: skip
ADVICE = _object({
    "collector_id": _ID,
    "status": {"type": "string", "enum": ["ok", "no_influxdb", "history_error", "no_history",
                                          "no_loadtest", "no_candidates"]},
    "message": _TEXT,
    "params": _object({"percentile": _NUMBER, "headroom": _NUMBER, "days": {"type": "integer"}}),
    "samples": {"type": "integer", "minimum": 0},
    "busy_percentile": _NULLABLE_NUMBER, "busy_peak": _NULLABLE_NUMBER,
    "demand_units_per_second": _NULLABLE_NUMBER, "own_loadtest_id": _NULLABLE_ID,
    "candidates": {"type": "array", "items": _object({
        "rank": _ID, "price": PRICE, "loadtest_id": _ID, "units_at_headroom": _NUMBER,
        "machines": _ID, "usd_per_hour": _NUMBER, "usd_per_month": _NUMBER,
        "spare_percent": _NUMBER, "current": {"type": "boolean"},
    })},
    "excluded": {"type": "array", "items": _TEXT},
})  # fmt: skip


def _parameter(name: str, where: str, schema: Schema, description: str,
               required: bool = False) -> Schema:  # fmt: skip
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, "description": description}  # fmt: skip


SLUG = {"$ref": "#/components/parameters/slug"}
LIST_LIMIT = {"$ref": "#/components/parameters/list_limit"}
CURSOR = {"$ref": "#/components/parameters/cursor"}
NEXT_CURSOR = {"type": "string", "nullable": True,
               "description": "pass as 'cursor' for the next page; null on the last page"}  # fmt: skip
COLLECTOR = {"$ref": "#/components/parameters/collector_id"}
RUN_ID = _parameter("run_id", "path", _ID, "the load test's id")
PRICE_ID = _parameter("price_id", "path", _ID, "the catalog row's id")


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def _operation(
    operation_id: str, summary: str, ok: int, schema: Schema | None, errors: tuple[int, ...],
    parameters: tuple[Schema, ...] = (), body: Schema | None = None, **extra: Any,
) -> Schema:  # fmt: skip
    response: Schema = {"description": summary}
    if schema is not None:
        response["content"] = _json(schema)
    if ok == 201:
        response["headers"] = {"Location": {"schema": _TEXT, "description": "the new resource"}}
    operation: Schema = {
        "operationId": operation_id, "summary": summary, "tags": ["loadtests"],
        "responses": {str(ok): response,
                      **{str(code): {"$ref": f"#/components/responses/E{code}"} for code in errors}},
        **extra,
    }  # fmt: skip
    if parameters:
        operation["parameters"] = list(parameters)
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    return operation


READ = (400, 401, 404)
WRITE = (400, 401, 403, 404, 413)
UPLOAD_QUERY = (
    _parameter("collector_id", "query", _ID, "the tenant's collector the run belongs to"),
    _parameter("price_id", "query", _ID, "a catalog row to price the run with (else matched)"),
    _parameter("label", "query", _string(0, 100), "a name to show instead of the host's"),
)


def paths() -> dict[str, Any]:
    op = _operation
    return {
        "/loadtests": {"post": op(
            "uploadLoadTestWithCollectorKey",
            "Store a load-test result in the key's own tenant and collector "
            "(Authorization: Token <collector key>)",
            201, RUN_WITH_LEVELS, (400, 401, 403, 409, 413), body=DOCUMENT,
            security=[{"collectorKey": []}],
            description="A stored result is the key's use: the key's last_used_at and the "
            "collector's last_seen_at are written within seconds, as for a write to ingest; "
            "the collector's points_received, which counts line-protocol points, is not "
            "changed.")},
        "/tenants/{slug}/loadtests": {
            "get": op("listLoadTests", "The tenant's load tests, newest first (by start), a "
                      "page at a time; the next page's address is also a Link header", 200,
                      _object({"loadtests": {"type": "array", "items": RUN},
                               "next_cursor": NEXT_CURSOR}), READ,
                      (SLUG, _parameter("collector_id", "query", _ID, "only this collector's"),
                       LIST_LIMIT, CURSOR)),
            "post": op("uploadLoadTest", "Store a load-test result (analyst or admin)", 201,
                       RUN_WITH_LEVELS, (*WRITE, 409), (SLUG, *UPLOAD_QUERY), DOCUMENT),
        },
        "/tenants/{slug}/loadtests/compare": {"get": op(
            "compareLoadTests", "Compare 2 to 10 of the tenant's load tests", 200, COMPARISON,
            READ, (SLUG,
                   _parameter("ids", "query", {"type": "string", "pattern": IDS_PATTERN},
                              "2 to 10 load test ids, comma-separated", required=True),
                   _parameter("baseline", "query", _ID, "the run differences are measured "
                              "against (default: the first id)")))},
        "/tenants/{slug}/loadtests/{run_id}": {
            "get": op("getLoadTest", "One load test with its levels", 200, RUN_WITH_LEVELS, READ,
                      (SLUG, RUN_ID)),
            "delete": op("deleteLoadTest", "Delete a load test (analyst or admin)", 204, None,
                         (401, 403, 404), (SLUG, RUN_ID)),
        },
        "/tenants/{slug}/loadtests/{run_id}/price": {"post": op(
            "priceLoadTest", "Price a run with a catalog row now, or clear its price (analyst "
            "or admin); the run keeps a copy", 200, RUN_WITH_LEVELS, WRITE, (SLUG, RUN_ID),
            _object({"price_id": _NULLABLE_ID}))},
        "/tenants/{slug}/loadtests/{run_id}/reprice": {"post": op(
            "repriceLoadTest", "Price a run again from the tenant's current catalog, matched "
            "from its host facts as at upload (analyst or admin); the run keeps a copy", 200,
            RUN_WITH_LEVELS, (401, 403, 404), (SLUG, RUN_ID))},
        "/tenants/{slug}/prices": {
            "get": op("listPrices", "The tenant's catalog: global rows with the tenant's rows "
                      "overriding them", 200, _object({"prices": {"type": "array", "items": PRICE}}),
                      READ, (SLUG,)),
            "post": op("createPrice", "Add a tenant price (tenant admin)", 201, PRICE_WRITTEN,
                       (*WRITE, 409), (SLUG,), PRICE_CREATE),
        },
        "/tenants/{slug}/prices/{price_id}": {
            "patch": op("updatePrice", "Change a tenant price (tenant admin); stored runs keep "
                        "theirs", 200, PRICE_WRITTEN, (*WRITE, 409), (SLUG, PRICE_ID), PRICE_UPDATE),
            "delete": op("deletePrice", "Delete a tenant price (tenant admin)", 204, None,
                         (401, 403, 404), (SLUG, PRICE_ID)),
        },
        "/tenants/{slug}/collectors/{collector_id}/rightsizing": {"get": op(
            "rightsizeCollector", "Machine types ranked by the hourly cost of serving the "
            "collector's busy percentile within the headroom", 200, ADVICE, READ,
            (SLUG, COLLECTOR,
             _parameter("percentile", "query", _number(50, 100), "of busy% (default 95)"),
             _parameter("headroom", "query", _number(10, 100), "busy% target (default 70)"),
             _parameter("days", "query", _integer(1, 90), "history window (default 7)")))},
    }  # fmt: skip


def components() -> dict[str, Any]:
    return {"securitySchemes": {"collectorKey": {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "'Token pak_<id>_<secret>': a collector's key"}}}  # fmt: skip
