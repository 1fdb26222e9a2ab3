"""``perfanalysis admin list-collectors|list-keys|list-users`` and ``export-targets``: listings
read a page at a time (the statements are counted, each bounded by the page), CSV and JSON that
parse back to the stored values, no key secret or hash anywhere, an unknown tenant refused by
name; target files that perfanalysis.alerting.targets (Prometheus 2.42's reading) takes, written
only when they change and removed only with --prune."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from flask import Flask
from sqlalchemy import event, select

from perfanalysis.alerting.targets import read_target_file, scrape
from tenants import db as database
from tenants import fleet_export
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector, set_collector_status
from tenants.keys import issue_key
from tenants.models import ApiKey, Collector
from tenants.tenancy import set_tenant_status
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

Run = Callable[..., Result]


@pytest.fixture
def acme(app: Flask, make_tenant: Any) -> None:
    make_tenant("acme", {"boss@acme.test": "admin", "vic@acme.test": "viewer"})
    make_tenant("globex", {"boss@acme.test": "viewer"})
    for number in range(1, 6):
        add_collector(app, "acme", f"web-{number}", f"web-{number}.acme.test",
                      labels=[f"rack=r{number}"])  # fmt: skip
    add_collector(app, "globex", "db-1", "db-1.globex.test")


def add_collector(app: Flask, slug: str, name: str, hostname: str, **fields: Any) -> Collector:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), slug)
        return register_collector(db, system_actor(), tenant,
                                  {"name": name, "hostname": hostname, **fields})  # fmt: skip


def stored_as_is(app: Flask, slug: str, name: str, hostname: str) -> None:
    """A collector stored without the service's checks, as one stored before them may be."""
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), slug)
        db.add(Collector(tenant_id=tenant.id, name=name, hostname=hostname, labels={}))
        db.commit()


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL each test's commands send, in order."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = app.extensions["pa_engine"]
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def rows(result: Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


# ---- listings -----------------------------------------------------------------------------------


def test_collectors_in_csv_and_json_hold_every_field(runner: Run, acme: None) -> None:
    listed = rows(runner("list-collectors", "acme", "--format", "csv"))
    assert [row["name"] for row in listed] == [f"web-{n}" for n in range(1, 6)]
    first = listed[0]
    assert first["hostname"] == "web-1.acme.test"
    assert (first["status"], first["host_tag"], first["vcpus"]) == ("active", "pinned", "")
    assert json.loads(first["labels"]) == {"rack": "r1"}
    assert first["created_at"].endswith("Z")
    assert first["last_seen_at"] == ""

    result = runner("list-collectors", "acme", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [item["name"] for item in document] == [row["name"] for row in listed]
    assert document[0]["labels"] == {"rack": "r1"}
    assert document[0]["vcpus"] is None
    assert document[0]["points_received"] == 0
    assert set(document[0]) == set(listed[0]) == {c.name for c in fleet_export.COLLECTOR_COLUMNS}


def test_the_table_is_aligned_and_shows_control_characters_escaped(
    app: Flask, runner: Run, acme: None
) -> None:
    add_collector(app, "acme", "宽宽", "wide.acme.test")
    stored_as_is(app, "acme", "evil\x1b[2Jname", "evil.acme.test")
    result = runner("list-collectors", "acme")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "NAME", "HOSTNAME", "STATUS", "HOST_TAG", "INSTANCE_TYPE",
                                "LAST_SEEN_AT", "POINTS_RECEIVED"]  # fmt: skip
    assert "\x1b" not in result.output
    assert "evil\\x1b[2Jname" in result.output
    # every row's hostname starts in the header's column, counting 宽 as two columns
    column = lines[0].index("HOSTNAME")
    for line in lines[1:]:
        shown = fleet_export._width(line[: line.index(".test") - 1].rsplit("  ", 1)[0] + "  ")
        assert shown == column, line


def test_an_empty_listing_is_a_header_or_an_empty_array(app: Flask, runner: Run,
                                                       make_tenant: Any) -> None:  # fmt: skip
    make_tenant("empty")
    assert runner("list-keys", "empty").output.split() == [
        "KEY_ID", "NAME", "COLLECTOR", "STATE", "CREATED_AT", "EXPIRES_AT", "REVOKED_AT",
        "LAST_USED_AT"]  # fmt: skip
    assert json.loads(runner("list-keys", "empty", "--format", "json").output) == []
    assert rows(runner("list-collectors", "empty", "--format", "csv")) == []


@pytest.mark.parametrize("command", ["list-collectors", "list-keys", "list-users"])
def test_listings_are_read_a_page_at_a_time(
    app: Flask, runner: Run, acme: None, statements: list[str], command: str,
    make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for number in range(1, 6):
        with app.app_context():
            db = database.session()
            tenant = tenant_for(db, system_actor(), "acme")
            collector = db.scalar(select(Collector).where(Collector.name == f"web-{number}"))
            issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"])
    for number in range(3):
        make_user(f"user-{number}@acme.test")
    monkeypatch.setattr(fleet_export, "PAGE_SIZE", 2)
    statements.clear()
    table = {"list-collectors": "collectors", "list-keys": "api_keys", "list-users": "users"}
    args = [command, "--format", "csv", *([] if command == "list-users" else ["acme"])]
    result = runner(*args)
    listed = rows(result)
    assert len(listed) == 5
    reads = [s for s in statements if s.startswith("SELECT") and f"FROM {table[command]}" in s]
    assert len(reads) == 3  # pages of 2, 2 and 1 (each asking for one row more than it shows)
    assert all(" LIMIT " in statement for statement in reads), reads


def test_list_users_all_with_their_tenants_or_a_tenants_members_with_roles(
    runner: Run, acme: None
) -> None:
    everyone = {row["email"]: row for row in rows(runner("list-users", "--format", "csv"))}
    assert json.loads(everyone["boss@acme.test"]["tenants"]) == {"acme": "admin",
                                                                 "globex": "viewer"}  # fmt: skip
    assert everyone["vic@acme.test"]["active"] == "true"
    assert everyone["vic@acme.test"]["platform_admin"] == "false"
    members = rows(runner("list-users", "acme", "--format", "csv"))
    assert [(row["email"], row["role"]) for row in members] == [
        ("boss@acme.test", "admin"), ("vic@acme.test", "viewer")]  # fmt: skip
    assert "password" not in runner("list-users", "--format", "json").output


def test_keys_show_their_public_parts_and_never_the_secret_nor_its_hash(
    app: Flask, runner: Run, acme: None
) -> None:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        collector = db.scalar(select(Collector).where(Collector.name == "web-2"))
        issued = issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"],
                           "deploy", 30)  # fmt: skip
        key_id, plaintext = issued.key.key_id, issued.plaintext
        secret = plaintext.rsplit("_", 1)[1]
        secret_hash = db.scalar(select(ApiKey.secret_hash).where(ApiKey.key_id == key_id))
    outputs = [runner("list-keys", "acme", "--format", fmt).output for fmt in ("table", "csv",
                                                                            "json")]  # fmt: skip
    for output in outputs:
        assert key_id in output
        assert secret not in output
        assert secret_hash not in output
    (key,) = json.loads(outputs[2])
    assert key["prefix"] == f"pak_{key_id}_"
    assert plaintext.startswith(key["prefix"])
    assert (key["collector"], key["name"], key["state"]) == ("web-2", "deploy", "active")
    assert key["expires_at"].endswith("Z")
    assert key["revoked_at"] is None
    runner("revoke-key", "acme", key_id)
    assert json.loads(runner("list-keys", "acme", "--format", "json").output)[0]["state"] == (
        "revoked"
    )


@pytest.mark.parametrize("args", [["list-collectors", "nope"], ["list-keys", "nope"],
                                  ["list-users", "nope"],
                                  ["export-targets", "{dir}", "--tenant", "acme", "--tenant",
                                   "nope"]])  # fmt: skip
def test_an_unknown_tenant_is_refused_by_name(
    admin_run: Callable[..., tuple[int, str, str]], acme: None, tmp_path: Path, args: list[str]
) -> None:
    status, out, err = admin_run(*(arg.format(dir=tmp_path) for arg in args))
    assert (status, out) == (1, "")
    assert err == "perfanalysis admin: no such tenant 'nope'\n"
    assert list(tmp_path.iterdir()) == []  # acme's file was not written either


def test_a_reader_that_stops_early_ends_the_listing_quietly(
    app: Flask, database_url: str, acme: None
) -> None:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        db.add_all(Collector(tenant_id=tenant.id, name=f"bulk-{n:05}",
                             hostname=f"bulk-{n}.acme.test", labels={}) for n in range(3000))  # fmt: skip
        db.commit()
    command = [sys.executable, "-m", "tenants.cli", f"--database-url={database_url}",
               f"--secret-key={TEST_SECRET}", "list-collectors", "acme"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:  # fmt: skip
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().split()[:2] == [b"ID", b"NAME"]
        process.stdout.close()  # like `| head -1`: far more than a pipe's buffer is left
        errors = process.stderr.read().decode()
        status = process.wait(timeout=60)
    assert (status, errors) == (0, "")


# ---- export-targets -----------------------------------------------------------------------------


def export(runner: Run, directory: Path, *args: str) -> Result:
    return runner("export-targets", str(directory), *args)


def test_targets_are_the_enabled_collectors_as_prometheus_reads_them(
    app: Flask, runner: Run, acme: None, tmp_path: Path
) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        web_3 = db.scalar(select(Collector).where(Collector.name == "web-3"))
        set_collector_status(db, system_actor(), tenant, web_3, active=False)
    add_collector(app, "acme", "yes", "no.acme.test")  # label values YAML 1.1 reads as booleans
    result = export(runner, targets, "--port", "9101")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"acme: 5 targets: {targets / 'acme.yml'} written",
        f"globex: 1 target: {targets / 'globex.yml'} written",
        f"{targets}: 2 tenants, 6 targets; files: 2 written, 0 unchanged",
    ]
    acme_file = read_target_file(targets / "acme.yml")
    assert (acme_file.targets, acme_file.tenants, acme_file.no_address) == (5, {"acme": 5}, [])
    groups = yaml.safe_load((targets / "acme.yml").read_text())
    assert [group["labels"]["collector"] for group in groups] == [
        "web-1", "web-2", "web-4", "web-5", "yes"]  # by name; web-3 is disabled  # fmt: skip
    assert groups[-1] == {"targets": ["no.acme.test:9101"],
                          "labels": {"tenant": "acme", "collector": "yes"}}  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(
        "scrape_configs:\n- job_name: node\n  file_sd_configs:\n  - files: [targets/*.yml]\n"
    )
    scraped = scrape(tmp_path)
    assert scraped is not None
    assert (scraped.tenants, scraped.problems) == ({"acme", "globex"}, [])


def test_a_disabled_tenant_lists_no_target(app: Flask, runner: Run, acme: None,
                                           tmp_path: Path) -> None:  # fmt: skip
    assert export(runner, tmp_path).exit_code == 0
    with app.app_context():
        db = database.session()
        set_tenant_status(db, system_actor(), tenant_for(db, system_actor(), "globex"), False)
    result = export(runner, tmp_path)
    assert f"globex: no target (the tenant is disabled): {tmp_path / 'globex.yml'} written" in (
        result.output
    )
    assert read_target_file(tmp_path / "globex.yml").targets == 0
    assert yaml.safe_load((tmp_path / "globex.yml").read_text()) == []


def test_a_hostname_prometheus_cannot_scrape_is_left_out_and_said(
    app: Flask, admin_run: Callable[..., tuple[int, str, str]], acme: None, tmp_path: Path
) -> None:
    stored_as_is(app, "globex", "legacy", "legacy host_1")
    status, _out, err = admin_run("export-targets", str(tmp_path), "--tenant", "globex")
    assert status == 0
    assert err == (f"warning: globex: collector 'legacy': hostname 'legacy host_1' is not a DNS "
                   f"name: left out of {tmp_path / 'globex.yml'}\n")  # fmt: skip
    assert read_target_file(tmp_path / "globex.yml").targets == 1


def test_a_second_export_rewrites_only_what_changed(
    app: Flask, runner: Run, acme: None, tmp_path: Path
) -> None:
    assert export(runner, tmp_path).exit_code == 0
    before = {path.name: path.stat() for path in tmp_path.iterdir()}
    again = export(runner, tmp_path)
    assert again.output.splitlines()[-1] == f"{tmp_path}: 2 tenants, 6 targets; files: 0 written, 2 unchanged"  # fmt: skip
    add_collector(app, "globex", "db-2", "db-2.globex.test")
    third = export(runner, tmp_path)
    assert f"globex: 2 targets: {tmp_path / 'globex.yml'} written" in third.output
    after = {path.name: path.stat() for path in tmp_path.iterdir()}
    assert set(after) == {"acme.yml", "globex.yml"}  # no temporary file left
    assert after["acme.yml"].st_ino == before["acme.yml"].st_ino
    assert after["acme.yml"].st_mtime_ns == before["acme.yml"].st_mtime_ns
    assert after["globex.yml"].st_ino != before["globex.yml"].st_ino  # replaced, not rewritten


def test_nothing_is_removed_without_prune_and_prune_says_what_it_removes(
    app: Flask, runner: Run, acme: None, make_tenant: Any, tmp_path: Path
) -> None:
    make_tenant("initech")  # no collector
    (tmp_path / "gone.yml").write_text(fleet_export.header("gone") + "- targets: ['x.test:1']\n")
    (tmp_path / "README.md").write_text("kept: not a target file\n")
    result = export(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert f"initech: no target (no enabled collector): {tmp_path / 'initech.yml'} written" in (
        result.output
    )
    assert (f"{tmp_path / 'gone.yml'}: no tenant gone: left as it is (generated; --prune removes "
            "it)") in result.output  # fmt: skip
    assert (tmp_path / "gone.yml").exists()

    pruned = export(runner, tmp_path, "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert pruned.output.splitlines() == [
        f"acme: 5 targets: {tmp_path / 'acme.yml'} unchanged",
        f"globex: 1 target: {tmp_path / 'globex.yml'} unchanged",
        f"initech: no target (no enabled collector): {tmp_path / 'initech.yml'} removed",
        f"{tmp_path / 'gone.yml'}: no tenant gone: removed (generated)",
        f"{tmp_path}: 3 tenants, 6 targets; files: 0 written, 2 unchanged, 2 removed",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md", "acme.yml",
                                                                "globex.yml"]  # fmt: skip


def test_prune_with_tenants_named_touches_no_other_file(
    runner: Run, acme: None, tmp_path: Path
) -> None:
    (tmp_path / "gone.yml").write_text("[]\n")
    result = export(runner, tmp_path, "--tenant", "globex", "--prune")
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["globex.yml", "gone.yml"]


def test_a_hand_written_file_with_hosts_is_kept_unless_prune(
    admin_run: Callable[..., tuple[int, str, str]], acme: None, tmp_path: Path
) -> None:
    hand_written = "- targets: ['old-1.acme.test:9100']\n  labels: {tenant: acme}\n"
    (tmp_path / "acme.yml").write_text(hand_written)
    (tmp_path / "globex.yml").write_text("# list globex's hosts here\n[]\n")  # nothing to lose
    status, out, err = admin_run("export-targets", str(tmp_path))
    assert status == 1
    assert (tmp_path / "acme.yml").read_text() == hand_written
    assert f"globex: 1 target: {tmp_path / 'globex.yml'} written" in out
    assert f"{tmp_path}: 2 tenants, 6 targets; files: 1 written, 0 unchanged, 1 hand-written left alone" in out  # fmt: skip
    assert (f"warning: acme: {tmp_path / 'acme.yml'} was written by hand and lists 1 target: "
            "left as it is") in err  # fmt: skip
    status, out, err = admin_run("export-targets", str(tmp_path), "--prune")
    assert (status, err) == (0, "")
    assert read_target_file(tmp_path / "acme.yml").targets == 5


def test_prune_removes_only_files_it_wrote_and_never_a_file_that_is_no_target_file(
    admin_run: Callable[..., tuple[int, str, str]], acme: None, make_tenant: Any, tmp_path: Path
) -> None:
    """Before, --prune removed every *.yml named for no tenant: `export-targets
    provisioning/prometheus --prune` deleted prometheus.yml. A tenant whose slug names a
    configuration file in a DIR given by mistake (prometheus) must not overwrite it either."""
    make_tenant("prometheus")
    config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
    (tmp_path / "prometheus.yml").write_text(config)
    (tmp_path / "alertmanager.yml").write_text("route:\n  receiver: default\n")
    hand_listed = "- targets: ['infra-1.test:9100']\n"
    (tmp_path / "infra.yml").write_text(hand_listed)
    status, out, err = admin_run("export-targets", str(tmp_path), "--prune")
    assert status == 1
    assert (tmp_path / "prometheus.yml").read_text() == config
    assert (tmp_path / "alertmanager.yml").read_text() == "route:\n  receiver: default\n"
    assert (tmp_path / "infra.yml").read_text() == hand_listed
    assert (f"warning: prometheus: {tmp_path / 'prometheus.yml'} is not a target file") in err
    assert (f"{tmp_path / 'alertmanager.yml'}: no tenant alertmanager: left as it is (not "
            "written by export-targets") in out  # fmt: skip
    assert f"{tmp_path / 'infra.yml'}: no tenant infra: left as it is" in out


def test_a_directory_that_is_missing_is_refused(
    admin_run: Callable[..., tuple[int, str, str]], acme: None, tmp_path: Path
) -> None:
    status, _, err = admin_run("export-targets", str(tmp_path / "missing"))
    assert status == 2
    assert "does not exist" in err
    assert not (tmp_path / "missing").exists()


def test_a_file_that_cannot_be_written_is_named(
    admin_run: Callable[..., tuple[int, str, str]], acme: None, tmp_path: Path
) -> None:
    (tmp_path / "globex.yml").mkdir()
    status, out, err = admin_run("export-targets", str(tmp_path))
    assert status == 1
    assert f"acme: 5 targets: {tmp_path / 'acme.yml'} written" in out
    assert err == (f"Error: cannot update {tmp_path / 'globex.yml'}: it is a directory, not a "
                   "target file; the target files listed above are done, the others left as "
                   "they were\n")  # fmt: skip
