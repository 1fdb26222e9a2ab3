"""``perfanalysis admin read-credentials``: a tenant's InfluxDB read user and password, for an SRE
querying the tenant's data with the influx CLI.

An auditor's finding: the password was stored (encrypted, for Grafana) but nothing gave it back;
it had to be decrypted from the admin database by hand.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants.crypto import Vault
from tenants.models import AuditEvent, Tenant

AdminRun = Callable[..., tuple[int, str, str]]
OLD_SECRET = "an-earlier-server-secret-" + "o" * 30
READ_PASSWORD = "s3cret-read-password_xyz"

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def acme(app: Flask, make_tenant: Callable[..., Any]) -> Callable[..., None]:
    """acme(secret=None): the tenant acme with its read password stored under ``secret`` (the
    app's own by default); the test app has no InfluxDB, so it is stored here."""

    def make(secret: str | None = None) -> None:
        make_tenant("acme")
        with app.app_context():
            db = database.session()
            tenant = db.scalar(select(Tenant).where(Tenant.slug == "acme"))
            assert tenant is not None
            vault = app.extensions["pa_vault"] if secret is None else Vault(secret)
            tenant.influx_read_user = "pa_acme_read"
            tenant.influx_read_password_encrypted = vault.encrypt(READ_PASSWORD)
            db.commit()

    return make


def disclosures(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        db = database.session()
        events = list(db.scalars(select(AuditEvent).where(
            AuditEvent.action == "tenant.read_credentials")))  # fmt: skip
        db.expunge_all()
        return events


def test_prints_the_read_user_and_password_as_the_influx_cli_reads_them(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None]
) -> None:
    acme()
    status, out, err = admin_run("read-credentials", "acme")
    assert status == 0, err
    assert out == f"INFLUX_USERNAME=pa_acme_read\nINFLUX_PASSWORD={READ_PASSWORD}\n"
    assert err == "tenant acme: database pa_acme, read-only user pa_acme_read; the credentials:\n"


def test_each_use_is_audited_with_who_and_what_never_the_password(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    acme()
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    assert admin_run("read-credentials", "acme")[0] == 0
    [event] = disclosures(app)
    assert event.actor == "cli"
    assert event.tenant_id is not None
    assert event.details == {"user": "pa_acme_read", "database": "pa_acme",
                             "os_user": "alice (sudo to root)", "output": "standard output"}  # fmt: skip
    assert READ_PASSWORD not in repr(event.details)


def test_output_writes_a_private_file_whole_replacing_what_was_there(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None], tmp_path: Path
) -> None:
    acme()
    path = tmp_path / "acme.env"
    path.write_text("old contents\n")
    path.chmod(0o644)
    status, out, err = admin_run("read-credentials", "acme", "--output", str(path))
    assert status == 0, err
    assert READ_PASSWORD not in out + err
    assert path.read_text() == f"INFLUX_USERNAME=pa_acme_read\nINFLUX_PASSWORD={READ_PASSWORD}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"credentials written to {path}" in out
    assert [p.name for p in tmp_path.iterdir()] == ["acme.env"]  # no temporary file left
    assert disclosures(app)[0].details["output"] == str(path)


def test_output_in_a_missing_directory_reads_and_records_nothing(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None], tmp_path: Path
) -> None:
    acme()
    path = tmp_path / "nowhere" / "acme.env"
    status, out, err = admin_run("read-credentials", "acme", "--output", str(path))
    assert status == 1
    assert err == (f"Error: cannot write to {path}: directory {path.parent} does not exist; "
                   "nothing was read\n")  # fmt: skip
    assert READ_PASSWORD not in out + err
    assert disclosures(app) == []


def test_an_unknown_or_deleted_tenant_is_refused(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None]
) -> None:
    from tenants.access import system_actor, tenant_for
    from tenants.tenancy import delete_tenant

    acme()
    with app.app_context():
        db = database.session()
        delete_tenant(db, system_actor(), tenant_for(db, system_actor(), "acme"), "acme",
                      app.extensions["pa_storage"])  # fmt: skip
    for slug in ("acme", "nope"):
        assert admin_run("read-credentials", slug) == (
            1,
            "",
            f"perfanalysis admin: no such tenant {slug!r}\n",
        )


def test_a_tenant_without_stored_credentials_is_refused_with_the_fix(
    app: Flask, admin_run: AdminRun, make_tenant: Callable[..., Any]
) -> None:
    make_tenant("acme")  # no InfluxDB configured: nothing provisioned
    status, out, err = admin_run("read-credentials", "acme")
    assert (status, out) == (1, "")
    assert err == (
        "perfanalysis admin: tenant acme has no stored InfluxDB read credentials (it was created "
        "while no InfluxDB was configured, or its provisioning failed): run perfanalysis admin "
        "provision-storage acme, then perfanalysis grafana sync\n"
    )
    assert disclosures(app) == []


def test_a_password_stored_under_a_previous_secret_key_is_read_with_it(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None]
) -> None:
    acme(secret=OLD_SECRET)
    status, out, err = admin_run("read-credentials", "acme")
    assert (status, out) == (2, "")
    assert "decrypts under neither secret-key nor previous-secret-keys" in err
    assert disclosures(app) == []
    status, out, err = admin_run(f"--previous-secret-keys={OLD_SECRET}", "read-credentials", "acme")
    assert status == 0, err
    assert out.endswith(f"INFLUX_PASSWORD={READ_PASSWORD}\n")


def test_a_disabled_tenant_is_said(
    app: Flask, admin_run: AdminRun, acme: Callable[..., None]
) -> None:
    from tenants.access import system_actor, tenant_for
    from tenants.tenancy import set_tenant_status

    acme()
    with app.app_context():
        db = database.session()
        set_tenant_status(db, system_actor(), tenant_for(db, system_actor(), "acme"), False)
    status, out, err = admin_run("read-credentials", "acme")
    assert (status, out.startswith("INFLUX_USERNAME=")) == (0, True)
    assert "(the tenant is disabled; its read user still works)" in err
