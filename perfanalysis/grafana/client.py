"""A thin layer over grafana-client: JSON in and out, 404 as None, every failure one clear error."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException

NO_PROVENANCE = {"X-Disable-Provenance": "true"}  # provisioned objects stay editable in the UI


class SyncError(Exception):
    """Grafana refused or failed a request; the message names the request and Grafana's answer."""


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
            return self._api.client.GET(path, params=params)
        except GrafanaException as exc:
            if exc.status_code == 404:
                return None
            raise self._error("GET", path, exc) from None

    def send(self, method: str, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            return getattr(self._api.client, method)(path, json=body, headers=headers)
        except GrafanaException as exc:
            raise self._error(method, path, exc) from None

    def _error(self, method: str, path: str, exc: GrafanaException) -> SyncError:
        where = f"Grafana at {self.url}" + (f" (org {self.org_id})" if self.org_id else "")
        status = exc.status_code or "no answer"
        detail = exc.response.get("message") if isinstance(exc.response, dict) else exc.message
        hint = {401: " (check the credentials)", 403: " (the user must be a Grafana server admin)"}
        return SyncError(
            f"{where}: {method} /api{path} failed: {status}: {detail}{hint.get(exc.status_code, '')}"
        )
