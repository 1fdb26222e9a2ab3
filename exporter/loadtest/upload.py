"""Sends a result to the admin app: ``POST <base URL>/api/v1/loadtests`` with the collector key.

The admin app answers 201 with the stored run as JSON (its id and URL), or 409 when it already
holds the same result (an earlier upload whose answer was lost): that is ``AlreadyStored``, with
the id. Nothing else means stored. Every failure becomes an ``UploadError`` whose message says
what to do: a 400/422 lists the fields the server refused, a 401/403 points at the key file, a 404
at the base URL, connection errors and timeouts name the URL. A redirect is not followed (requests
would repeat the POST as a GET and take the page it lands on, such as a login page, for success):
it is a failure that names where it pointed and asks for the admin app's own base URL. Any other
answer, a 2xx other than 201 or a 201 that is not the admin app's JSON included, is a failure
too. Only connection errors, timeouts, a 429 and a 5xx are ``transient``: sending the same file
again may succeed.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import requests

from exporter import __version__
from exporter.push.keyfile import KeyFile

ENDPOINT = "/api/v1/loadtests"
SHOWN_BODY = 2000
STORED_ID = re.compile(r"load test (\d+)")


class UploadError(Exception):
    def __init__(
        self, message: str, details: list[str] | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.transient = transient


class AlreadyStored(Exception):
    """409: the admin app holds this result already; ``run_id`` when its answer names it."""

    def __init__(self, run_id: int | None, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.message = message

    def describe(self) -> str:
        stored = f"load test {self.run_id}" if self.run_id is not None else "a load test"
        return f"already uploaded: the admin app holds this result as {stored}"


def _already_stored(payload: Any, body: str) -> AlreadyStored:
    message = "; ".join(field_errors(payload)) or body or "(no details given)"
    found = STORED_ID.search(message)
    return AlreadyStored(int(found.group(1)) if found else None, message)


def endpoint(base_url: str) -> str:
    return base_url.rstrip("/") + ENDPOINT


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def field_errors(payload: Any) -> list[str]:
    """The problems a refusal names, in the admin API's shapes: ``{"error": {"message",
    "field", "details"}}`` or ``{"errors": [...]}`` / ``{"errors": {field: message}}``."""
    found: list[str] = []

    def add(item: Any, field: str | None = None) -> None:
        if isinstance(item, str):
            # the admin app's load-test messages begin with their field, as the local check's do
            named = not field or item == field or item.startswith(f"{field} ")
            found.append(item if named else f"{field}: {item}")
        elif isinstance(item, Mapping):
            name = item.get("field") or item.get("path") or item.get("loc") or field
            message = item.get("message") or item.get("msg") or item.get("detail")
            if message is not None:
                add(str(message), str(name) if name else None)
            for nested in ("details", "errors"):
                if nested in item:
                    add(item[nested], None)
        elif isinstance(item, list):
            for entry in item:
                add(entry, field)

    if isinstance(payload, Mapping):
        if "error" in payload:
            add(payload["error"])
        errors = payload.get("errors")
        if isinstance(errors, Mapping):
            for name, message in errors.items():
                add(message if isinstance(message, str | list) else str(message), str(name))
        elif errors is not None:
            add(errors)
    return found


def _body_text(response: requests.Response) -> str:
    return response.text[:SHOWN_BODY].strip()


def post_result(
    body: bytes,
    base_url: str,
    key: KeyFile,
    timeout: float,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Upload one result (JSON bytes); return the server's JSON answer. Raises
    ``AlreadyStored`` on a 409 and ``UploadError`` on every other failure."""
    url = endpoint(base_url)
    headers = {
        "Authorization": key.authorization,
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"perfanalysis-loadtest/{__version__}",
    }
    poster = session or requests
    try:
        # never followed: requests would send a 301/302/303's POST again as a GET, and the page it
        # lands on (a login page, the HTTPS site's front page) would answer 200
        response = poster.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.Timeout:
        raise UploadError(f"no answer from {url} within {timeout:g}s", transient=True) from None
    except requests.ConnectionError as exc:
        raise UploadError(f"cannot connect to {url}: {exc}", transient=True) from None
    except requests.RequestException as exc:
        raise UploadError(f"the upload to {url} failed: {exc}", transient=True) from None
    status = response.status_code
    payload = _json(response)
    if status == 201 and isinstance(payload, dict) and payload.get("id") is not None:
        return payload
    if 300 <= status < 400:
        raise _redirected(url, status, response.headers.get("Location"))
    if 200 <= status < 300:
        raise UploadError(
            f"{url} answered {status} but not with the admin app's answer (201 with the stored "
            "run as JSON): the result is not known to be stored; --upload must be the admin "
            "app's base URL",
            [f"the answer began: {_body_text(response)[:200] or '(empty)'}"],
        )
    if status == 409:
        raise _already_stored(payload, _body_text(response))
    if status in (400, 422):
        details = field_errors(payload) or [_body_text(response) or "(no details given)"]
        raise UploadError(f"the admin app refused the result ({status}):", details)
    if status in (401, 403):
        raise UploadError(
            f"the admin app refused the collector key in {key.path} ({status}): "
            "check it is a current collector key (pak_...) of the tenant the result belongs to",
            field_errors(payload),
        )
    if status == 404:
        raise UploadError(
            f"no load-test endpoint at {url} (404): --upload must be the admin app's base URL"
        )
    detail = field_errors(payload) or ([_body_text(response)] if response.text else [])
    transient = status == 429 or status >= 500
    raise UploadError(f"the admin app answered {status} to {url}", detail, transient)


def _redirected(url: str, status: int, location: str | None) -> UploadError:
    """A redirect of the POST: where it pointed, and the base URL to give instead when that is
    the same endpoint elsewhere (``http://`` to ``https://``, another host or path prefix)."""
    if not location:
        return UploadError(
            f"{url} answered {status} (a redirect without a Location): nothing was stored; "
            "--upload must be the admin app's base URL"
        )
    target = urllib.parse.urljoin(url, location)
    parts = urllib.parse.urlsplit(target)
    path = parts.path.rstrip("/")
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path[: -len(ENDPOINT)], "", ""))
    if not path.endswith(ENDPOINT) or parts.scheme not in ("http", "https"):
        advice = (
            "it does not point to the load-test endpoint (a login page, for instance, when the "
            "path prefix is wrong): --upload must be the admin app's own base URL"
        )
    elif base == url[: -len(ENDPOINT)]:
        advice = "it points back to the same base URL: check the proxy in front of the admin app"
    else:
        advice = f"give the base URL it points to: --upload {base}"
    return UploadError(
        f"{url} answered {status}, redirecting to {target}: the upload is not sent across a "
        f"redirect and nothing was stored; {advice}"
    )


def describe_answer(answer: Mapping[str, Any]) -> str:
    """One line for a stored run: its id and URL when the server gave them."""
    run_id = answer.get("id")
    url = answer.get("url") or answer.get("html_url")
    if run_id is None and url is None:
        return f"uploaded: {answer}"
    parts = [f"id {run_id}" if run_id is not None else "", str(url) if url else ""]
    return "uploaded: stored as " + ", ".join(p for p in parts if p)
