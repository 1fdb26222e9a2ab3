"""``perfanalysis grafana sync`` against a FAKE Grafana.

Grafana cannot run here, so ``FakeGrafana`` below stands in for it: a real HTTP server on a
loopback port, in a thread, that implements only the HTTP API calls the sync makes, with the
request shapes Grafana documents (paths, methods, required JSON fields, basic or bearer auth,
org context through the ``X-Grafana-Org-Id`` header or ``POST /api/user/using/:id``, 404 for
missing objects, 409 for an org or data source name already taken, 412 for a stale folder
version, 400 for deleting the org a request acts in) and keeps their state, so the tests can look at what a real Grafana would hold. It is
not Grafana: it does not render, query, evaluate rules, or validate dashboard JSON.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from perfanalysis.alerting.thresholds import load as load_thresholds
from perfanalysis.grafana import alerts, cli
from perfanalysis.grafana.client import SyncError
from perfanalysis.grafana.dashboards import DASHBOARDS
from perfanalysis.grafana.sync import grafana_wide
from tenants.crypto import Vault
from tenants.models import Tenant
from tests.conftest import TEST_SECRET, empty_tables

ADMIN = ("admin", "s3cret-admin")
TOKEN = "glsa_test_token"


@dataclass
class Org:
    id: int
    name: str
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    secure: dict[str, dict[str, str]] = field(default_factory=dict)  # uid -> secureJsonData
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    groups: dict[tuple[str, str], int] = field(default_factory=dict)  # (folder, group) -> interval
    contact_points: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=lambda: {"receiver": "grafana-default-email"})


class Reply(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class FakeGrafana:
    """State and request handling of the fake (see the module docstring)."""

    def __init__(self) -> None:
        self.orgs: dict[int, Org] = {1: Org(1, "Main Org.")}
        self.members: set[int] = {1}
        self.current_org = 1
        self.requests: list[dict[str, Any]] = []
        self.fail: dict[tuple[str, str], int] = {}  # (method, path regex) -> status, once
        self.lock = threading.Lock()
        self._next_id = 100

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- plumbing

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            org_header = headers.get("x-grafana-org-id")
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "org": org_header,
                    "headers": headers,
                    "body": body,
                }
            )
            for (fail_method, pattern), status in list(self.fail.items()):
                if fail_method == method and re.fullmatch(pattern, path.split("?")[0]):
                    del self.fail[(fail_method, pattern)]
                    return status, {"message": "internal server error"}
            try:
                self._authenticate(headers)
                org = self._org(org_header)
                return self._route(method, path, org, body)
            except Reply as reply:
                return reply.status, reply.body

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        basic = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
        if auth not in (basic, f"Bearer {TOKEN}"):
            raise Reply(401, {"message": "invalid username or password"})

    def _org(self, header: str | None) -> Org:
        if header is None:
            return self.orgs[self.current_org]
        if not header.isdigit() or int(header) not in self.orgs or int(header) not in self.members:
            raise Reply(401, {"message": "user is not a member of the organization"})
        return self.orgs[int(header)]

    def _route(self, method: str, path: str, org: Org, body: Any) -> tuple[int, Any]:
        path, _, query = path.partition("?")
        for pattern, handler in self.routes():
            match = re.fullmatch(pattern, f"{method} {path}")
            if match:
                return handler(org, body, query, *match.groups())
        raise Reply(404, {"message": "Not found"})

    def routes(self) -> list[tuple[str, Callable[..., tuple[int, Any]]]]:
        return [
            (r"GET /api/orgs/name/([^/]+)", self.get_org), (r"POST /api/orgs", self.create_org),
            (r"GET /api/orgs", self.search_orgs), (r"DELETE /api/orgs/(\d+)", self.delete_org),
            (r"POST /api/user/using/(\d+)", self.use_org),
            (r"GET /api/datasources", self.list_datasources),
            (r"GET /api/datasources/uid/([^/]+)", self.get_datasource),
            (r"POST /api/datasources", self.create_datasource),
            (r"PUT /api/datasources/uid/([^/]+)", self.update_datasource),
            (r"GET /api/folders/([^/]+)", self.get_folder), (r"POST /api/folders", self.create_folder),
            (r"PUT /api/folders/([^/]+)", self.update_folder),
            (r"GET /api/dashboards/uid/([^/]+)", self.get_dashboard),
            (r"POST /api/dashboards/db", self.save_dashboard),
            (r"DELETE /api/dashboards/uid/([^/]+)", self.delete_dashboard),
            (r"GET /api/v1/provisioning/alert-rules/([^/]+)", self.get_rule),
            (r"POST /api/v1/provisioning/alert-rules", self.create_rule),
            (r"PUT /api/v1/provisioning/alert-rules/([^/]+)", self.update_rule),
            (r"DELETE /api/v1/provisioning/alert-rules/([^/]+)", self.delete_rule),
            (r"GET /api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self.get_group),
            (r"PUT /api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self.put_group),
            (r"GET /api/v1/provisioning/contact-points", self.get_contact_points),
            (r"POST /api/v1/provisioning/contact-points", self.create_contact_point),
            (r"PUT /api/v1/provisioning/contact-points/([^/]+)", self.update_contact_point),
            (r"GET /api/v1/provisioning/policies", self.get_policy),
            (r"PUT /api/v1/provisioning/policies", self.put_policy),
        ]  # fmt: skip

    @staticmethod
    def require(body: Any, *keys: str) -> None:
        if not isinstance(body, dict):
            raise Reply(400, {"message": "bad request data"})
        missing = [k for k in keys if body.get(k) in (None, "")]
        if missing:
            raise Reply(400, {"message": f"missing required field(s): {', '.join(missing)}"})

    # -- orgs: GET /api/orgs/name/:name, POST /api/orgs, POST /api/user/using/:id

    def org_by_name(self, name: str) -> Org | None:
        return next((o for o in self.orgs.values() if o.name == name), None)

    def get_org(self, org: Org, body: Any, query: str, name: str) -> tuple[int, Any]:
        found = self.org_by_name(name)
        if found is None:
            raise Reply(404, {"message": "Organization not found"})
        return 200, {"id": found.id, "name": found.name, "address": {}}

    def create_org(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self.require(body, "name")
        if self.org_by_name(body["name"]):
            raise Reply(409, {"message": "Organization name taken"})
        new = Org(max(self.orgs) + 1, body["name"])
        self.orgs[new.id] = new
        self.members.add(new.id)  # the creating user becomes the new org's admin
        return 200, {"orgId": new.id, "message": "Organization created"}

    def search_orgs(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        """``GET /api/orgs?perpage=&page=``: a page of every org, by name (Grafana's order)."""
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        per_page, page = int(params.get("perpage", 1000)), int(params.get("page", 1))
        every = sorted(self.orgs.values(), key=lambda o: o.name)
        chosen = every[(page - 1) * per_page : page * per_page]
        return 200, [{"id": o.id, "name": o.name} for o in chosen]

    def delete_org(self, org: Org, body: Any, query: str, org_id: str) -> tuple[int, Any]:
        if int(org_id) not in self.orgs:
            raise Reply(404, {"message": "Failed to delete organization. ID not found"})
        if int(org_id) == org.id:  # the org the request acts in, by header or the user's current
            raise Reply(400, {"message": "Can not delete org for current user"})
        del self.orgs[int(org_id)]
        self.members.discard(int(org_id))
        return 200, {"message": "Organization deleted"}

    def use_org(self, org: Org, body: Any, query: str, org_id: str) -> tuple[int, Any]:
        if int(org_id) not in self.members:
            raise Reply(401, {"message": "Not a valid organization"})
        self.current_org = int(org_id)
        return 200, {"message": "Active organization changed"}

    # -- data sources

    def _public(self, org: Org, uid: str) -> dict[str, Any]:
        return {
            **org.datasources[uid],
            "secureJsonFields": dict.fromkeys(org.secure.get(uid, {}), True),
        }

    def list_datasources(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        return 200, [self._public(org, uid) for uid in org.datasources]

    def get_datasource(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        if uid not in org.datasources:
            raise Reply(404, {"message": "Data source not found"})
        return 200, self._public(org, uid)

    def create_datasource(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self.require(body, "name", "type", "access")
        if any(d["name"] == body["name"] for d in org.datasources.values()):
            raise Reply(409, {"message": "data source with the same name already exists"})
        uid = body.get("uid") or f"ds{self.next_id()}"
        if uid in org.datasources:
            raise Reply(409, {"message": "data source with the same uid already exists"})
        return 200, self._store_datasource(org, uid, body, self.next_id(), "Datasource added")

    def update_datasource(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        self.require(body, "name", "type", "access")
        if uid not in org.datasources:
            raise Reply(404, {"message": "Data source not found"})
        return 200, self._store_datasource(
            org, uid, body, org.datasources[uid]["id"], "Datasource updated"
        )

    def _store_datasource(
        self, org: Org, uid: str, body: dict[str, Any], ds_id: int, message: str
    ) -> dict[str, Any]:
        secure = body.get("secureJsonData") or {}
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        org.datasources[uid] = {**stored, "uid": uid, "id": ds_id, "orgId": org.id,
                                "version": org.datasources.get(uid, {}).get("version", 0) + 1}  # fmt: skip
        org.secure[uid] = {**org.secure.get(uid, {}), **secure}
        return {
            "datasource": self._public(org, uid),
            "id": ds_id,
            "message": message,
            "name": body["name"],
        }

    # -- folders

    def get_folder(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        if uid not in org.folders:
            raise Reply(404, {"message": "folder not found"})
        return 200, org.folders[uid]

    def create_folder(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self.require(body, "title")
        if body.get("uid") in org.folders:
            raise Reply(409, {"message": "a folder with the same uid already exists"})
        uid = body.get("uid") or f"f{self.next_id()}"
        org.folders[uid] = {"id": self.next_id(), "uid": uid, "title": body["title"], "version": 1}
        return 200, org.folders[uid]

    def update_folder(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        self.require(body, "title")
        folder = org.folders.get(uid)
        if folder is None:
            raise Reply(404, {"message": "folder not found"})
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            raise Reply(
                412,
                {
                    "message": "the folder has been changed by someone else",
                    "status": "version-mismatch",
                },
            )
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, folder

    # -- dashboards

    def get_dashboard(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        if uid not in org.dashboards:
            raise Reply(404, {"message": "Dashboard not found"})
        stored = org.dashboards[uid]
        folder = org.folders.get(stored["folderUid"], {})
        return 200, {"dashboard": stored["dashboard"],
                     "meta": {"folderUid": stored["folderUid"], "folderTitle": folder.get("title"),
                              "provisioned": False, "slug": "x", "type": "db"}}  # fmt: skip

    def delete_dashboard(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        if uid not in org.dashboards:
            raise Reply(404, {"message": "Dashboard not found"})
        removed = org.dashboards.pop(uid)["dashboard"]
        return 200, {"title": removed["title"], "message": f"Dashboard {removed['title']} deleted",
                     "id": removed["id"]}  # fmt: skip

    def save_dashboard(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self.require(body, "dashboard")
        dashboard = body["dashboard"]
        self.require(dashboard, "title")
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in org.folders:
            raise Reply(400, {"message": "folder not found"})
        uid = dashboard.get("uid") or f"d{self.next_id()}"
        existing = org.dashboards.get(uid)
        if (
            existing
            and not body.get("overwrite")
            and dashboard.get("version") != existing["dashboard"]["version"]
        ):
            raise Reply(
                412,
                {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                },
            )
        same_title = [d for u, d in org.dashboards.items()
                      if u != uid and d["folderUid"] == folder_uid and d["dashboard"]["title"] == dashboard["title"]]  # fmt: skip
        if same_title and not body.get("overwrite"):
            raise Reply(
                412,
                {
                    "message": "A dashboard with the same name in the folder already exists",
                    "status": "name-exists",
                },
            )
        version = existing["dashboard"]["version"] + 1 if existing else 1
        dash_id = existing["dashboard"]["id"] if existing else self.next_id()
        org.dashboards[uid] = {"folderUid": folder_uid,
                               "dashboard": {**dashboard, "id": dash_id, "uid": uid, "version": version}}  # fmt: skip
        return 200, {
            "id": dash_id,
            "uid": uid,
            "status": "success",
            "version": version,
            "url": f"/d/{uid}/x",
            "slug": "x",
        }

    # -- alerting provisioning

    RULE_FIELDS = (
        "title",
        "condition",
        "data",
        "folderUID",
        "ruleGroup",
        "noDataState",
        "execErrState",
        "for",
        "orgID",
    )

    def get_rule(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        if uid not in org.rules:
            raise Reply(404, None)
        return 200, org.rules[uid]

    def _check_rule(self, org: Org, body: Any, headers_provenance: bool) -> None:
        self.require(body, *self.RULE_FIELDS)
        if body["orgID"] != org.id:
            raise Reply(400, {"message": "orgID does not match the request's organization"})
        if body["folderUID"] not in org.folders:
            raise Reply(400, {"message": "folder does not exist"})
        refs = [d.get("refId") for d in body["data"]]
        if body["condition"] not in refs:
            raise Reply(400, {"message": "condition refers to an unknown query"})

    def create_rule(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self._check_rule(org, body, True)
        uid = body.get("uid") or f"r{self.next_id()}"
        if uid in org.rules:
            raise Reply(409, {"message": "a rule with this uid already exists"})
        return 201, self._store_rule(org, uid, body)

    def update_rule(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        if uid not in org.rules:
            raise Reply(404, None)
        self._check_rule(org, body, True)
        return 200, self._store_rule(org, uid, body)

    def delete_rule(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        """204 whether or not the rule exists (Grafana deletes by uid); a rule provisioned with
        provenance may only be deleted with the same provenance."""
        headers = self.requests[-1]["headers"]
        provided = "" if headers.get("x-disable-provenance") else "api"
        stored = org.provenance.get(uid, "")
        if stored not in ("", provided):
            raise Reply(409, {"message": f"cannot delete with provided provenance '{provided}', "
                                         f"needs '{stored}'"})  # fmt: skip
        org.rules.pop(uid, None)
        org.provenance.pop(uid, None)
        return 204, None

    def _store_rule(self, org: Org, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = self.requests[-1]["headers"]
        org.provenance[uid] = "" if headers.get("x-disable-provenance") else "api"
        org.groups.setdefault((body["folderUID"], body["ruleGroup"]), 10)
        org.rules[uid] = {**body, "uid": uid, "id": org.rules.get(uid, {}).get("id", self.next_id()),
                          "provenance": org.provenance[uid], "updated": "2026-01-01T00:00:00Z"}  # fmt: skip
        return org.rules[uid]

    def get_group(
        self, org: Org, body: Any, query: str, folder: str, group: str
    ) -> tuple[int, Any]:
        rules = [
            r for r in org.rules.values() if r["folderUID"] == folder and r["ruleGroup"] == group
        ]
        if (folder, group) not in org.groups or not rules:  # a group lives through its rules
            raise Reply(404, None)
        return 200, {
            "title": group,
            "folderUid": folder,
            "interval": org.groups[(folder, group)],
            "rules": rules,
        }

    def put_group(
        self, org: Org, body: Any, query: str, folder: str, group: str
    ) -> tuple[int, Any]:
        self.require(body, "interval")
        if not isinstance(body.get("rules"), list) or body["interval"] <= 0:
            raise Reply(400, {"message": "invalid rule group"})
        org.groups[(folder, group)] = body["interval"]
        return 200, body

    def get_contact_points(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        name = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("name")
        return 200, [c for c in org.contact_points.values() if name is None or c["name"] == name]

    def create_contact_point(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self.require(body, "name", "type", "settings")
        uid = body.get("uid") or f"c{self.next_id()}"
        org.contact_points[uid] = {**body, "uid": uid}
        return 202, org.contact_points[uid]

    def update_contact_point(self, org: Org, body: Any, query: str, uid: str) -> tuple[int, Any]:
        self.require(body, "name", "type", "settings")
        if uid not in org.contact_points:
            raise Reply(404, {"message": "contact point not found"})
        org.contact_points[uid] = {**body, "uid": uid}
        return 202, org.contact_points[uid]

    def get_policy(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        """The tree as Grafana returns it: ``routes`` left out when there are none (omitempty)."""
        return 200, {k: v for k, v in org.policy.items() if not (k == "routes" and not v)}

    def put_policy(self, org: Org, body: Any, query: str) -> tuple[int, Any]:
        self.require(body, "receiver")
        names = {c["name"] for c in org.contact_points.values()} | {"grafana-default-email"}
        receivers = [body["receiver"], *(r.get("receiver") for r in body.get("routes", []))]
        if any(r not in names for r in receivers if r):
            raise Reply(400, {"message": "receiver does not exist"})
        org.policy = body
        return 202, {"message": "policies updated"}

    # -- what the tests look at

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] in ("POST", "PUT", "DELETE", "PATCH")]


def _serve(fake: FakeGrafana) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _respond(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.handle(self.command, self.path, headers, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _respond  # noqa: N815

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server = _serve(fake)
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


PASSWORDS = {"acme": "acme-read-password-1", "globex": "globex-read-password-2"}


@pytest.fixture
def tenant_db(migrated_engine: Engine, database_url: str) -> Iterator[Callable[[str, str], None]]:
    """Two tenants with encrypted read passwords; the callable changes one tenant's password."""
    empty_tables(migrated_engine)
    vault = Vault(TEST_SECRET)
    sessions = sessionmaker(migrated_engine)
    with sessions.begin() as db:
        for slug, password in PASSWORDS.items():
            db.add(Tenant(slug=slug, name=slug.title(), influx_database=f"pa_{slug}",
                          influx_read_user=f"pa_{slug}_read",
                          influx_read_password_encrypted=vault.encrypt(password)))  # fmt: skip
        db.add(Tenant(slug="gone", name="Gone", status="disabled", influx_database="pa_gone"))

    def set_password(slug: str, password: str) -> None:
        with sessions.begin() as db:
            tenant = db.query(Tenant).filter_by(slug=slug).one()
            tenant.influx_read_password_encrypted = vault.encrypt(password)

    yield set_password
    empty_tables(migrated_engine)


def _run(url: str, database_url: str, *extra: str, password: str = ADMIN[1]) -> int:
    return cli.run(["sync", f"--url={url}", f"--user={ADMIN[0]}", f"--password={password}",
                    "--influxdb-url=http://influxdb:8086", f"--database-url={database_url}",
                    f"--secret-key={TEST_SECRET}", *extra])  # fmt: skip


@pytest.fixture(autouse=True)
def _no_grafana_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        n for n in os.environ if n.startswith(("PERFANALYSIS_GRAFANA_", "PERFANALYSIS_ADMIN_"))
    ]:
        monkeypatch.delenv(name)


def test_first_run_creates_an_org_and_datasource_per_tenant(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    orgs = {o.name: o for o in fake.orgs.values()}
    assert set(orgs) == {"Main Org.", "acme", "globex"}  # the disabled tenant gets nothing
    for slug, password in PASSWORDS.items():
        org = orgs[slug]
        assert list(org.datasources) == [f"influx-{slug}"]
        source = org.datasources[f"influx-{slug}"]
        assert source["type"] == "influxdb"
        assert source["access"] == "proxy"
        assert source["isDefault"]
        assert source["user"] == f"pa_{slug}_read"
        assert source["url"] == "http://influxdb:8086"
        assert source["jsonData"]["dbName"] == f"pa_{slug}"
        assert source["jsonData"]["version"] == "InfluxQL"
        assert org.secure[f"influx-{slug}"] == {"password": password}
    assert [
        r["path"] for r in fake.requests if r["method"] == "POST" and r["path"] == "/api/orgs"
    ] == ["/api/orgs"] * 2
    out = capsys.readouterr().out
    assert "acme: org 'acme'" in out
    assert "created" in out
    assert "2 tenant(s)" in out


def test_a_tenant_datasource_never_holds_another_tenants_credentials(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    for org in fake.orgs.values():
        for uid, source in org.datasources.items():
            slug = org.name
            others = [s for s in PASSWORDS if s != slug]
            assert uid == f"influx-{slug}"
            text = json.dumps([source, org.secure[uid]])
            assert not any(other in text or PASSWORDS[other] in text for other in others)
    # every write for a tenant went to that tenant's org, by header
    ids = {o.name: str(o.id) for o in fake.orgs.values()}
    for request in fake.writes():
        if request["path"].startswith("/api/datasources"):
            assert request["org"] in (ids["acme"], ids["globex"])
            expected = "acme" if request["org"] == ids["acme"] else "globex"
            assert request["body"]["secureJsonData"]["password"] == PASSWORDS[expected]


def test_second_run_is_a_no_op(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url, "--alert-webhook-url=http://relay:9000/alerts/{tenant}") == 0
    writes = len(fake.writes())
    capsys.readouterr()
    assert _run(url, database_url, "--alert-webhook-url=http://relay:9000/alerts/{tenant}") == 0
    assert len(fake.writes()) == writes, fake.writes()[writes:]
    out = capsys.readouterr().out
    assert "0 change(s)" in out
    assert "created" not in out
    assert "updated" not in out


def test_a_tenant_org_loses_the_prometheus_dashboards_an_earlier_sync_gave_it(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str, capsys: Any
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    org = next(o for o in fake.orgs.values() if o.name == "acme")
    for name in ("host-prometheus.json", "ingest.json"):  # as syncs before 2026-11-24 left them
        board = DASHBOARDS[name]()
        org.dashboards[board.uid] = {"folderUid": alerts.FOLDER_UID,
                                     "dashboard": {"uid": board.uid, "title": board.title,
                                                   "id": fake.next_id(), "version": 1}}  # fmt: skip
    capsys.readouterr()
    assert _run(url, database_url) == 0
    out = capsys.readouterr().out
    assert sorted(org.dashboards) == sorted(
        DASHBOARDS[name]().uid for name in ("host-influxdb.json", "fleet.json")
    )
    assert "acme: dashboard pa-ingest removed (it reads the platform's Prometheus)" in out
    assert _run(url, database_url) == 0
    assert "removed" not in capsys.readouterr().out


def test_dashboards_folder_and_alert_rules(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    org = next(o for o in fake.orgs.values() if o.name == "acme")
    assert org.folders[alerts.FOLDER_UID]["title"] == alerts.FOLDER_TITLE
    assert sorted(org.dashboards) == sorted(
        DASHBOARDS[name]().uid for name in ("host-influxdb.json", "fleet.json")
    )  # the Prometheus dashboards read the platform's Prometheus: the main org has them
    assert {d["folderUid"] for d in org.dashboards.values()} == {alerts.FOLDER_UID}
    thresholds = load_thresholds(alerts.default_thresholds())
    wanted = alerts.rules(alerts.settings_for(thresholds, "acme"))
    assert sorted(org.rules) == sorted(rule.uid for rule in wanted)
    for rule in org.rules.values():
        assert rule["labels"]["tenant"] == "acme"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["labels"]["alert"]
        assert rule["provenance"] == ""  # X-Disable-Provenance: still editable in the UI
        sources = {d["datasourceUid"] for d in rule["data"]}
        assert sources == {"influx-acme", "__expr__"}
    assert org.groups[(alerts.FOLDER_UID, alerts.GROUP)] == alerts.INTERVAL_SECONDS
    alerting = [r for r in fake.writes() if "/v1/provisioning/" in r["path"]]
    assert alerting
    assert all(r["headers"].get("x-disable-provenance") == "true" for r in alerting)


def test_contact_point_and_policy_with_a_webhook(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str
) -> None:
    fake, url = grafana
    assert _run(url, database_url, "--alert-webhook-url=http://relay:9000/alerts/{tenant}") == 0
    org = next(o for o in fake.orgs.values() if o.name == "globex")
    (contact,) = org.contact_points.values()
    assert contact["settings"]["url"] == "http://relay:9000/alerts/globex"
    assert org.policy["receiver"] == contact["name"]


def test_rotated_password_updates_only_that_datasource(
    grafana: tuple[FakeGrafana, str], tenant_db: Callable[[str, str], None], database_url: str
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    writes = len(fake.writes())
    tenant_db("acme", "a-brand-new-password")
    assert _run(url, database_url) == 0
    changed = fake.writes()[writes:]
    assert [(r["method"], r["path"]) for r in changed] == [
        ("PUT", "/api/datasources/uid/influx-acme")
    ]
    acme = next(o for o in fake.orgs.values() if o.name == "acme")
    assert acme.secure["influx-acme"]["password"] == "a-brand-new-password"


def test_existing_org_is_reused(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str
) -> None:
    fake, url = grafana
    fake.orgs[7] = Org(7, "acme")
    fake.members.add(7)
    assert _run(url, database_url, "--tenants=acme") == 0
    assert [o.name for o in fake.orgs.values()] == ["Main Org.", "acme"]
    assert "influx-acme" in fake.orgs[7].datasources


def test_token_auth(grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str) -> None:
    fake, url = grafana
    code = cli.run(["sync", f"--url={url}", f"--token={TOKEN}", "--influxdb-url=http://influxdb:8086",
                    f"--database-url={database_url}", f"--secret-key={TEST_SECRET}"])  # fmt: skip
    assert code == 0
    assert fake.requests[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_unauthorized_is_a_clear_error(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url, password="wrong") == 1
    err = capsys.readouterr().err
    assert f"Grafana at {url}" in err
    assert "401" in err
    assert "check the credentials" in err
    assert fake.writes() == []


def test_a_refusal_in_one_tenants_org_leaves_that_tenant_part_way_and_syncs_the_others(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    fake.fail[("POST", "/api/datasources")] = 500  # the first tenant's (acme's), once
    assert _run(url, database_url) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if "synced only in part" in line]
    assert len(failures) == 1
    assert failures[0].startswith("perfanalysis grafana sync: tenant acme synced only in part")
    assert "POST /api/datasources failed: 500" in failures[0]
    assert "(org " in failures[0]
    assert "1 tenant(s) not synced" in captured.out
    orgs = {o.name: o for o in fake.orgs.values()}
    assert list(orgs["acme"].datasources) == []
    assert list(orgs["globex"].datasources) == ["influx-globex"]
    assert orgs["globex"].dashboards  # globex went through every step after acme failed

    assert _run(url, database_url) == 0  # the next run completes acme
    assert list(orgs["acme"].datasources) == ["influx-acme"]
    assert orgs["acme"].dashboards.keys() == orgs["globex"].dashboards.keys()


def test_a_refusal_outside_any_org_stops_the_run_naming_the_tenants_synced_before_it(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 403 on an org lookup means the user is not a server admin: every tenant would fail."""
    fake, url = grafana
    fake.fail[("GET", "/api/orgs/name/globex")] = 403
    assert _run(url, database_url) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"perfanalysis grafana sync: Grafana at {url}: GET /api/orgs/name/globex")
    assert err.rstrip().endswith("(tenants synced before it: acme)")
    assert "globex" not in {o.name for o in fake.orgs.values()}


@pytest.mark.parametrize(
    ("status", "org_id", "wide"),
    [(None, None, True), (None, 7, True), (401, None, True), (403, None, True),
     (401, 7, False), (403, 7, False), (500, None, False), (400, 7, False)],
)  # fmt: skip
def test_which_refusals_stop_the_whole_run(
    status: int | None, org_id: int | None, wide: bool
) -> None:
    assert grafana_wide(SyncError("x", status, org_id)) is wide


def test_unknown_tenant_and_bad_configuration(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url = grafana
    assert _run(url, database_url, "--tenants=nope") == 1
    assert "no such tenant: nope" in capsys.readouterr().err
    assert cli.run(["sync", "--url=ftp://x"]) == 2
    assert "expected an http:// or https:// URL" in capsys.readouterr().err
    assert cli.run(["sync", f"--url={url}"]) == 2
    err = capsys.readouterr().err
    assert "--user and --password" in err
    assert "influxdb-url" in err


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


def test_unreachable_grafana_is_a_one_line_error(
    refused_port: int, tenant_db: Any, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{refused_port}"
    assert _run(url, database_url) == 1
    assert capsys.readouterr().err == (
        f"perfanalysis grafana sync: Grafana at {url}: GET /api/orgs/name/acme failed: "
        "Connection refused\n"
    )


@contextmanager
def serving_a_login_page(content_type: str) -> Iterator[str]:
    """What an SSO proxy in front of Grafana answers to every request: 200 and a page."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = b"<html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json"])
def test_an_answer_that_is_not_json_is_a_one_line_error(
    content_type: str, tenant_db: Any, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving_a_login_page(content_type) as url:
        assert _run(url, database_url) == 1
    assert capsys.readouterr().err == (
        f"perfanalysis grafana sync: Grafana at {url}: GET /api/orgs/name/acme failed: answered "
        "with something other than JSON: is --url Grafana's base URL?\n"
    )


def test_unreachable_and_unmigrated_admin_databases_are_one_line_errors(
    tmp_path: Path, refused_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.db").touch()
    cases = {
        f"sqlite:///{tmp_path}/empty.db": f"sqlite:///{tmp_path}/empty.db: no such table: "
        "tenants (run the migrations: perfanalysis admin init-db)",
        f"postgresql://reader:hunter2@127.0.0.1:{refused_port}/admin": "postgresql+psycopg://"
        f"reader:***@127.0.0.1:{refused_port}/admin: connection failed: ",
    }
    for database, expected in cases.items():
        assert _run(f"http://127.0.0.1:{refused_port}", database) == 1, database
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith(
            f"perfanalysis grafana sync: cannot read the admin database {expected}"
        )
        assert "hunter2" not in line


@pytest.mark.parametrize("name", ["admin.db", "missing/admin.db"])
def test_a_missing_sqlite_file_is_a_setting_error_and_nothing_is_created(
    tmp_path: Path, refused_port: int, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite would create the file, and sync would report an empty, unmigrated database."""
    path = tmp_path / name
    assert _run(f"http://127.0.0.1:{refused_port}", f"sqlite:///{path}") == 2
    assert capsys.readouterr().err == (
        f"perfanalysis grafana sync: setting database-url: no SQLite database at {path}: is the "
        "path right? (perfanalysis admin init-db creates it)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_bad_database_url_and_timeout_are_flag_errors(
    refused_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{refused_port}"
    assert _run(url, "not-a-url", "--timeout=inf") == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  - flag --database-url: invalid value 'not-a-url': expected a sqlite:// or "
        "postgresql:// URL",
        "  - flag --timeout: invalid value 'inf': must be finite",
    ]


def test_the_fake_switches_orgs_like_grafana(grafana: tuple[FakeGrafana, str]) -> None:
    """Both documented ways of choosing the org: the header, and POST /api/user/using/:id."""
    fake, _ = grafana
    auth = {
        "authorization": "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    }
    status, created = fake.handle("POST", "/api/orgs", auth, {"name": "acme"})
    assert status == 200
    assert fake.handle("POST", "/api/orgs", auth, {"name": "acme"})[0] == 409
    assert fake.handle("POST", "/api/datasources", {**auth, "x-grafana-org-id": "99"},
                       {"name": "x", "type": "influxdb", "access": "proxy"})[0] == 401  # fmt: skip
    assert fake.handle("POST", f"/api/user/using/{created['orgId']}", auth, None)[0] == 200
    body = {"name": "x", "type": "influxdb", "access": "proxy", "uid": "u"}
    assert fake.handle("POST", "/api/datasources", auth, body)[0] == 200
    assert "u" in fake.orgs[created["orgId"]].datasources
    assert fake.handle("POST", "/api/datasources", auth, body)[0] == 409
    assert fake.handle("POST", "/api/datasources", auth, {"name": "y"})[0] == 400
