"""--web.config.file: parsing and validation, basic auth, the plain-HTTP answer, and import cost."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from exporter import webconfig
from exporter.config import load as load_settings
from exporter.http import Request, Response
from exporter.webconfig import (
    BCRYPT_MISSING,
    PLAIN_HTTP_ANSWER,
    BasicAuth,
    TLSServer,
    WebConfigError,
    load,
    parse,
    parse_basic,
)
from perfanalysis.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"  # exporter-toolkit's example


def self_signed(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def problems(document: Any, path: str = "/etc/exporter/web.yml") -> list[str]:
    with pytest.raises(WebConfigError) as caught:
        parse(document, path)
    return caught.value.problems


def start_exporter(web_config: str) -> subprocess.CompletedProcess[str]:
    """The exporter started with ``web_config``, as under systemd: no terminal, stdin /dev/null;
    a valid file would keep it running (until the timeout fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", "exporter.main", "--web.listen-address=127.0.0.1:0",
         f"--web.config.file={web_config}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )  # fmt: skip


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def no_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bcrypt", None)  # import bcrypt raises ImportError


@pytest.fixture
def fake_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webconfig, "bcrypt_available", lambda: True)


# -- parsing


def test_an_empty_file_means_plain_http_without_authentication() -> None:
    for document in (None, {}, {"tls_server_config": {}, "http_server_config": {"http2": True}}):
        config = parse(document, "/etc/web.yml")
        assert config.tls is None
        assert config.users == {}
        assert config.tls_server() is None
        assert config.describe() == "plain HTTP, no authentication"


def test_tls_paths_are_taken_from_the_file_directory_with_toolkit_defaults() -> None:
    config = parse(
        {"tls_server_config": {"cert_file": "tls/cert.pem", "key_file": "/abs/key.pem"}},
        "/etc/exporter/web.yml",
    )
    assert config.tls is not None
    assert config.tls.cert_file == "/etc/exporter/tls/cert.pem"
    assert config.tls.key_file == "/abs/key.pem"
    assert (config.tls.client_auth, config.tls.min_version, config.tls.max_version) == (
        "none",
        "TLS12",
        "TLS13",
    )


def test_mutual_tls_settings_map_to_verification_modes() -> None:
    for auth_type, mode in (
        ("VerifyClientCertIfGiven", "optional"),
        ("RequireAndVerifyClientCert", "required"),
    ):
        config = parse(
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": auth_type,
                    "client_ca_file": "ca.pem",
                    "min_version": "TLS13",
                }
            },
            "/w/web.yml",
        )
        assert config.tls is not None
        assert config.tls.client_auth == mode
        assert config.tls.client_ca_file == "/w/ca.pem"
        assert config.tls.min_version == "TLS13"


def test_every_problem_is_listed_at_once_with_the_setting_named() -> None:
    found = problems(
        {
            "tls_server_config": {
                "cert_fle": "c",
                "client_auth_type": "Sometimes",
                "min_version": "TLS14",
            },
            "basic_auth_users": {"alice": "secret"},
            "extra": 1,
        }
    )
    text = "\n".join(found)
    assert (
        "tls_server_config.cert_fle: unknown setting (did you mean tls_server_config.cert_file?)"
        in text
    )
    assert "tls_server_config: missing cert_file" in text
    assert "tls_server_config: missing key_file" in text
    assert "tls_server_config.client_auth_type: invalid 'Sometimes'" in text
    assert "tls_server_config.min_version: unknown TLS version 'TLS14'" in text
    assert "basic_auth_users.alice: not a bcrypt hash" in text
    assert "extra: unknown setting" in text


def test_client_auth_policies_python_cannot_honour_are_refused_by_name() -> None:
    for auth_type in ("RequestClientCert", "RequireAnyClientCert"):
        [problem] = problems(
            {
                "tls_server_config": {
                    "cert_file": "c",
                    "key_file": "k",
                    "client_auth_type": auth_type,
                    "client_ca_file": "ca",
                }
            }
        )
        assert f"{auth_type} is not supported" in problem
        assert "RequireAndVerifyClientCert" in problem


def test_client_ca_needs_a_policy_and_a_verifying_policy_needs_a_ca() -> None:
    [problem] = problems(
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_ca_file": "ca"}}
    )
    assert "without a client auth policy" in problem
    [problem] = problems(
        {
            "tls_server_config": {
                "cert_file": "c",
                "key_file": "k",
                "client_auth_type": "RequireAndVerifyClientCert",
            }
        }
    )
    assert "client_ca_file: required with client_auth_type RequireAndVerifyClientCert" in problem


def test_min_version_newer_than_max_version_is_refused() -> None:
    [problem] = problems(
        {
            "tls_server_config": {
                "cert_file": "c",
                "key_file": "k",
                "min_version": "TLS13",
                "max_version": "TLS12",
            }
        }
    )
    assert problem == "tls_server_config: min_version is newer than max_version"


def test_toolkit_settings_this_exporter_lacks_are_refused_not_ignored() -> None:
    found = problems(
        {
            "rate_limit": {"interval": "1s", "burst": 5},
            "tls_server_config": {"cert_file": "c", "key_file": "k", "cipher_suites": ["X"]},
        }
    )
    assert any(p.startswith("rate_limit: not supported by this exporter") for p in found)
    assert any("tls_server_config.cipher_suites: not supported" in p for p in found)


def test_headers_follow_the_toolkit_allow_list() -> None:
    config = parse(
        {
            "http_server_config": {
                "headers": {
                    "X-Frame-Options": "deny",
                    "Strict-Transport-Security": "max-age=31536000",
                }
            }
        },
        "/w.yml",
    )
    assert config.headers == {
        "X-Frame-Options": "deny",
        "Strict-Transport-Security": "max-age=31536000",
    }
    found = problems(
        {"http_server_config": {"headers": {"X-Frame-Options": "allow", "Server": "me"}}}
    )
    assert any("X-Frame-Options: invalid value 'allow'" in p for p in found)
    assert any("HTTP header 'Server' can not be configured" in p for p in found)


def test_basic_auth_users_must_be_bcrypt_hashes(fake_bcrypt: None) -> None:
    config = parse({"basic_auth_users": {"prometheus": HASH}}, "/w.yml")
    assert config.users == {"prometheus": HASH}
    assert config.describe() == "basic auth (1 user)"
    found = problems(
        {"basic_auth_users": {"a:b": HASH, "plain": "hunter2", "low": HASH[:4] + "03" + HASH[6:]}}
    )
    assert any("user name 'a:b'" in p for p in found)
    assert any("basic_auth_users.plain: not a bcrypt hash" in p for p in found)
    assert any("bcrypt cost 03 is outside 4-31" in p for p in found)


def test_basic_auth_without_the_bcrypt_package_is_refused_saying_what_to_install(
    no_bcrypt: None,
) -> None:
    [problem] = problems({"basic_auth_users": {"prometheus": HASH}})
    assert problem == f"basic_auth_users: {BCRYPT_MISSING}"
    assert "pip install bcrypt" in problem


def test_the_exporter_refuses_to_start_on_a_bad_file_and_names_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", "tls_server_config:\n  cert_file: missing.pem\n")
    with pytest.raises(ConfigError) as caught:
        load_settings([f"--web.config.file={path}"], {})
    [error] = caught.value.errors
    assert error.startswith(f"flag --web.config.file: invalid value '{path}': ")
    assert "missing key_file" in error
    env = {"PERFANALYSIS_EXPORTER_WEB_CONFIG_FILE": str(tmp_path / "nope.yml")}
    with pytest.raises(ConfigError) as caught:
        load_settings([], env)
    assert "environment variable PERFANALYSIS_EXPORTER_WEB_CONFIG_FILE" in caught.value.errors[0]
    assert "cannot read" in caught.value.errors[0]


# -- loading: the files are tried at start-up


def test_load_checks_the_certificate_and_key_files(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    other_cert, _ = self_signed(tmp_path, "other")
    good = write(
        tmp_path / "good.yml",
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n",
    )
    config = load(good)
    assert config.tls is not None
    assert config.tls.cert_file == str(cert)
    assert config.describe() == "TLS (TLS12-TLS13)"
    mismatch = write(
        tmp_path / "mismatch.yml",
        f"tls_server_config:\n  cert_file: {other_cert}\n  key_file: {key}\n",
    )
    with pytest.raises(WebConfigError, match="the key does not match the certificate"):
        load(mismatch)
    missing = write(
        tmp_path / "missing.yml", "tls_server_config:\n  cert_file: a.pem\n  key_file: b.pem\n"
    )
    with pytest.raises(WebConfigError) as caught:
        load(missing)
    assert caught.value.problems == [
        f"tls_server_config.cert_file: {tmp_path / 'a.pem'}: no such file",
        f"tls_server_config.key_file: {tmp_path / 'b.pem'}: no such file",
    ]
    bad_yaml = write(tmp_path / "bad.yml", "tls_server_config: [\n")
    with pytest.raises(WebConfigError, match="is not valid YAML"):
        load(bad_yaml)


def test_a_repeated_key_is_refused_as_node_exporter_refuses_it(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a second tls_server_config turned TLS off and
    basic auth went over plain HTTP. exporter-toolkit (yaml.v2 UnmarshalStrict) refuses it."""
    cert, key = self_signed(tmp_path)
    path = write(
        tmp_path / "dup.yml",
        f"""\
        tls_server_config: {{cert_file: {cert.name}, key_file: {key.name}}}
        basic_auth_users: {{prometheus: '{HASH}'}}
        tls_server_config: {{min_version: TLS13}}
        """,
    )
    with pytest.raises(WebConfigError) as caught:
        load(path)
    assert caught.value.problems == [
        f"{path}: line 3, column 1: found the key 'tls_server_config' a second time "
        "(first on line 1)"
    ]
    nested = write(tmp_path / "nested.yml", "tls_server_config:\n  cert_file: a\n  cert_file: b\n")
    with pytest.raises(WebConfigError, match="found the key 'cert_file' a second time"):
        load(nested)
    result = start_exporter(path)
    assert result.returncode == 2, result.stderr
    assert "invalid configuration" in result.stderr
    assert f"flag --web.config.file: invalid value '{path}': " in result.stderr
    assert "found the key 'tls_server_config' a second time (first on line 1)" in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_http_to_the_tls_port_gets_go_s_answer_and_no_handshake(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = load(
        write(tmp_path / "w.yml", f"tls_server_config: {{cert_file: {cert}, key_file: {key}}}\n")
    )
    server = config.tls_server()
    assert isinstance(server, TLSServer)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert server.accept(ours) is None
        theirs.settimeout(5)
        assert theirs.recv(4096) == PLAIN_HTTP_ANSWER
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"\x00\x01garbage")
        assert server.accept(ours) is None  # neither TLS nor HTTP: dropped without an answer


# -- basic authentication


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_parse_basic_reads_only_well_formed_basic_credentials() -> None:
    assert parse_basic(header("prometheus", "p:w")) == (b"prometheus", b"p:w")
    assert parse_basic("basic " + base64.b64encode(b"u:").decode()) == (b"u", b"")
    latin = "Basic " + base64.b64encode(b"u:caf\xe9").decode()  # not UTF-8: Go takes it as is
    assert parse_basic(latin) == (b"u", b"caf\xe9")
    for bad in (
        None,
        "",
        "Bearer abc",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert parse_basic(bad) is None


def test_basic_auth_caches_outcomes_and_checks_unknown_users_against_a_decoy() -> None:
    calls: list[tuple[bytes, bytes]] = []

    def checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append((password, hashed))
        if len(password) > 72:
            raise ValueError("password cannot be longer than 72 bytes")
        return password == b"right" and hashed == HASH.encode()

    auth = BasicAuth({"prometheus": HASH}, checkpw)
    assert auth.check(header("prometheus", "right"))
    assert auth.check(header("prometheus", "right"))
    assert len(calls) == 1  # the second answer came from the cache
    assert not auth.check(header("prometheus", "wrong"))
    assert not auth.check(header("nobody", "right"))
    assert calls[-1] == (b"right", webconfig.DECOY_HASH)  # as slow as a known user
    assert not auth.check(header("prometheus", "x" * 100))
    assert not auth.check(None)
    for i in range(webconfig.AUTH_CACHE_SIZE + 10):
        auth.check(header("prometheus", f"guess-{i}"))
    assert len(auth._cache) <= webconfig.AUTH_CACHE_SIZE


def test_wrap_answers_401_with_www_authenticate_and_adds_headers(fake_bcrypt: None) -> None:
    config = parse(
        {
            "basic_auth_users": {"prometheus": HASH},
            "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
        },
        "/w.yml",
    )
    app = config.live(lambda p, h: p == b"right").wrap(lambda request: Response(200, b"ok\n"))

    def get(headers: dict[str, str]) -> Response:
        return app(Request("GET", "/metrics", "HTTP/1.1", headers, "127.0.0.1"))

    denied = get({})
    assert denied.status == 401
    assert denied.headers["WWW-Authenticate"].startswith("Basic")
    assert denied.headers["X-Content-Type-Options"] == "nosniff"
    assert get({"authorization": header("prometheus", "wrong")}).status == 401
    assert get({"authorization": header("stranger", "right")}).status == 401
    allowed = get({"authorization": header("prometheus", "right")})
    assert (allowed.status, allowed.body) == (200, b"ok\n")
    assert allowed.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.skipif(not webconfig.bcrypt_available(), reason="the bcrypt package is not installed")
def test_real_bcrypt_hashes_from_htpasswd_verify() -> None:
    import bcrypt

    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")
    auth = BasicAuth({"prometheus": hashed})
    assert auth.check(header("prometheus", "s3cret"))
    assert not auth.check(header("prometheus", "s3cret!"))


@pytest.mark.skipif(not webconfig.bcrypt_available(), reason="the bcrypt package is not installed")
def test_passwords_are_checked_as_node_exporter_does_first_72_bytes_raw_bytes() -> None:
    """Go's bcrypt (node_exporter, htpasswd) uses a password's first 72 bytes; the bcrypt package
    refuses longer ones instead. Credentials are bytes: a Latin-1 password works."""
    import bcrypt

    token = b"t0k3n-" * 14  # 84 bytes, as a generated secret may be
    users = {
        "long": bcrypt.hashpw(token[:72], bcrypt.gensalt(4)).decode(),
        "latin": bcrypt.hashpw("café".encode("latin-1"), bcrypt.gensalt(4)).decode(),
        "café": bcrypt.hashpw(b"utf8 user", bcrypt.gensalt(4)).decode(),
    }
    auth = BasicAuth(users)

    def basic(user: bytes, password: bytes) -> str:
        return "Basic " + base64.b64encode(user + b":" + password).decode()

    assert auth.check(basic(b"long", token))
    assert auth.check(basic(b"long", token[:72] + b"anything after byte 72"))
    assert not auth.check(basic(b"long", token[:71]))
    assert auth.check(basic(b"latin", "café".encode("latin-1")))
    assert not auth.check(basic(b"latin", "café".encode()))  # other bytes: another password
    assert auth.check(basic("café".encode(), b"utf8 user"))  # user names from YAML are UTF-8
    assert not auth.check(basic("café".encode("latin-1"), b"utf8 user"))


def encrypted_copy(key: Path, target: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.read_bytes(), None)
    target.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return target


def test_an_encrypted_key_is_refused_at_start_without_asking_for_a_pass_phrase(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path)
    encrypted = encrypted_copy(key, tmp_path / "encrypted.key")
    path = write(
        tmp_path / "w.yml", f"tls_server_config: {{cert_file: {cert}, key_file: {encrypted}}}\n"
    )
    with pytest.raises(WebConfigError) as caught:
        load(path)
    assert caught.value.problems == [
        f"tls_server_config.key_file: {encrypted}: encrypted private keys are not supported "
        "(the exporter cannot ask for a pass phrase): give the key unencrypted"
    ]
    # as under systemd: no terminal, stdin /dev/null (OpenSSL's prompt failed there with EINVAL)
    result = start_exporter(path)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "encrypted private keys are not supported" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_renewed_key_that_cannot_be_used_keeps_the_old_context_and_is_tried_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = self_signed(tmp_path)
    config = load(
        write(tmp_path / "w.yml", f"tls_server_config: {{cert_file: {cert}, key_file: {key}}}\n")
    )
    server = config.tls_server()
    assert server is not None
    serving = server.context()
    builds: list[object] = []
    build = webconfig.build_context
    monkeypatch.setattr(webconfig, "build_context", lambda s: builds.append(s) or build(s))
    renewed = encrypted_copy(key, tmp_path / "renewed.key")
    os.replace(renewed, key)  # as a renewal tool would, with an encrypted key
    with caplog.at_level(logging.INFO, logger="exporter.webconfig"):
        for _ in range(3):
            assert server.context() is serving
    assert len(builds) == 1  # not rebuilt for every connection until the files change again
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "keeping the old" in error.getMessage()
    assert "encrypted private keys are not supported" in error.getMessage()
    _, fresh_key = self_signed(tmp_path, "fresh")
    fresh_cert = tmp_path / "fresh.crt"
    os.replace(fresh_cert, cert)
    os.replace(fresh_key, key)
    assert server.context() is not serving  # a usable pair on disk is taken up
    assert len(builds) == 2


# -- what it costs when unused


def modules_after(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


SERVE_ONE_SCRAPE = """
import socket, threading
from exporter.app import build_registry
from exporter.config import load
from exporter.server import ExporterServer
values = load({argv!r}, {{}})
server = ExporterServer(("127.0.0.1", 0), build_registry(values), web_config=values["web_config_file"])
threading.Thread(target=server.serve_forever, daemon=True).start()
with socket.create_connection(server.server_address[:2]) as s:
    s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
assert reply.startswith({status!r}), reply[:200]
server.shutdown()
"""


def test_an_exporter_without_web_config_imports_no_ssl_yaml_or_webconfig() -> None:
    loaded = modules_after(
        SERVE_ONE_SCRAPE.format(
            argv=["--collector.disable-defaults", "--collector.loadavg"], status=b"HTTP/1.1 200"
        )
    )
    assert not loaded & {"ssl", "_ssl", "yaml", "bcrypt", "hashlib", "exporter.webconfig"}


def test_basic_auth_alone_loads_no_ssl(tmp_path: Path) -> None:
    if not webconfig.bcrypt_available():
        pytest.skip("the bcrypt package is not installed (basic auth configs are refused)")
    path = write(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: '{HASH}'\n")
    loaded = modules_after(
        SERVE_ONE_SCRAPE.format(
            argv=[
                "--collector.disable-defaults",
                "--collector.loadavg",
                f"--web.config.file={path}",
            ],
            status=b"HTTP/1.1 401",
        )
    )
    assert "exporter.webconfig" in loaded
    assert not loaded & {"ssl", "_ssl"}
