"""The OpenAPI 3.0.3 document of /api/v1, and the check that holds request bodies to it.

Request bodies are validated against the very schemas the document publishes (``check_body``), so
what the document refuses the API refuses too; the services then apply the rules a schema cannot
state (label names, uniqueness, a deletion's confirmation, which keys may rotate).

Patterns are written in the common subset of ECMA-262 and Python regular expressions: explicit
character classes instead of ``\\s``, and a final ``$`` that this module reads as ``\\Z``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from tenants import paging
from tenants.accounts import MAX_TOKEN_EXPIRY_DAYS
from tenants.crypto import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from tenants.errors import Invalid
from tenants.keys import DEFAULT_OVERLAP, MAX_EXPIRY_DAYS
from tenants.models import HOST_TAGS, ROLES
from tenants.tenancy import MAX_INGEST_BURST, MAX_INGEST_RATE
from tenants.validation import CONTROL, EMAIL_PATTERN, MAX_EMAIL_LENGTH, SPACE, readable_number
from tenants.web import MAX_BODY_BYTES, MAX_ROW_ID

Schema = dict[str, Any]

MAX_ID = MAX_ROW_ID
MAX_MEMORY_BYTES = 1 << 50
MAX_OVERLAP_HOURS = 30 * 24
DEFAULT_OVERLAP_HOURS = int(DEFAULT_OVERLAP.total_seconds()) // 3600
MAX_AUDIT_LIMIT = 500
DEFAULT_AUDIT_LIMIT = 100

NAME_PATTERN = rf"^[^{CONTROL}]*$"
NON_BLANK_NAME_PATTERN = rf"^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_PATTERN = rf"^{HOST_LABEL}(?:\.{HOST_LABEL})*$"
WORD_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
KEY_ID_PATTERN = r"^[a-z2-7]{13}$"
KEY_PATTERN = r"^pak_[a-z2-7]{13}_[A-Za-z0-9_-]{43}$"
PAT_PATTERN = r"^pat_[a-z2-7]{13}_[A-Za-z0-9_-]{43}$"
INVITATION_PATTERN = r"^pai_[a-z2-7]{13}_[A-Za-z0-9_-]{43}$"
STATUSES = ["active", "disabled"]
KEY_STATES = ["active", "expired", "revoked"]
TOKEN_STATES = KEY_STATES


def _string(
    max_length: int, min_length: int = 0, pattern: str | None = None, **extra: Any
) -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length, **extra}
    if min_length:
        schema["minLength"] = min_length
    if pattern:
        schema["pattern"] = pattern
    return schema


def _integer(minimum: int, maximum: int, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


def _object(properties: dict[str, Schema], required: list[str], **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return {**schema, **extra}


def _record(properties: dict[str, Schema]) -> Schema:
    """A response object: every field always present, no others."""
    return _object(properties, list(properties))


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(key: str, item: str) -> Schema:
    return _object({key: {"type": "array", "items": _ref(item)}}, [key])


def _page_of(key: str, item: str) -> Schema:
    """A page of a list (tenants/paging.py); the next page's address is also a Link header."""
    return _object(
        {
            key: {"type": "array", "items": _ref(item)},
            "next_cursor": {
                "type": "string",
                "nullable": True,
                "description": "pass as 'cursor' for the next page; null on the last page",
            },
        },
        [key, "next_cursor"],
    )


def _name(max_length: int, required: bool = True) -> Schema:
    if required:
        return _string(
            max_length, 1, NON_BLANK_NAME_PATTERN, description="not blank, no control characters"
        )
    return _string(max_length, 0, NAME_PATTERN, description="no control characters")


def _visible_name(max_length: int, more: str = "", required: bool = True) -> Schema:
    """A name people tell apart by sight (tenants.validation.name): also no character that shows
    nothing, which an ECMA-262 pattern without Unicode properties cannot state."""
    schema = _name(max_length, required)
    invisible = "no invisible or formatting characters (Unicode category Cf such as U+200B, "
    schema["description"] += (
        f", {invisible}or other default-ignorable ones); stored in NFC, each run of spaces of any "
        "kind as one ASCII space"
    )
    if more:
        schema["description"] += f"; {more}"
    return schema


def _token(max_length: int, what: str) -> Schema:
    return _string(
        max_length, 1, WORD_PATTERN, nullable=True,
        description=f"{what}: letters, digits, '.', '_' or '-' (stored lower-case)",
    )  # fmt: skip


_STRING: Schema = {"type": "string"}
_NULLABLE_STRING: Schema = {"type": "string", "nullable": True}
TIMESTAMP: Schema = {"type": "string", "format": "date-time", "description": "UTC"}
NULLABLE_TIMESTAMP: Schema = {**TIMESTAMP, "nullable": True}
ID: Schema = _integer(1, MAX_ID)
SLUG = _string(40, 1, SLUG_PATTERN, description="1-40 lowercase letters, digits, inner hyphens")
# the app's one e-mail rule (tenants.validation.email, which the services apply after this)
EMAIL = _string(
    MAX_EMAIL_LENGTH, 1, EMAIL_PATTERN, description="an e-mail address (stored lower-case)"
)
STATUS: Schema = {"type": "string", "enum": STATUSES}
HOST_TAG: Schema = {
    "type": "string",
    "enum": list(HOST_TAGS),
    "description": "pinned: ingest writes every point of the collector's keys with "
    "host=<hostname>, replacing the client's host tag, so its key cannot write as another host; "
    "free: the client's host tag is kept, for a collector that pushes for many hosts (Telegraf "
    "scraping SNMP devices, say). Either way ingest refuses a field named host from every "
    "key, as it does fields named tenant or collector: InfluxQL would read WHERE host = '...' "
    "as that field. A change reaches ingest within its key-cache-seconds",
}
ROLE: Schema = {"type": "string", "enum": list(ROLES)}
INGEST_LIMITS: dict[str, Schema] = {
    "ingest_rate": {
        "type": "number",
        "minimum": 0,
        "maximum": MAX_INGEST_RATE,
        "nullable": True,
        "description": "points per second ingest takes from this tenant, over all its workers; "
        "0: no limit; null: ingest's --limits.rate (platform admin)",
    },
    "ingest_burst": _integer(
        1,
        MAX_INGEST_BURST,
        nullable=True,
        description="points the tenant may write at once above its rate, and most in one "
        "request; null: ingest's --limits.burst (platform admin)",
    ),
}
KEY_ID = _string(13, 13, KEY_ID_PATTERN, description="the key's public id")
TOKEN_ID = _string(13, 13, KEY_ID_PATTERN, description="the token's public id")
HOSTNAME = _string(253, 1, HOSTNAME_PATTERN, description="a DNS hostname")
LABELS: Schema = {
    "type": "object",
    "maxProperties": 20,
    "additionalProperties": _string(200, 0, NAME_PATTERN),
    "description": "label names match [a-zA-Z_][a-zA-Z0-9_]{0,62}",
}

EXPIRES_IN_DAYS_NOTE = (
    "null or absent: never, or, called with an API token, that token's expiry (which the new "
    "one may not outlive)"
)
REQUEST_SCHEMAS: dict[str, Schema] = {
    "TenantCreate": _object(
        {
            "slug": SLUG,
            "name": _visible_name(200),
            "adopt_database": {
                "type": "boolean",
                "default": False,
                "description": "take over an InfluxDB database of the tenant's name that exists "
                "already and holds data (a restore, a re-created admin database): its data becomes "
                "the tenant's. Without it such a database is refused (409) and nothing is created",
            },
        },
        ["slug", "name"],
    ),
    "TenantUpdate": _object(
        {"name": _visible_name(200), "status": STATUS, **INGEST_LIMITS}, [], minProperties=1
    ),
    "TenantDelete": _object(
        {"confirm": _string(40, 1, description="the tenant's slug, typed again")}, ["confirm"]
    ),
    "MemberSet": _object({"email": EMAIL, "role": ROLE}, ["email", "role"]),
    "RoleSet": _object({"role": ROLE}, ["role"]),
    "InvitationCreate": _object({"email": EMAIL, "role": ROLE}, ["email", "role"]),
    "UserCreate": _object(
        {
            "email": EMAIL,
            "password": _string(MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, writeOnly=True),
            "name": _visible_name(200, required=False),
            "platform_admin": {"type": "boolean", "default": False},
        },
        ["email", "password"],
    ),
    "UserUpdate": _object(
        {
            "active": {
                "type": "boolean",
                "description": "false: the user cannot log in, their sessions end, their API "
                "tokens are refused and the invitations they may no longer grant are revoked; "
                "true: they may log in again and their unexpired tokens work again",
            },
            "platform_admin": {
                "type": "boolean",
                "description": "whether they manage every tenant and user; their tenant roles "
                "stay as they are",
            },
        },
        [],
        minProperties=1,
    ),
    "TokenCreate": _object(
        {
            "name": _name(100),
            "expires_in_days": _integer(
                1, MAX_TOKEN_EXPIRY_DAYS, nullable=True, description=EXPIRES_IN_DAYS_NOTE
            ),
        },
        ["name"],
    ),
    "CollectorCreate": _object(
        {
            "name": _visible_name(
                100, "unique in the tenant ignoring case; stored in Unicode's composed form (NFC)"
            ),
            "hostname": HOSTNAME,
            "labels": LABELS,
            "vcpus": _integer(1, 4096, nullable=True),
            "memory_bytes": _integer(1, MAX_MEMORY_BYTES, format="int64", nullable=True),
            "cloud_provider": _token(40, "e.g. aws"),
            "region": _token(60, "e.g. eu-west-1"),
            "instance_type": _token(80, "e.g. m6i.large"),
            "host_tag": {**HOST_TAG, "default": "pinned"},
        },
        ["name", "hostname"],
    ),
    "CollectorUpdate": _object({"status": STATUS, "host_tag": HOST_TAG}, [], minProperties=1),
    "KeyIssue": _object(
        {
            "collector_id": ID,
            "name": _name(100, required=False),
            "expires_in_days": _integer(1, MAX_EXPIRY_DAYS, nullable=True),
        },
        ["collector_id"],
    ),
    "KeyRotate": _object(
        {
            "overlap_hours": _integer(
                0,
                MAX_OVERLAP_HOURS,
                default=DEFAULT_OVERLAP_HOURS,
                description="how long the old key keeps working",
            ),
            "expires_in_days": _integer(
                1,
                MAX_EXPIRY_DAYS,
                description="when the new key expires, in days from now; absent: it is issued "
                "for as long as the old key was (a key that never expires is replaced by one that "
                "never expires)",
            ),
        },
        [],
    ),
}

_KEY_FIELDS: dict[str, Schema] = {
    "key_id": KEY_ID,
    "name": _STRING,
    "collector_id": ID,
    "state": {"type": "string", "enum": KEY_STATES},
    "created_at": TIMESTAMP,
    "created_by": {**ID, "nullable": True},
    "expires_at": NULLABLE_TIMESTAMP,
    "revoked_at": NULLABLE_TIMESTAMP,
    "last_used_at": {
        **NULLABLE_TIMESTAMP,
        "description": "UTC, to the minute: written at most once a minute per key, within "
        "seconds of an accepted write or load-test upload",
    },
    "rotated_from": {**KEY_ID, "nullable": True},
}
_USER_FIELDS: dict[str, Schema] = {
    "id": ID,
    "email": _STRING,
    "name": _STRING,
    "is_platform_admin": {"type": "boolean"},
    "is_active": {"type": "boolean"},
    "created_at": TIMESTAMP,
    "last_login_at": {
        **NULLABLE_TIMESTAMP,
        "description": "the last login on the pages; null: never (API tokens do not count)",
    },
}
_INVITATION_FIELDS: dict[str, Schema] = {
    "id": ID,
    "email": _STRING,
    "role": ROLE,
    "invited_by": {"type": "string", "description": "the inviting admin's e-mail, or cli"},
    "created_at": TIMESTAMP,
    "expires_at": TIMESTAMP,
}
_MEMBERSHIP = _record({"tenant": SLUG, "tenant_name": {"type": "string"}, "role": ROLE})
_USER_WITH_MEMBERSHIPS = {**_USER_FIELDS, "memberships": {"type": "array", "items": _MEMBERSHIP}}

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "Error": _record(
        {
            "error": _object(
                {
                    "code": _STRING,
                    "message": _STRING,
                    "field": {"type": "string", "description": "the request field at fault"},
                },
                ["code", "message"],
            )
        }
    ),
    "Tenant": _record(
        {
            "id": ID,
            "slug": SLUG,
            "name": _STRING,
            "status": STATUS,
            "influx_database": _STRING,
            "influx_read_user": _NULLABLE_STRING,
            **INGEST_LIMITS,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }
    ),
    "TenantList": _page_of("tenants", "Tenant"),
    "Member": _record({"user_id": ID, "email": _STRING, "name": _STRING, "role": ROLE}),
    "MemberList": _page_of("members", "Member"),
    "Invitation": _record(_INVITATION_FIELDS),
    "InvitationList": _page_of("invitations", "Invitation"),
    "NewInvitation": _record(
        {
            **_INVITATION_FIELDS,
            "token": _string(
                100, 1, INVITATION_PATTERN, description="the link's token: shown once, never again"
            ),
            "url": {
                "type": "string",
                "description": "the invitation's link (/invitations/<token>), to hand to the "
                "invited person: shown once, never again",
            },
        }
    ),
    "User": _record(_USER_FIELDS),
    "UserList": _page_of("users", "User"),
    "UserDetail": _record(_USER_WITH_MEMBERSHIPS),
    "Me": _record(_USER_WITH_MEMBERSHIPS),
    "Token": _record(
        {
            "token_id": TOKEN_ID,
            "name": _STRING,
            "state": {"type": "string", "enum": TOKEN_STATES},
            "created_at": TIMESTAMP,
            "expires_at": NULLABLE_TIMESTAMP,
            "last_used_at": {**NULLABLE_TIMESTAMP, "description": "UTC, to the minute"},
            "revoked_at": NULLABLE_TIMESTAMP,
        }
    ),
    "TokenList": _list_of("tokens", "Token"),
    "NewToken": _record(
        {
            "token": _string(100, 1, PAT_PATTERN, description="shown once, never again"),
            "token_id": TOKEN_ID,
            "name": _STRING,
            "created_at": TIMESTAMP,
            "expires_at": NULLABLE_TIMESTAMP,
        }
    ),
    "Collector": _record(
        {
            "id": ID,
            "name": _STRING,
            "hostname": _STRING,
            "labels": {"type": "object", "additionalProperties": _STRING},
            "vcpus": {"type": "integer", "nullable": True},
            "memory_bytes": {"type": "integer", "format": "int64", "nullable": True},
            "cloud_provider": _NULLABLE_STRING,
            "region": _NULLABLE_STRING,
            "instance_type": _NULLABLE_STRING,
            "status": STATUS,
            "host_tag": HOST_TAG,
            "created_at": TIMESTAMP,
            "last_seen_at": NULLABLE_TIMESTAMP,
            "points_received": {"type": "integer", "format": "int64", "minimum": 0},
        }
    ),
    "CollectorList": _page_of("collectors", "Collector"),
    "Key": _record(_KEY_FIELDS),
    "KeyList": _page_of("keys", "Key"),
    "NewKey": _record(
        {**_KEY_FIELDS, "key": _string(100, 1, KEY_PATTERN, description="shown once, never again")}
    ),
    "AuditEvent": _record(
        {
            "id": ID,
            "at": TIMESTAMP,
            "actor": {"type": "string", "description": "e-mail, 'cli' or 'system'"},
            "actor_user_id": {**ID, "nullable": True},
            "tenant_id": {**ID, "nullable": True},
            "action": _STRING,
            "target_type": _STRING,
            "target_id": _STRING,
            "details": {"type": "object"},
            "ip": {**_NULLABLE_STRING, "description": "null unless the caller is an admin"},
        }
    ),
    "AuditPage": _record(
        {
            "events": {"type": "array", "items": _ref("AuditEvent")},
            "next_before": {
                **ID,
                "nullable": True,
                "description": "pass as 'before' for the next page; null on the last page",
            },
        }
    ),
}

ERRORS = {
    400: "Bad input (the field at fault is named), or a session write without its CSRF token",
    401: "Not logged in: send 'Authorization: Bearer <API token>'",
    403: "Your role does not allow this",
    404: "No such resource, or not one you may see",
    409: "Conflicts with an existing resource, or would leave a tenant without an admin or the "
    "platform without an active platform admin",
    413: f"Request body over {MAX_BODY_BYTES >> 20} MiB",
    503: "The tenant storage (InfluxDB) refused or did not answer; nothing changed, try again",
}

# ---- the request-body check -------------------------------------------------------------------


def check_body(schema_name: str, value: Any) -> dict[str, Any]:
    """The body when it conforms to the named request schema; else Invalid naming the field."""
    schema = REQUEST_SCHEMAS[schema_name]
    if not isinstance(value, dict):
        raise Invalid("the request body must be a JSON object")
    _check_object(schema, value, None)
    return value


def _check(schema: Schema, value: Any, field: str) -> None:
    if value is None:
        if not schema.get("nullable"):
            raise Invalid(f"{field} must not be null", field)
        return
    _CHECKS[schema["type"]](schema, value, field)
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"{field} must be one of {', '.join(schema['enum'])}", field)


def _check_object(schema: Schema, value: Any, field: str | None) -> None:
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be an object", field)
    properties: dict[str, Schema] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for name in sorted(value):
        if name not in properties and extra is False:
            shown = shorten(name)
            raise Invalid(f"unknown field {shown!r}", shown if field is None else field)
    for name in schema.get("required", []):
        if name not in value:
            raise Invalid(f"{name} is required", name if field is None else field)
    _check_size(schema, value, field)
    for name, item in value.items():
        item_schema = properties.get(name, extra if isinstance(extra, dict) else None)
        if item_schema is not None:
            _check(item_schema, item, name if field is None else field)


def _check_size(schema: Schema, value: dict[str, Any], field: str | None) -> None:
    if len(value) < schema.get("minProperties", 0):
        raise Invalid("send at least one field to change", field)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise Invalid(f"{field} may hold at most {schema['maxProperties']} entries", field)


def _check_string(schema: Schema, value: Any, field: str) -> None:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string", field)
    try:
        value.encode()
    except UnicodeEncodeError:
        raise Invalid(f"{field} must be valid Unicode text", field) from None
    if not value and schema.get("minLength", 0):
        raise Invalid(f"{field} is required", field)
    if len(value) < schema.get("minLength", 0):  # given, but too short: say how long it must be
        raise Invalid(f"{field} must be at least {schema['minLength']} characters", field)
    if len(value) > schema.get("maxLength", len(value)):
        raise Invalid(f"{field} must be at most {schema['maxLength']} characters", field)
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        raise Invalid(f"{field} is not valid: {schema.get('description', 'wrong format')}", field)


def _check_integer(schema: Schema, value: Any, field: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{field} must be a whole number", field)
    if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        raise Invalid(
            f"{field} must be between {readable_number(schema['minimum'])} and "
            f"{readable_number(schema['maximum'])}",
            field,
        )


def _check_number(schema: Schema, value: Any, field: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Invalid(f"{field} must be a number", field)
    if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        raise Invalid(
            f"{field} must be between {readable_number(schema['minimum'])} and "
            f"{readable_number(schema['maximum'])}",
            field,
        )


def _check_boolean(schema: Schema, value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise Invalid(f"{field} must be true or false", field)


_CHECKS = {
    "object": _check_object,
    "string": _check_string,
    "integer": _check_integer,
    "number": _check_number,
    "boolean": _check_boolean,
}


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    """ECMA-262's ``$`` never matches before a final newline; Python's does unless it is ``\\Z``."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def matches(pattern: str, value: str) -> bool:
    return _regex(pattern).search(value) is not None


# ---- the document -----------------------------------------------------------------------------


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _path_parameter(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}  # fmt: skip


PARAMETERS: dict[str, dict[str, Any]] = {
    "slug": {**_path_parameter("slug", SLUG, "the tenant's slug"), "example": "acme"},
    "user_id": _path_parameter(
        "user_id", ID, "the user's id, as the member and user lists give it"
    ),
    "invitation_id": _path_parameter("invitation_id", ID, "the invitation's id"),
    "collector_id": _path_parameter("collector_id", ID, "the collector's id"),
    "key_id": _path_parameter("key_id", KEY_ID, "the key's public id"),
    "token_id": _path_parameter("token_id", TOKEN_ID, "the token's public id"),
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": _integer(1, MAX_AUDIT_LIMIT, default=DEFAULT_AUDIT_LIMIT),
        "description": "events per page",
    },
    "list_limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": _integer(1, paging.MAX_LIMIT, default=paging.DEFAULT_LIMIT),
        "description": "items per page",
    },
    "cursor": {
        "name": "cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": paging.MAX_CURSOR_LENGTH},
        "description": "the previous page's next_cursor; omit for the first page",
    },
    "q": {
        "name": "q",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": 253},
        "description": "only collectors whose name or hostname contains this, ignoring case",
    },
    "key_collector": {
        "name": "collector_id",
        "in": "query",
        "required": False,
        "schema": ID,
        "description": "only this collector's keys",
    },
    "before": {
        "name": "before",
        "in": "query",
        "required": False,
        "schema": ID,
        "description": "only events older than this event id (the previous page's next_before)",
    },
}


def _success(
    status: int, summary: str, schema_name: str | None, location: str = "the new resource"
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": summary}
    if schema_name is not None:
        response["content"] = _json(_ref(schema_name))
    if status == 201:
        response["headers"] = {"Location": {"schema": {"type": "string"}, "description": location}}
    return response


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: tuple[int, str | None],
    errors: tuple[int, ...],
    body: str | None = None,
    body_required: bool = True,
    parameters: tuple[str, ...] = (),
    also_ok: int | None = None,
    location: str = "the new resource",
) -> dict[str, Any]:
    """``location`` describes a 201's Location header where it is not the new resource's URL."""
    status, response_schema = ok
    responses = {str(status): _success(status, summary, response_schema, location)}
    if also_ok is not None:
        responses[str(also_ok)] = _success(also_ok, summary, response_schema)
    for code in errors:
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = [{"$ref": f"#/components/parameters/{p}"} for p in parameters]
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": _json(_ref(body))}
    return operation


READ = (401,)
READ_TENANT = (401, 404)
WRITE = (400, 401, 403, 413)
WRITE_TENANT = (400, 401, 403, 404, 413)
TENANT = ("slug",)
PAGE = ("list_limit", "cursor")
# tenants/grants.py: what a request made with an expiring API token may not do
NO_LASTING_GRANT = (
    ". Called with an API token that expires, {what} is a 403: signing in as that account would "
    "issue tokens without expiry (sign in, or use the admin CLI)"
)


def _paths() -> dict[str, dict[str, Any]]:
    op = _operation
    return {
        "/tenants": {
            "get": op("listTenants", "Tenants you can see, by name", "tenants",
                      (200, "TenantList"), (400, 401), parameters=PAGE),
            "post": op("createTenant", "Create a tenant and its storage (platform admin); an "
                       "InfluxDB database of its name holding data is refused (409) unless "
                       "adopt_database",
                       "tenants", (201, "Tenant"), (*WRITE, 409, 503), "TenantCreate"),
        },
        "/tenants/{slug}": {
            "get": op("getTenant", "One tenant", "tenants", (200, "Tenant"), READ_TENANT,
                      parameters=TENANT),
            "patch": op("updateTenant", "Rename (tenant admin); enable, disable or set ingest limits (platform admin)",
                        "tenants", (200, "Tenant"), WRITE_TENANT, "TenantUpdate",
                        parameters=TENANT),
            "delete": op("deleteTenant", "Delete a tenant with everything it owns (platform admin)",
                         "tenants", (204, None), (*WRITE_TENANT, 503), "TenantDelete",
                         parameters=TENANT),
        },
        "/tenants/{slug}/members": {
            "get": op("listMembers", "A tenant's members and their roles", "members",
                      (200, "MemberList"), (400, *READ_TENANT), parameters=(*TENANT, *PAGE)),
            "post": op("setMember", "Change a member's role (tenant admin), or add an existing "
                       "user directly (platform admin: 201). For a tenant admin any address "
                       "that is not a member's is 404 whether or not it has an account: invite "
                       "it (POST /tenants/{slug}/invitations). The last admin cannot be demoted"
                       + NO_LASTING_GRANT.format(what="adding a member or raising a role"),
                       "members", (201, "Member"), (*WRITE_TENANT, 409), "MemberSet",
                       parameters=TENANT, also_ok=200),
        },
        "/tenants/{slug}/invitations": {
            "get": op("listInvitations", "A tenant's pending invitations, newest first, without "
                      "their links (tenant admin)", "members", (200, "InvitationList"),
                      (400, 401, 403, 404), parameters=(*TENANT, *PAGE)),
            "post": op("createInvitation", "Invite an address to the tenant with a role (tenant "
                       "admin). The answer is the same whether or not the address has an "
                       "account: the invitation and its one-time link, shown once. The link "
                       "works once, until it expires (the admin setting invitation.valid-days), "
                       "and only while its inviter is still an active admin of the tenant or a "
                       "platform admin; it is accepted by logging in as the address (no account "
                       "is made through it); inviting the address again replaces its pending "
                       "invitation. A member's address is a 409"
                       + NO_LASTING_GRANT.format(what="an invitation"),
                       "members", (201, "NewInvitation"),
                       (*WRITE_TENANT, 409), "InvitationCreate", parameters=TENANT,
                       location="the tenant's pending invitations "
                       "(/api/v1/tenants/{slug}/invitations), which list the new one: a single "
                       "invitation has no URL of its own"),
        },
        "/tenants/{slug}/invitations/{invitation_id}": {
            "delete": op("revokeInvitation", "Revoke a pending invitation: its link stops working "
                         "(tenant admin). One used, revoked or expired, even since it was "
                         "listed, is a 404", "members", (204, None), (400, 401, 403, 404, 413),
                         parameters=(*TENANT, "invitation_id")),
        },
        "/tenants/{slug}/members/{user_id}": {
            "patch": op("setMemberRole", "Change a member's role by user id (tenant admin); the "
                        "last admin cannot be demoted"
                        + NO_LASTING_GRANT.format(what="raising a role"), "members", (200, "Member"),
                        (*WRITE_TENANT, 409), "RoleSet", parameters=(*TENANT, "user_id")),
            "delete": op("removeMember", "Remove a member (tenant admin); the last admin cannot "
                         "be removed", "members", (204, None), (*WRITE_TENANT, 409),
                         parameters=(*TENANT, "user_id")),
        },
        "/users": {
            "get": op("listUsers", "Every user by e-mail (platform admin)", "users",
                      (200, "UserList"), (400, 401, 403), parameters=PAGE),
            "post": op("createUser", "Create a user (platform admin)"
                       + NO_LASTING_GRANT.format(what="creating one"), "users", (201, "User"),
                       (*WRITE, 409), "UserCreate"),
        },
        "/users/{user_id}": {
            "get": op("getUser", "One user with their tenants and roles (platform admin)",
                      "users", (200, "UserDetail"), (401, 403, 404), parameters=("user_id",)),
            "patch": op("updateUser", "Enable or disable a user, grant or revoke platform admin "
                        "(platform admin), both in one change. Disabling ends the user's "
                        "sessions and refuses their API tokens at once on this server, within "
                        "key-cache-seconds on the others. The last active platform admin can be "
                        "neither disabled nor demoted (409); a platform admin may disable or "
                        "demote themselves while another active one remains. A field already as "
                        "asked changes and records nothing"
                        + NO_LASTING_GRANT.format(what="enabling a user or granting platform "
                                                  "admin"), "users", (200, "UserDetail"),
                        (*WRITE, 404, 409), "UserUpdate", parameters=("user_id",)),
        },
        "/me": {"get": op("getMe", "The calling user and their tenants", "users", (200, "Me"),
                          READ)},
        "/me/tokens": {
            "get": op("listTokens", "Your personal API tokens, newest first (no secrets)",
                      "users", (200, "TokenList"), READ),
            "post": op("createToken", "Issue a personal API token, shown once. Called with an "
                       "API token, the new one expires no later than the calling token: without "
                       "expires_in_days it takes the calling token's expiry, and one reaching "
                       "beyond it is a 400 (a signed-in session has no such limit)", "users",
                       (201, "NewToken"), (400, 401, 413), "TokenCreate"),
        },
        "/me/tokens/{token_id}": {
            "delete": op("revokeToken", "Revoke one of your API tokens: refused at once by the "
                         "server process that revoked it, within key-cache-seconds (2 s by "
                         "default, at most 5) by the others; another user's token is not found. "
                         "Called with an API token, only that token itself may be revoked (403 "
                         "for another: sign in, or use admin revoke-token)", "users", (204, None),
                         (400, 401, 403, 404, 413), parameters=("token_id",)),
        },
        "/tenants/{slug}/collectors": {
            "get": op("listCollectors", "A tenant's collectors, by name", "collectors",
                      (200, "CollectorList"), (400, *READ_TENANT),
                      parameters=(*TENANT, *PAGE, "q")),
            "post": op("registerCollector", "Register a collector (tenant admin)", "collectors",
                       (201, "Collector"), (*WRITE_TENANT, 409), "CollectorCreate",
                       parameters=TENANT),
        },
        "/tenants/{slug}/collectors/{collector_id}": {
            "get": op("getCollector", "One collector", "collectors", (200, "Collector"),
                      READ_TENANT, parameters=(*TENANT, "collector_id")),
            "patch": op("updateCollector", "Enable or disable a collector, or pin its points "
                        "to its hostname or free them (tenant admin)"
                        + NO_LASTING_GRANT.format(what="freeing them"),
                        "collectors", (200, "Collector"), WRITE_TENANT, "CollectorUpdate",
                        parameters=(*TENANT, "collector_id")),
        },
        "/tenants/{slug}/keys": {
            "get": op("listKeys", "A tenant's collector keys, or one collector's, newest first "
                      "(no secrets)", "keys", (200, "KeyList"), (400, *READ_TENANT),
                      parameters=(*TENANT, *PAGE, "key_collector")),
            "post": op("issueKey", "Issue a collector key, shown once (tenant admin). Called "
                       "with an API token that expires, the key expires with it at the latest "
                       "(an expires_in_days beyond is a 400)", "keys",
                       (201, "NewKey"), WRITE_TENANT, "KeyIssue", parameters=TENANT),
        },
        "/tenants/{slug}/keys/{key_id}": {
            "get": op("getKey", "One key (no secret)", "keys", (200, "Key"), READ_TENANT,
                      parameters=(*TENANT, "key_id")),
        },
        "/tenants/{slug}/keys/{key_id}/revoke": {
            "post": op("revokeKey", "Revoke a key (tenant admin): ingest and the admin servers "
                       "refuse it within key-cache-seconds (2 s by default, at most 5), as they "
                       "cache keys for that long", "keys", (200, "Key"),
                       WRITE_TENANT, parameters=(*TENANT, "key_id")),
        },
        "/tenants/{slug}/keys/{key_id}/rotate": {
            "post": op("rotateKey", "A new key for the same collector, issued for as long as the "
                       "old one was unless expires_in_days says otherwise; the old one expires "
                       "after the overlap (tenant admin). Called with an API token that "
                       "expires, the new key expires with it at the latest", "keys",
                       (201, "NewKey"), WRITE_TENANT,
                       "KeyRotate", body_required=False, parameters=(*TENANT, "key_id")),
        },
        "/tenants/{slug}/audit": {
            "get": op("tenantAudit", "A tenant's audit log, newest first (any member; addresses "
                      "for tenant admins only)", "audit",
                      (200, "AuditPage"), (400, 401, 403, 404),
                      parameters=(*TENANT, "limit", "before")),
        },
        "/audit": {
            "get": op("platformAudit", "The whole audit log, newest first (platform admin)",
                      "audit", (200, "AuditPage"), (400, 401, 403), parameters=("limit", "before")),
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.0.3",
                                      "content": _json({"type": "object"})}},
            },
        },
    }  # fmt: skip


def _loadtest_paths() -> dict[str, Any]:
    from tenants.loadtests.openapi_paths import paths

    return paths()


def _loadtest_components() -> dict[str, Any]:
    from tenants.loadtests.openapi_paths import components

    return components()


@cache
def query_parameters(path: str, method: str) -> frozenset[str] | None:
    """The query parameters documented for an operation; None when the operation is not."""
    method = "get" if method.upper() == "HEAD" else method.lower()
    operation = document()["paths"].get(path, {}).get(method)
    if operation is None:
        return None
    references = [p["$ref"].rpartition("/")[2] for p in operation.get("parameters", ())]
    return frozenset(
        PARAMETERS[name]["name"] for name in references if PARAMETERS[name]["in"] == "query"
    )


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "PerfAnalysis admin API",
            "version": "1.0.0",
            "description": (
                "Tenants, users, collectors and collector keys. Authenticate with "
                "'Authorization: Bearer pat_…' (POST /me/tokens issues one), or with the admin "
                "session cookie plus an X-CSRF-Token header on writes. Every error is "
                '{"error": {"code", "message", "field"?}}; unknown body fields and query '
                "parameters are refused. A tenant you are not a member of answers 404, as if it "
                "did not exist."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name} for name in
                 ("tenants", "members", "users", "collectors", "keys", "audit", "loadtests",
                  "meta")],
        "paths": {**_paths(), **_loadtest_paths()},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "pat_<id>_<secret>"},
                **_loadtest_components()["securitySchemes"],
            },
            "schemas": {**REQUEST_SCHEMAS, **RESPONSE_SCHEMAS},
            "parameters": PARAMETERS,
            "responses": {
                f"E{code}": {"description": text, "content": _json(_ref("Error"))}
                for code, text in ERRORS.items()
            },
        },
    }  # fmt: skip
