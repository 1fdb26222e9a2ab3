"""Grafana orgs of deleted tenants: never handed to a new tenant of the same slug, reported as
orphans by every sync, deleted only by ``perfanalysis grafana prune-orphans``.

Against the FakeGrafana of test_grafana_sync.py, with tenants deleted through the admin app's own
``delete_tenant`` (with no InfluxDB to drop the database from).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from perfanalysis.grafana import cli
from tenants.access import system_actor
from tenants.crypto import Vault
from tenants.models import Tenant
from tenants.tenancy import NoStorage, delete_tenant
from tests.conftest import TEST_SECRET, empty_tables
from tests.unit import test_grafana_sync as sync_tests
from tests.unit.test_grafana_sync import ADMIN, FakeGrafana, Org, _run

# test_grafana_sync.py's fixtures: the fake Grafana, and the admin database with acme, globex and
# the disabled gone
grafana = sync_tests.grafana
tenant_db = sync_tests.tenant_db
_no_grafana_environment = sync_tests._no_grafana_environment

PRUNE = "perfanalysis grafana prune-orphans"
MARKER = "perfanalysisTenant"  # in the jsonData of the data source sync provisions


@pytest.fixture
def admin(migrated_engine: Engine) -> Iterator[Admin]:
    yield Admin(migrated_engine)
    empty_tables(migrated_engine)


class Admin:
    """What a platform admin does to tenants, on the admin database sync reads."""

    def __init__(self, engine: Engine) -> None:
        self.sessions = sessionmaker(engine)

    def delete(self, slug: str) -> None:
        with self.sessions() as db:
            tenant = db.query(Tenant).filter_by(slug=slug).one()
            delete_tenant(db, system_actor("test"), tenant, slug, NoStorage())

    def create(self, slug: str, password: str) -> None:
        with self.sessions.begin() as db:
            db.add(Tenant(slug=slug, name=slug.title(), influx_database=f"pa_{slug}",
                          influx_read_user=f"pa_{slug}_read",
                          influx_read_password_encrypted=Vault(TEST_SECRET).encrypt(password)))  # fmt: skip

    def delete_all(self) -> None:
        for slug in self.slugs():
            self.delete(slug)

    def slugs(self) -> list[str]:
        with self.sessions() as db:
            return [t.slug for t in db.query(Tenant)]


def _prune(url: str, database_url: str, *extra: str) -> int:
    return cli.run(["prune-orphans", f"--url={url}", f"--user={ADMIN[0]}",
                    f"--password={ADMIN[1]}", f"--database-url={database_url}",
                    f"--secret-key={TEST_SECRET}", *extra])  # fmt: skip


def _org(fake: FakeGrafana, name: str) -> Org:
    (org,) = [o for o in fake.orgs.values() if o.name == name]
    return org


def _marker(org: Org) -> Any:
    return org.datasources[f"influx-{org.name}"]["jsonData"][MARKER]


def test_sync_marks_each_org_with_its_tenant_instance(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str, admin: Admin
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    for slug in ("acme", "globex"):
        with admin.sessions() as db:
            created = db.query(Tenant).filter_by(slug=slug).one().created_at
        marker = _marker(_org(fake, slug))
        assert marker["slug"] == slug
        assert marker["createdAt"] == created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_recreated_slug_is_refused_its_predecessors_org_which_stays_untouched(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    admin: Admin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    hook = "--alert-webhook-url=http://relay:9000/alerts/{tenant}"
    assert _run(url, database_url, hook) == 0
    old = _org(fake, "acme")
    before = copy.deepcopy(old)
    admin.delete("acme")
    admin.create("acme", "the-new-customers-password")
    capsys.readouterr()
    writes = len(fake.writes())

    assert _run(url, database_url, hook) == 1

    out, err = capsys.readouterr()
    assert old == before  # the earlier customer's org: not a byte changed
    touching = [
        r for r in fake.writes()[writes:] if r["org"] == str(old.id) or "/orgs" in r["path"]
    ]
    assert touching == []
    assert "the-new-customers-password" not in json.dumps([o.secure for o in fake.orgs.values()])
    assert [o.name for o in fake.orgs.values()].count("acme") == 1  # nor a second "acme" made
    refusal = next(line for line in err.splitlines() if "tenant acme not synced" in line)
    assert f"Grafana org {old.id} 'acme' belongs to tenant acme created " in refusal
    assert "which no longer exists" in refusal
    assert PRUNE in refusal
    assert "1 tenant(s) not synced" in out.splitlines()[-1]
    # the other tenant still synced (its run wrote nothing new: it was up to date)
    assert "globex: data source influx-globex unchanged" in out


def test_after_pruning_the_recreated_tenant_gets_a_new_org(
    grafana: tuple[FakeGrafana, str], tenant_db: Any, database_url: str, admin: Admin
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    old_id = _org(fake, "acme").id
    admin.delete("acme")
    admin.create("acme", "the-new-customers-password")
    assert _prune(url, database_url) == 0
    assert old_id not in fake.orgs
    assert _run(url, database_url) == 0
    new = _org(fake, "acme")
    assert new.id != old_id
    assert new.secure["influx-acme"]["password"] == "the-new-customers-password"


def test_every_sync_reports_an_orphan_and_deletes_nothing(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    admin: Admin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    orphan = _org(fake, "acme")
    admin.delete("acme")
    capsys.readouterr()
    for extra in ((), ("--tenants=globex",)):
        assert _run(url, database_url, *extra) == 0
        out, err = capsys.readouterr()
        [warning] = [line for line in err.splitlines() if "orphan" in line]
        assert warning.startswith(
            f"perfanalysis grafana sync: warning: org {orphan.id} 'acme' is an orphan: it "
            "belongs to tenant acme created "
        )
        assert PRUNE in warning
        assert out.splitlines()[-1] == (f"1 tenant(s), 0 change(s), 1 orphan org(s) ({PRUNE})")
        assert orphan.id in fake.orgs
        assert all(r["method"] != "DELETE" for r in fake.requests)


def test_prune_deletes_only_marked_orphans(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    admin: Admin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    fake.orgs[50] = Org(50, "made-by-hand")  # no marker: never touched
    fake.members.add(50)
    fake.orgs[51] = Org(51, "marked-by-hand")  # a marker sync never writes: never touched
    fake.orgs[51].datasources["x"] = {"uid": "x", "name": "x", "jsonData": {MARKER: "acme"}}
    fake.members.add(51)
    acme, globex = _org(fake, "acme"), _org(fake, "globex")
    # a disabled tenant is no orphan: its org (marked as a sync would) stays
    with admin.sessions() as db:
        gone = db.query(Tenant).filter_by(slug="gone").one()
        gone_marker = {
            "slug": "gone",
            "createdAt": gone.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    fake.orgs[52] = Org(52, "gone")
    fake.orgs[52].datasources["influx-gone"] = {"uid": "influx-gone", "name": "InfluxDB",
                                                "jsonData": {MARKER: gone_marker}}  # fmt: skip
    fake.members.add(52)
    fake.orgs[1].name = "acme-main"  # the main org is never an orphan, whatever its name
    admin.delete("acme")
    capsys.readouterr()

    assert _prune(url, database_url, "--dry-run") == 0
    out, _ = capsys.readouterr()
    assert acme.id in fake.orgs
    assert all(r["method"] != "DELETE" for r in fake.requests)
    assert f"org {acme.id} 'acme', of tenant acme created " in out
    assert "would be deleted" in out

    assert _prune(url, database_url) == 0
    out, err = capsys.readouterr()
    assert sorted(fake.orgs) == sorted([1, globex.id, 50, 51, 52])
    deletes = [r for r in fake.requests if r["method"] == "DELETE"]
    assert [(r["path"], r["org"]) for r in deletes] == [(f"/api/orgs/{acme.id}", "1")]
    assert out.splitlines()[-1] == "1 orphan org(s) deleted"
    assert "org 51 'marked-by-hand' has a data source whose jsonData.perfanalysisTenant" in err

    assert _prune(url, database_url) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no orphan org: nothing to delete"


def test_an_empty_tenant_list_refuses_to_prune_unless_forced(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    admin: Admin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    assert _run(url, database_url) == 0
    managed = sorted(o.id for o in fake.orgs.values() if o.id != 1)
    admin.delete_all()
    assert admin.slugs() == []
    capsys.readouterr()

    for extra in ((), ("--dry-run",)):
        assert _prune(url, database_url, *extra) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{PRUNE}: refused, nothing deleted: the admin database ")
        assert "has no tenants" in err
        assert "--force" in err
        assert sorted(o.id for o in fake.orgs.values() if o.id != 1) == managed
    assert all(r["method"] != "DELETE" for r in fake.requests)

    assert _prune(url, database_url, "--force") == 0
    assert list(fake.orgs) == [1]


def test_an_admin_database_owning_none_of_the_orgs_refuses_to_prune(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    admin: Admin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a --database-url naming another deployment's database looks like: the same slugs,
    other instances."""
    fake, url = grafana
    assert _run(url, database_url) == 0
    count = len(fake.orgs)
    for slug in admin.slugs():
        admin.delete(slug)
        admin.create(slug, "another-deployment")
    capsys.readouterr()
    assert _prune(url, database_url) == 1
    err = capsys.readouterr().err
    assert "none of the 3 tenant(s) in the admin database" in err
    assert "is --database-url this Grafana's admin database?" in err
    assert len(fake.orgs) == count


def test_an_unmarked_org_of_the_tenants_name_is_adopted_and_marked(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    fake.orgs[7] = Org(7, "acme")  # made by hand, or by a sync from before the marker
    fake.orgs[7].datasources["hand-made"] = {"uid": "hand-made", "name": "Loki", "jsonData": {}}
    fake.members.add(7)
    assert _run(url, database_url, "--tenants=acme") == 0
    assert "acme: org 'acme' (id 7) adopted (it carried no sync marker)" in capsys.readouterr().out
    assert _marker(fake.orgs[7])["slug"] == "acme"
    assert _run(url, database_url, "--tenants=acme") == 0
    out = capsys.readouterr().out
    assert "acme: org 'acme' (id 7) unchanged" in out
    assert out.splitlines()[-1] == "1 tenant(s), 0 change(s)"


def test_the_main_org_is_never_given_to_a_tenant(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = grafana
    fake.orgs[1].name = "acme"
    assert _run(url, database_url) == 1
    assert "Grafana's main org (id 1) is named 'acme'" in capsys.readouterr().err
    assert fake.orgs[1].datasources == {}
    assert "influx-globex" in _org(fake, "globex").datasources


def test_prune_takes_syncs_variables_but_refuses_its_write_flags(
    grafana: tuple[FakeGrafana, str],
    tenant_db: Any,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The grafana-sync service of docker-compose.yml sets these for sync; prune runs there too."""
    _, url = grafana
    monkeypatch.setenv("PERFANALYSIS_GRAFANA_INFLUXDB_URL", "http://influxdb:8086")
    monkeypatch.setenv("PERFANALYSIS_GRAFANA_ALERT_WEBHOOK_URL", "http://relay:9000/{tenant}")
    assert _prune(url, database_url) == 0
    assert _prune(url, database_url, "--tenants=acme") == 2
    assert "--tenants" in capsys.readouterr().err
