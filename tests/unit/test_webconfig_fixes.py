"""--web.config.file: TLS 1.0/1.1 refused, $2$ hashes, the decoy's cost, prefer_server_cipher_suites
and re-reading the file when it changes."""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

import pytest

from exporter import webconfig
from exporter.http import Request, Response
from exporter.webconfig import BasicAuth, WebConfigError, load, parse
from tests.unit.test_webconfig import HASH, header, problems, self_signed

needs_bcrypt = pytest.mark.skipif(
    not webconfig.bcrypt_available(), reason="the bcrypt package is not installed"
)


def hashpw(password: str, cost: int = 4) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def replace(path: Path, text: str) -> None:
    """As an editor or configuration tool writes: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


# -- 1: TLS 1.0 and 1.1


@pytest.mark.parametrize("key", ["min_version", "max_version"])
@pytest.mark.parametrize("version", ["TLS10", "TLS11"])
def test_tls10_and_tls11_are_refused_by_name_saying_why(key: str, version: str) -> None:
    found = problems({"tls_server_config": {"cert_file": "c", "key_file": "k", key: version}})
    [problem] = [p for p in found if p.startswith(f"tls_server_config.{key}:")]
    assert f"{version} is refused" in problem
    assert "could never connect" in problem


def test_the_documentation_no_longer_offers_tls10() -> None:
    meaning = dict((k, m) for k, _, m in webconfig.FIELDS)["tls_server_config.min_version"]
    assert "TLS10 and TLS11 are refused" in meaning


# -- 2: $2$ hashes and errors from the check


@needs_bcrypt
def test_a_2_hash_works_as_node_exporter_checks_it() -> None:
    """node_exporter 1.5.0 accepts a $2b$ hash rewritten to $2$ and the password works."""
    hashed = "$2$" + hashpw("secret")[4:]
    config = parse({"basic_auth_users": {"alice": hashed}}, "/w.yml")
    auth = BasicAuth(config.users)
    assert auth.check(header("alice", "secret"))
    assert not auth.check(header("alice", "wrong"))


def test_an_error_from_the_check_is_logged_once_per_user(caplog: pytest.LogCaptureFixture) -> None:
    def checkpw(password: bytes, hashed: bytes) -> bool:
        raise ValueError("Invalid salt")

    auth = BasicAuth({"alice": HASH, "bob": HASH}, checkpw)
    with caplog.at_level(logging.ERROR, logger="exporter.webconfig"):
        for attempt in range(3):
            assert not auth.check(header("alice", f"guess-{attempt}"))
        assert not auth.check(header("bob", "x"))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "alice" in errors[0]
    assert "Invalid salt" in errors[0]
    assert "bob" in errors[1]


# -- 3: the decoy costs as much as the most costly hash


def with_cost(hashed: str, cost: int) -> str:
    return f"{hashed[:4]}{cost:02d}{hashed[6:]}"


def test_the_decoy_is_as_costly_as_the_most_costly_configured_hash() -> None:
    calls: list[bytes] = []

    def checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return False

    auth = BasicAuth({"a": with_cost(HASH, 12), "b": HASH}, checkpw)
    assert not auth.check(header("nobody", "x"))
    assert calls[-1] == auth.decoy
    assert webconfig.bcrypt_cost(auth.decoy) == 12
    assert webconfig.BCRYPT_HASH.match(auth.decoy.decode())
    assert webconfig.bcrypt_cost(BasicAuth({"a": HASH}, checkpw).decoy) == 10


@needs_bcrypt
def test_the_decoy_is_a_hash_bcrypt_checks_without_error() -> None:
    import bcrypt

    decoy = BasicAuth({"a": hashpw("x", 5)}).decoy
    assert webconfig.bcrypt_cost(decoy) == 5
    assert bcrypt.checkpw(b"x", decoy) is False


# -- 4: prefer_server_cipher_suites


def test_prefer_server_cipher_suites_is_accepted_and_false_is_honoured(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    options = {}
    for prefer in (True, False):
        path = tmp_path / f"{prefer}.yml"
        path.write_text(
            f"tls_server_config: {{cert_file: {cert}, key_file: {key}, "
            f"prefer_server_cipher_suites: {str(prefer).lower()}}}\n"
        )
        config = load(str(path))
        assert config.tls is not None
        assert config.tls.prefer_server_cipher_suites is prefer
        options[prefer] = webconfig.build_context(config.tls).options
    assert options[True] & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert not options[False] & ssl.OP_CIPHER_SERVER_PREFERENCE
    found = problems(
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "prefer_server_cipher_suites": 1}}
    )
    assert found == ["tls_server_config.prefer_server_cipher_suites: expected true or false"]


# -- 5: the file is re-read when it changes


@needs_bcrypt
def test_a_changed_file_applies_without_a_restart_and_a_bad_one_refuses_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: '{hashpw('leaked')}'\n")
    app = load(str(path)).live().wrap(lambda request: Response(200, b"ok\n"))

    def get(password: str) -> Response:
        headers = {"authorization": header("alice", password)}
        return app(Request("GET", "/metrics", "HTTP/1.1", headers, "127.0.0.1"))

    assert get("leaked").status == 200
    replace(
        path,
        f"basic_auth_users:\n  alice: '{hashpw('fresh')}'\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    assert get("leaked").status == 401  # the revoked password, cached before, is refused
    served = get("fresh")
    assert served.status == 200
    assert served.headers["X-Frame-Options"] == "deny"
    with caplog.at_level(logging.INFO, logger="exporter.webconfig"):
        replace(path, "basic_auth_users:\n  alice: not-a-hash\n")
        for password in ("fresh", "leaked", "fresh"):
            refused = get(password)
            assert refused.status == 500
            assert b"web configuration file is invalid" in refused.body
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per change, not per request
    assert "basic_auth_users.alice: not a bcrypt hash" in errors[0]
    replace(path, f"basic_auth_users:\n  alice: '{hashpw('fixed')}'\n")
    assert get("fixed").status == 200
    assert get("fresh").status == 401


def test_an_invalid_file_at_start_still_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users:\n  alice: not-a-hash\n")
    with pytest.raises(WebConfigError):
        load(str(path))


def test_new_tls_settings_apply_and_turning_tls_off_refuses_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = self_signed(tmp_path)
    path = tmp_path / "web.yml"
    tls = f"tls_server_config: {{cert_file: {cert}, key_file: {key}"
    path.write_text(tls + "}\n")
    live = load(str(path)).live()
    app = live.wrap(lambda request: Response(200, b"ok\n"))
    assert live.tls_server() is live

    def get() -> Response:
        return app(Request("GET", "/", "HTTP/1.1", {}, "127.0.0.1"))

    replace(path, tls + ", min_version: TLS13}\n")
    assert get().status == 200
    assert live._tls is not None
    assert live._tls.context().minimum_version == ssl.TLSVersion.TLSv1_3
    with caplog.at_level(logging.ERROR, logger="exporter.webconfig"):
        replace(path, "{}\n")
        assert get().status == 500
    assert "TLS cannot be turned off while the exporter runs" in caplog.records[-1].getMessage()
