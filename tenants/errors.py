"""Service errors: each carries the HTTP status, a stable code and, for bad input, the field."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


class Invalid(ServiceError):
    status, code = 400, "invalid"


class Unauthenticated(ServiceError):
    status, code = 401, "unauthenticated"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class StorageUnavailable(ServiceError):
    status, code = 503, "storage_unavailable"


class Throttled(ServiceError):
    status, code = 429, "throttled"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_form_error(error: ServiceError) -> bool:
    """Bad input, which a page shows at its form, as opposed to a refusal by role (403) or by
    tenancy (404 without a field), which the page raises on."""
    if isinstance(error, Invalid | Conflict):
        return True
    return isinstance(error, NotFound) and error.field is not None


class DatabaseInUse(Exception):
    """Not a service error: what a tenant's storage raises when provisioning a new tenant finds
    its database already there and holding data (made by hand, or left by a restore or an
    earlier tenant), which it does not take over unless told to adopt it; tenancy.create_tenant
    answers it with a Conflict that says how to proceed."""

    def __init__(self, database: str, measurement: str) -> None:
        super().__init__(f"the database {database} already exists and holds data")
        self.database = database
        self.measurement = measurement  # one of those it holds
