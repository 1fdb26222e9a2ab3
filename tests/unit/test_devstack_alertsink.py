"""make up's alert sink: Alertmanager's default receiver posts to something that listens, the
notifications land in var/log/alerts.jsonl (bounded), anything else is refused; the sink is one
more service of the stack (status, down), and Alertmanager's webhooks follow it when it moves."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from perfanalysis import alertsink, devstack
from perfanalysis.paths import ROOT
from perfanalysis.testing.servers import free_port

NOTIFICATION = {
    "version": "4",
    "status": "firing",
    "receiver": "default",
    "groupKey": '{}:{alertname="TargetDown"}',
    "alerts": [{"status": "firing", "labels": {"alertname": "TargetDown", "tenant": "demo"}}],
}
SINK = "PERFANALYSIS_DEV_ALERTSINK_ADDRESS"


def request(
    url: str, body: bytes | None = None, method: str = "POST", kind: str = "application/json"
) -> tuple[int, str]:
    headers = {"Content-Type": kind} if body is not None else {}
    call = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "alerts.jsonl"
    server = alertsink.make_server("127.0.0.1", free_port(), path, max_bytes=2000)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", path
    server.shutdown()
    server.server_close()


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_webhook_is_answered_200_and_appended_as_one_json_line(
    sink: tuple[str, Path],
) -> None:
    url, path = sink
    assert request(f"{url}/alerts", json.dumps(NOTIFICATION).encode())[0] == 200
    assert (
        request(f"{url}/acme", json.dumps({**NOTIFICATION, "status": "resolved"}).encode())[0]
        == 200
    )
    recorded = lines(path)
    assert [r["path"] for r in recorded] == ["/alerts", "/acme"]
    assert recorded[0]["notification"] == NOTIFICATION
    assert all(isinstance(r["received_at"], str) for r in recorded)


@pytest.mark.parametrize(
    ("method", "body", "kind", "status", "says"),
    [
        ("GET", None, "", 404, "POST Alertmanager webhooks"),
        ("PUT", b"{}", "application/json", 405, "not allowed"),
        ("DELETE", None, "", 405, "not allowed"),
        ("POST", b"alert!", "text/plain", 415, "expected application/json"),
        ("POST", b"{not json", "application/json", 400, "not JSON"),
        ("POST", b'{"status": "firing"}', "application/json", 400, "no 'alerts' list"),
        ("POST", b"[1, 2]", "application/json", 400, "no 'alerts' list"),
    ],
)
def test_anything_but_a_webhook_is_refused_saying_why(
    sink: tuple[str, Path], method: str, body: bytes | None, kind: str, status: int, says: str
) -> None:
    url, path = sink
    answered, text = request(f"{url}/alerts", body, method, kind)
    assert (answered, says in text) == (status, True), text
    assert not path.exists()


def test_health_answers_ok_json(sink: tuple[str, Path]) -> None:
    assert request(f"{sink[0]}/health", method="GET") == (200, '{"status": "ok"}\n')


def test_the_file_is_rotated_so_that_it_stays_bounded(sink: tuple[str, Path]) -> None:
    url, path = sink  # max_bytes=2000: a line is about 250 bytes
    for _ in range(40):
        assert request(f"{url}/alerts", json.dumps(NOTIFICATION).encode())[0] == 200
    rotated = path.with_name("alerts.jsonl.1")
    assert path.stat().st_size <= 2000
    assert rotated.stat().st_size <= 2000
    assert len(lines(path)) + len(lines(rotated)) < 40  # the oldest are gone
    assert lines(path)[-1]["notification"] == NOTIFICATION  # the newest kept


# --- the sink is a service of the stack, where the generated alertmanager.yml posts ----------


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "var"
    monkeypatch.setenv("PERFANALYSIS_VAR_DIR", str(path))
    for variable in devstack.DEFAULT_ADDRESSES:
        monkeypatch.delenv(variable, raising=False)
    return path


def generated_webhooks() -> list[str]:
    config = yaml.safe_load((ROOT / "provisioning/alertmanager/alertmanager.yml").read_text())
    return [w["url"] for r in config["receivers"] for w in r.get("webhook_configs") or []]


def test_the_sink_listens_by_default_where_the_generated_receivers_post(var: Path) -> None:
    sink = next(s for s in devstack.services() if s.name == "alertsink")
    assert sink.listens == {SINK: "127.0.0.1:9095"}
    default = yaml.safe_load((ROOT / "provisioning/alertmanager/alertmanager.yml").read_text())
    receiver = next(r for r in default["receivers"] if r["name"] == default["route"]["receiver"])
    assert urlsplit(receiver["webhook_configs"][0]["url"]).netloc == "127.0.0.1:9095"
    names = [s.name for s in devstack.services()]
    assert names.index("alertsink") < names.index("alertmanager")  # up first, down after
    assert devstack.ADDRESS_OWNERS[SINK] == "alertsink"


def test_at_its_default_address_alertmanager_runs_on_the_generated_file(var: Path) -> None:
    alertmanager = next(s for s in devstack.services() if s.name == "alertmanager")
    assert f"--config.file={ROOT / 'provisioning/alertmanager/alertmanager.yml'}" in (
        alertmanager.argv
    )
    assert alertmanager.prepare is not None
    alertmanager.prepare()
    assert not (var / "alertmanager" / "alertmanager.yml").exists()


def test_alertmanager_posts_to_the_sink_where_it_was_moved(
    var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SINK, "127.0.0.1:25195")
    alertmanager = next(s for s in devstack.services() if s.name == "alertmanager")
    assert alertmanager.prepare is not None
    alertmanager.prepare()
    written = var / "alertmanager" / "alertmanager.yml"
    assert f"--config.file={written}" in alertmanager.argv
    config = yaml.safe_load(written.read_text())
    urls = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs") or []]
    assert urls == [u.replace("127.0.0.1:9095", "127.0.0.1:25195") for u in generated_webhooks()]
    assert "http://127.0.0.1:25195/alerts" in urls
    # the rest as generated
    original = yaml.safe_load((ROOT / "provisioning/alertmanager/alertmanager.yml").read_text())
    assert config["route"] == original["route"]
    assert [r["name"] for r in config["receivers"]] == [r["name"] for r in original["receivers"]]


def test_up_starts_the_real_sink_status_shows_it_and_down_stops_it(
    var: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv(SINK, f"127.0.0.1:{port}")
    monkeypatch.setattr(devstack, "setup_steps", list)
    only_sink = [s for s in devstack.services() if s.name == "alertsink"]
    monkeypatch.setattr(devstack, "services", lambda: only_sink)
    try:
        assert devstack.main(["up"]) == 0
        assert "alertsink: started" in capsys.readouterr().out
        status, _ = request(f"http://127.0.0.1:{port}/alerts", json.dumps(NOTIFICATION).encode())
        assert status == 200
        assert lines(var / "log" / "alerts.jsonl")[0]["notification"] == NOTIFICATION
        assert devstack.main(["status"]) == 0
        status_line = capsys.readouterr().out
        assert status_line.startswith("alertsink")
        assert "healthy" in status_line
        assert json.loads((var / "addresses.json").read_text())[SINK] == f"127.0.0.1:{port}"
    finally:
        assert devstack.main(["down"]) == 0
    assert "alertsink: stopped" in capsys.readouterr().out
    assert devstack.running_pid(only_sink[0]) is None
    assert devstack._bind_problem("127.0.0.1", port) is None


def test_status_shows_influxdbs_base_url_not_its_ping(
    var: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERFANALYSIS_DEV_INFLUXDB_ADDRESS", "127.0.0.1:25186")
    devstack.main(["status"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("influxdb"))
    assert line.split()[-1] == "http://127.0.0.1:25186"
