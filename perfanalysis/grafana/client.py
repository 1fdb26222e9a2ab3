"""A thin layer over grafana-client: JSON in and out, 404 as None, every failure one clear error."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException

NO_PROVENANCE = {"X-Disable-Provenance": "true"}  # provisioned objects stay editable in the UI


class SyncError(Exception):
    """Grafana refused or failed a request; the message names the request and Grafana's answer,
    ``status`` its HTTP status (None when there was no answer), ``org_id`` the org it acted in
    (None for a request outside any org)."""

    def __init__(self, message: str, status: int | None = None, org_id: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.org_id = org_id


class Grafana:
    def __init__(self, url: str, credential: str | tuple[str, str], timeout: float,
                 org_id: int | None = None) -> None:  # fmt: skip
        parts = urlsplit(url)
        self.url = url
        self.org_id = org_id
        self._api = GrafanaApi(
            credential, host=parts.hostname or "localhost", port=parts.port,
            url_path_prefix=parts.path.strip("/") + "/" if parts.path.strip("/") else "",
            protocol=parts.scheme or "http", timeout=timeout, organization_id=org_id,
        )  # fmt: skip

    def in_org(self, org_id: int) -> Grafana:
        """The same connection, acting in another org (``X-Grafana-Org-Id`` on every request)."""
        clone = Grafana.__new__(Grafana)
        clone.url, clone.org_id = self.url, org_id
        client = self._api.client
        clone._api = GrafanaApi(
            client.auth, host=client.url_host, port=client.url_port,
            url_path_prefix=client.url_path_prefix, protocol=client.url_protocol,
            timeout=client.timeout, organization_id=org_id,
        )  # fmt: skip
        return clone

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The JSON at ``path``, or None when Grafana answers 404."""
        try:
            return self._request("GET", path, params=params)
        except GrafanaException as exc:
            if exc.status_code == 404:
                return None
            raise self._error("GET", path, exc) from None

    def send(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            return self._request(method, path, json=body, headers=headers)
        except GrafanaException as exc:
            raise self._error(method, path, exc) from None

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """grafana-client's answer; failures it does not wrap (no connection, not JSON) as
        SyncError. A text/* answer comes back as a string: a login page, not the API."""
        try:
            answer = getattr(self._api.client, method)(path, **kwargs)
        except json.JSONDecodeError:
            raise self._failed(method, path, NOT_JSON) from None
        except OSError as exc:
            raise self._failed(method, path, _innermost_reason(exc)) from None
        if isinstance(answer, str):
            raise self._failed(method, path, NOT_JSON)
        return answer

    def _failed(self, method: str, path: str, reason: str, status: int | None = None) -> SyncError:
        where = f"Grafana at {self.url}" + (f" (org {self.org_id})" if self.org_id else "")
        return SyncError(f"{where}: {method} /api{path} failed: {reason}", status, self.org_id)

    def _error(self, method: str, path: str, exc: GrafanaException) -> SyncError:
        status = exc.status_code or "no answer"
        detail = exc.response.get("message") if isinstance(exc.response, dict) else exc.message
        hint = {401: " (check the credentials)", 403: " (the user must be a Grafana server admin)"}
        if self.org_id:  # acting in an org takes membership of it too
            hint[401] = (
                f" (check the credentials, and that the user is a member of org {self.org_id})"
            )
        reason = f"{status}: {detail}{hint.get(exc.status_code, '')}"
        return self._failed(method, path, reason, exc.status_code)


NOT_JSON = "answered with something other than JSON: is --url Grafana's base URL?"


def _innermost_reason(exc: BaseException) -> str:
    """The root cause of a connection failure ("Connection refused"), not the wrappers' text."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    root = seen[-1]
    reason = root.strerror if isinstance(root, OSError) else None
    return reason or str(root) or type(root).__name__
