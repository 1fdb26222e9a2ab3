"""Rotating the server secret: the old one listed in previous-secret-keys keeps everything working.

Sessions signed, collector keys and API tokens hashed, and InfluxDB read passwords encrypted
under the old secret are still accepted; keys and tokens move to the new secret's HMAC on their
next use, and ``admin reencrypt-secrets`` moves the passwords, after which the new secret
alone suffices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from perfanalysis.config import ConfigError
from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.accounts import get_user_by_email, issue_token
from tenants.collectors import register_collector
from tenants.crypto import CredentialHasher, Vault
from tenants.errors import Unauthenticated
from tenants.keys import KeyVerifier, issue_key
from tenants.models import ApiKey, ApiToken, Tenant
from tests.conftest import TEST_SECRET, login

NEW_SECRET = "the-new-server-secret-" + "n" * 30

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def rotated(
    admin_settings: dict[str, Any], migrated_engine: Engine
) -> Iterator[Callable[..., Flask]]:
    """rotated(previous=(TEST_SECRET,)) -> the admin app on NEW_SECRET, on the same database."""
    made: list[Flask] = []

    def make(previous: tuple[str, ...] = (TEST_SECRET,)) -> Flask:
        from tenants.app import create_app

        app = create_app(
            {**admin_settings, "secret_key": NEW_SECRET, "previous_secret_keys": previous}
        )
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["pa_engine"].dispose()


def _key_and_token(app: Flask, make_tenant: Any) -> tuple[str, str]:
    """A collector key and an API token issued under the app's (old) secret."""
    make_tenant("acme", {"ana@acme.test": "admin"})
    with app.app_context():
        db = database.session()
        acme = tenant_for(db, system_actor(), "acme")
        web1 = register_collector(db, system_actor(), acme, {"name": "web1", "hostname": "web1"})
        key = issue_key(db, system_actor(), acme, web1, app.extensions["pa_hasher"]).plaintext
        user = get_user_by_email(db, "ana@acme.test")
        assert user is not None
        token = issue_token(db, user, app.extensions["pa_hasher"], "automation")[1]
    return key, token


def _stored_hashes(app: Flask) -> tuple[str, str]:
    with app.app_context():
        db = database.session()
        key_hash = db.scalar(select(ApiKey.secret_hash))
        token_hash = db.scalar(select(ApiToken.secret_hash))
        assert key_hash is not None
        assert token_hash is not None
        return key_hash, token_hash


def test_keys_hashed_under_the_previous_secret_verify_and_move_to_the_new_one(
    app: Flask, make_tenant: Any, rotated: Callable[..., Flask]
) -> None:
    key, _ = _key_and_token(app, make_tenant)
    old_hash, _ = _stored_hashes(app)
    new_app = rotated()
    sessions = new_app.extensions["pa_sessions"]
    verifier = KeyVerifier(sessions, new_app.extensions["pa_hasher"], ttl=0)
    assert verifier.verify(key).tenant_slug == "acme"
    new_hash, _ = _stored_hashes(new_app)
    assert new_hash != old_hash
    assert new_hash == CredentialHasher(NEW_SECRET).digest(key.split("_", 2)[2])
    # the previous secret is no longer needed for this key
    alone = KeyVerifier(sessions, CredentialHasher(NEW_SECRET), ttl=0)
    assert alone.verify(key).collector_name == "web1"


def test_without_the_previous_secret_old_keys_are_refused(
    app: Flask, make_tenant: Any, rotated: Callable[..., Flask]
) -> None:
    key, _ = _key_and_token(app, make_tenant)
    new_app = rotated(previous=())
    verifier = KeyVerifier(new_app.extensions["pa_sessions"], new_app.extensions["pa_hasher"], 0)
    with pytest.raises(Unauthenticated):
        verifier.verify(key)


def test_tokens_work_across_the_rotation_and_are_rehashed(
    app: Flask, make_tenant: Any, rotated: Callable[..., Flask]
) -> None:
    _, token = _key_and_token(app, make_tenant)
    _, old_hash = _stored_hashes(app)
    client = rotated().test_client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.get_json()["email"] == "ana@acme.test"
    _, new_hash = _stored_hashes(app)
    assert new_hash == CredentialHasher(NEW_SECRET).digest(token.split("_", 2)[2])
    assert new_hash != old_hash
    after = rotated(previous=()).test_client()
    assert after.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_sessions_signed_under_the_previous_secret_stay_logged_in(
    app: Flask, client: Any, make_tenant: Any, rotated: Callable[..., Flask]
) -> None:
    make_tenant("acme", {"ana@acme.test": "admin"})
    login(client, "ana@acme.test")
    cookie = client.get_cookie("pa_session")
    assert cookie is not None
    for previous, expected in (((TEST_SECRET,), 200), ((), 302)):
        other = rotated(previous=previous).test_client()
        other.set_cookie("pa_session", cookie.value)
        assert other.get("/tenants/acme").status_code == expected


def test_reencrypt_secrets_moves_stored_passwords_to_the_new_secret(
    app: Flask, make_tenant: Any, rotated: Callable[..., Flask], migrated_engine: Engine
) -> None:
    from click.testing import CliRunner

    from tenants.cli import admin

    make_tenant("acme")
    make_tenant("umbrella")
    old_vault = Vault(TEST_SECRET)
    with app.app_context():
        db = database.session()
        for tenant in db.scalars(select(Tenant)):
            tenant.influx_read_password_encrypted = old_vault.encrypt(f"read-{tenant.slug}")
        db.commit()
    new_app = rotated()
    result = CliRunner().invoke(
        admin,
        ["reencrypt-secrets"],
        obj={"app": new_app, "settings": new_app.config["PA_SETTINGS"]},
    )
    assert result.exit_code == 0, result.output
    assert "2 tenant(s)" in result.output
    alone = Vault(NEW_SECRET)
    with new_app.app_context():
        stored = database.session().execute(
            select(Tenant.slug, Tenant.influx_read_password_encrypted)
        )
        for slug, encrypted in stored:
            assert alone.decrypt(encrypted) == f"read-{slug}"


def test_reencrypt_refuses_whole_when_a_password_decrypts_under_no_key(
    app: Flask, make_tenant: Any, rotated: Callable[..., Flask]
) -> None:
    from click.testing import CliRunner

    from tenants.cli import admin

    make_tenant("acme")
    make_tenant("umbrella")
    with app.app_context():
        db = database.session()
        acme, umbrella = sorted(db.scalars(select(Tenant)), key=lambda t: t.id)
        acme.influx_read_password_encrypted = Vault(TEST_SECRET).encrypt("read-acme")
        umbrella.influx_read_password_encrypted = Vault("an-unrelated-secret-" + "u" * 30).encrypt(
            "x"
        )
        db.commit()
        before = dict(db.execute(select(Tenant.slug, Tenant.influx_read_password_encrypted)).all())
    new_app = rotated()
    result = CliRunner().invoke(
        admin,
        ["reencrypt-secrets"],
        obj={"app": new_app, "settings": new_app.config["PA_SETTINGS"]},
    )
    assert result.exit_code != 0
    assert "tenant umbrella" in str(result.exception)  # `perfanalysis admin` prints it, exit 2
    with app.app_context():
        after = dict(
            database.session()
            .execute(select(Tenant.slug, Tenant.influx_read_password_encrypted))
            .all()
        )
    assert after == before  # nothing half-done


@pytest.mark.parametrize(
    ("previous", "problem"),
    [
        ("too-short", "shorter than 32"),
        (TEST_SECRET + ",tiny", "key number 2"),
        (NEW_SECRET, "holds the current secret-key"),
    ],
)
@pytest.mark.parametrize("component", ["admin", "ingest"])
def test_bad_previous_keys_are_refused_naming_the_setting(
    component: str, previous: str, problem: str
) -> None:
    if component == "admin":
        from tenants.settings import load
    else:
        from ingest.settings import load  # type: ignore[assignment]
    prefix = f"PERFANALYSIS_{component.upper()}_"
    environment = {f"{prefix}SECRET_KEY": NEW_SECRET, f"{prefix}PREVIOUS_SECRET_KEYS": previous}
    with pytest.raises(ConfigError) as raised:
        load([], environment)
    assert "previous-secret-keys" in str(raised.value) or "PREVIOUS_SECRET_KEYS" in str(
        raised.value
    )
    assert problem in str(raised.value)
    assert previous not in str(raised.value)  # secrets never echoed


def test_ingest_accepts_keys_hashed_under_the_previous_secret() -> None:
    from ingest.settings import load

    settings = load(
        [],
        {
            "PERFANALYSIS_INGEST_SECRET_KEY": NEW_SECRET,
            "PERFANALYSIS_INGEST_PREVIOUS_SECRET_KEYS": TEST_SECRET,
        },
    )
    assert settings["previous_secret_keys"] == (TEST_SECRET,)
    hasher = CredentialHasher(settings["secret_key"], settings["previous_secret_keys"])
    old = CredentialHasher(TEST_SECRET).issue("pak")
    secret = old.plaintext.split("_", 2)[2]
    match = hasher.match(secret, old.secret_hash)
    assert match is not None
    assert match.rehash == CredentialHasher(NEW_SECRET).digest(secret)
    assert hasher.match(secret, "0" * 64) is None
