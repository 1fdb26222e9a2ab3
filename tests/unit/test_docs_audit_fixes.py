"""What an audit that followed README.md and docs/*.md on a fresh clone found, fixed:

* a load-test level that did no work (0.0 units/s) fails the run before anything is written or
  uploaded, whatever --max-background says: the admin app refuses such a result;
* ``alerting generate`` refuses a flag given twice, and writes only where it is told;
* ``report`` without the secret key it needs is a settings error (exit 2);
* Compose's admin-init and the Kubernetes admin pods seed the price catalog, without ever
  overwriting a catalog already loaded;
* docs/configuration.md lists every variable ``make up`` reads; the docs cite no file outside
  the repository; README's commands run from a fresh checkout.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exporter.loadtest import controller
from exporter.loadtest import main as loadtest_main
from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.controller import LevelOutcome, Policy, Window, run_level, run_levels
from exporter.loadtest.host import HostFacts
from exporter.loadtest.result import RunSettings, build, validate
from exporter.loadtest.runner import RunOutcome
from tests.unit.test_loadtest_upload import AdminStub, admin, key_file  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]

# --- 7. a level that did no work --------------------------------------------------------------


class BusyHost:
    """Other work keeps the host ``background``% busy; our workers add the load asked for, and
    do ``3 x load`` units/s. The disturbance check cannot see it (no own CPU time, as with
    --max-background 100)."""

    def __init__(self, background: float) -> None:
        self.background = background
        self.loads: list[float] = []

    def measure(self, load_percent: float) -> Window:
        self.loads.append(load_percent)
        return Window(load_percent, min(100.0, load_percent + self.background), 3 * load_percent)


def test_a_window_in_the_band_with_the_workers_idle_is_never_accepted() -> None:
    """The audit: 50% of other work, --max-background 100: the load was nudged to 0 and the
    window, in the band, was accepted at 0.0 units/s."""
    host = BusyHost(background=50.0)
    outcome = run_level(host, 50, Policy(repeats=1, retries=3, max_background=None))
    assert not outcome.accepted
    assert host.loads == [50.0, 0.0, 0.0, 0.0]  # missed, nudged to nothing, then never nudged
    assert outcome.failure == (
        "level 50%: our workers did no work (0.0 units/s at load 0.0%): other work alone kept the "
        "host 50.0% busy, within 47-53%, after 4 attempts (repeat 1)"
    )


def test_a_window_that_rounds_to_no_work_is_not_accepted_either() -> None:
    window = Window(0.01, 50.0, 0.04)  # written as 0.0 units/s
    seen: list[controller.Verdict] = []
    run_level(
        type("One", (), {"measure": lambda self, load: window})(),
        50,
        Policy(repeats=1, retries=0, max_background=None),
        observe=lambda attempt: seen.append(attempt.verdict),
    )
    assert seen == [controller.Verdict.NO_WORK]


def test_the_run_stops_at_a_level_that_did_no_work() -> None:
    host = BusyHost(background=50.0)
    finished: list[LevelOutcome] = []
    with pytest.raises(controller.NoWorkDone) as stopped:
        run_levels(host, [20, 50, 100], Policy(repeats=2, retries=2, max_background=None),
                   finished=finished.append)  # fmt: skip
    assert [outcome.target for outcome in finished] == [20]  # 20% is below 50% of other work
    assert str(stopped.value).startswith("level 20%: ")
    assert "units_per_second must be more than 0" in str(stopped.value)
    assert "the run stops here" in str(stopped.value)


def test_the_result_check_refuses_what_the_admin_app_refuses() -> None:
    contract = pytest.importorskip("tenants.loadtests.contract")
    from tenants.errors import Invalid

    host = HostFacts("vm", "AMD EPYC", 2, 8 << 30, "6.1.0", CloudFacts())
    outcomes = [
        LevelOutcome(50, [Window(0.0, 50.0, 0.0)], 4, True),
        LevelOutcome(100, [Window(100.0, 100.0, 280.0)], 1, True),
    ]
    document = build(datetime.now(UTC), datetime.now(UTC), host, RunSettings(1.0, 1, 3.0), outcomes)
    assert "/levels/0/units_per_second must be more than 0" in validate(document)
    with pytest.raises(Invalid, match="/levels/0/units_per_second must be more than 0"):
        contract.parse_bytes(json.dumps(document).encode())


@pytest.mark.parametrize("max_background", ["100", "5"])
def test_a_run_with_a_level_that_did_no_work_writes_and_uploads_nothing(
    max_background: str,
    admin: AdminStub,  # noqa: F811
    key_file: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`loadtest run --levels 50,100 --repeats 1 --max-background 100` on a busy host."""

    def execute(plan: Any, progress: Any) -> RunOutcome:
        levels = run_levels(BusyHost(background=50.0), plan.levels, plan.policy)
        return RunOutcome(levels, 300.0, 50.0, 2)

    monkeypatch.setattr(loadtest_main, "detect", lambda: CloudFacts())
    monkeypatch.setattr(loadtest_main, "execute", execute)
    output = tmp_path / "result.json"
    argv = ["run", "--levels", "50,100", "--repeats", "1", "--max-background", max_background,
            "--progress", "off", "--output", str(output), "--upload", admin.url,
            "--key-file", key_file]  # fmt: skip
    assert loadtest_main.run(argv, {}) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("perfanalysis loadtest: the load test failed: level 50%: ")
    assert "no result written" in captured.err
    assert not output.exists()
    assert admin.received == []


# --- 3. alerting generate: a flag given twice, and nothing written where it was not named -------


def tree_of(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--out", "{t}/x", "--out", "{t}/y"], "flag --out: given twice ('{t}/x' and '{t}/y')"),
        (["--thresholds", "{t}/a.yaml", "--thresholds", "{t}/b.yaml", "--thresholds", "{t}/c.yaml"],
         "flag --thresholds: given 3 times ('{t}/a.yaml', '{t}/b.yaml' and '{t}/c.yaml')"),
        (["--check", "--check"], "flag --check: given twice (--check and --check)"),
        (["--tests-out", "{t}/a", "--tests-out={t}/b"], "flag --tests-out: given twice"),
    ],
)  # fmt: skip
def test_alerting_generate_refuses_a_flag_given_twice(
    flags: list[str], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfanalysis.alerting import cli

    work = tmp_path / "work"
    work.mkdir()
    args = [flag.format(t=work) for flag in flags]
    assert cli.run(["generate", *args]) == 2
    err = capsys.readouterr().err
    assert f"perfanalysis alerting generate: error: {problem.format(t=work)}" in err
    assert err.startswith("usage: perfanalysis alerting generate ")
    assert tree_of(tmp_path) == ["work"]


def test_alerting_generate_with_out_alone_writes_nothing_and_says_what_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit's --out /tmp/x wrote /tmp/tests and /alertmanager/alertmanager.yml."""
    from perfanalysis.alerting import cli

    out = tmp_path / "x"
    for extra in ([], ["--tests-out", str(tmp_path / "t")],
                  ["--alertmanager-out", str(tmp_path / "am.yml")]):  # fmt: skip
        assert cli.run(["generate", "--out", str(out), *extra]) == 2
        assert "error: flag --out: needs --" in capsys.readouterr().err
        assert tree_of(tmp_path) == []


def test_alerting_generate_writes_only_where_it_is_told(tmp_path: Path) -> None:
    from perfanalysis.alerting import cli

    rules, tests, alertmanager = tmp_path / "r", tmp_path / "t", tmp_path / "am" / "am.yml"
    args = ["generate", "--out", str(rules), "--tests-out", str(tests),
            "--alertmanager-out", str(alertmanager)]  # fmt: skip
    assert cli.run(args) == 0
    assert {path.split("/")[0] for path in tree_of(tmp_path)} == {"r", "t", "am"}
    assert tree_of(tmp_path / "am") == ["am.yml"]
    assert cli.run([*args, "--check"]) == 0


def test_alerting_generate_help_says_out_needs_the_other_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from perfanalysis.alerting import cli

    with pytest.raises(SystemExit):
        cli.run(["generate", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--out needs --tests-out and --alertmanager-out too" in shown
    assert "A flag given twice is refused." in shown
    assert "OUT/.." not in shown


# --- 4. report without the secret key it needs: a settings error, exit 2 ----------------------

REPORT_YAML = "tenant: acme\nhosts: [web-01]\ntime: {last: 24h}\n"


def report_files(tmp_path: Path, yaml_text: str = REPORT_YAML) -> tuple[Path, Path, Path]:
    config, output = tmp_path / "report.yaml", tmp_path / "report.html"
    config.write_text(yaml_text)
    database = tmp_path / "admin.db"  # never opened: the check comes first
    return config, output, database


@pytest.mark.parametrize("pdf", [False, True])
def test_report_without_a_secret_key_exits_2_before_reading_anything(
    pdf: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from perfanalysis.report import cli as report_cli

    config, output, database = report_files(tmp_path)
    argv = ["--config", str(config), "--output", str(output),
            "--database-url", f"sqlite:///{database}"]  # fmt: skip
    if pdf:  # no Chromium on PATH: still the settings error, not "no Chromium" (exit 1)
        monkeypatch.setenv("PATH", str(tmp_path))
        argv += ["--pdf", str(tmp_path / "report.pdf")]
    err = io.StringIO()
    assert report_cli.run(argv, stderr=err) == 2
    assert err.getvalue() == (
        "perfanalysis report: invalid settings:\n"
        "  setting secret-key: required to read the tenant's InfluxDB credentials from the admin "
        "database (its passwords are stored encrypted): give --secret-key or "
        "PERFANALYSIS_REPORT_SECRET_KEY (the admin app's secret key), or run with --dev, or give "
        "influxdb.username and a password in the report configuration\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.yaml"]


def test_report_with_credentials_in_its_configuration_needs_no_secret_key(tmp_path: Path) -> None:
    from perfanalysis.report import settings as report_settings
    from perfanalysis.report.config import load_config
    from perfanalysis.report.source import setting_problems

    config, _, _ = report_files(
        tmp_path, REPORT_YAML + "influxdb: {username: reader, password_env: READ_PASSWORD}\n"
    )
    loaded = load_config(str(config), {"READ_PASSWORD": "pw"})
    values = report_settings.load(["--config", str(config)], {})
    assert setting_problems(loaded, values) == []


# --- 2. the deploy step that seeds the price catalog ------------------------------------------

T3 = ("prices: [{provider: aws, region: us-east-1, instance_type: t3.medium, vcpus: 2, "
      "memory_gib: 4, usd_per_hour: '%s', source: negotiated, as_of: 2025-06-01}]\n")  # fmt: skip


def prices(app: Any) -> dict[tuple[Any, ...], str]:
    """Every stored price: (tenant id, provider, region, type, vCPUs, GiB) -> $/hour."""
    from sqlalchemy import select

    from tenants import db as database
    from tenants.loadtests.models import PriceEntry

    with app.app_context():
        return {
            (row.tenant_id, *row.machine_key()): str(row.usd_per_hour)
            for row in database.session().scalars(select(PriceEntry))
        }


def test_the_deploy_seed_fills_an_empty_catalog_then_never_overwrites_it(
    app: Any, runner: Any, make_tenant: Any, tmp_path: Path
) -> None:
    """What admin-init and the admin pods run at every start: the first loads provisioning/
    prices.yaml; later ones leave the catalog alone, an operator's own price file included,
    and tenants' prices are never touched by any seed."""
    from tenants import db as database
    from tenants.access import system_actor
    from tenants.loadtests.prices import create_price, read_seed

    first = runner("seed-prices", "--if-empty")
    assert first.exit_code == 0, first.output
    seeded = prices(app)
    assert len(seeded) == len(read_seed(ROOT / "provisioning" / "prices.yaml"))
    assert first.output.startswith(f"price catalog: {len(seeded)} rows added or changed from ")
    # an operator loads negotiated global prices, a tenant sets its own
    negotiated = tmp_path / "negotiated.yaml"
    negotiated.write_text(T3 % "0.03")
    assert runner("seed-prices", str(negotiated)).exit_code == 0
    tenant = make_tenant("acme")
    with app.app_context():
        create_price(database.session(), system_actor(), tenant,
                     {"provider": "aws", "region": "us-east-1", "instance_type": "t3.medium",
                      "vcpus": 2, "memory_gib": 4, "usd_per_hour": "0.02", "source": "ours",
                      "as_of": "2025-06-01"})  # fmt: skip
    edited = prices(app)
    assert edited[(None, "aws", "us-east-1", "t3.medium", 2, 4)] == "0.030000"
    assert edited[(tenant.id, "aws", "us-east-1", "t3.medium", 2, 4)] == "0.020000"
    # the next start, and the one after
    for _ in range(2):
        again = runner("seed-prices", "--if-empty")
        assert again.exit_code == 0, again.output
        assert again.output.startswith(
            f"price catalog: {len(seeded)} global rows already stored, left as they are"
        )
        assert prices(app) == edited


def test_the_deploy_seed_refuses_a_bad_file_like_seed_prices(
    app: Any, runner: Any, tmp_path: Path
) -> None:
    from tenants.errors import Invalid

    bad = tmp_path / "bad.yaml"
    bad.write_text("prices: [{vcpus: 2}]\n")
    result = runner("seed-prices", "--if-empty", str(bad))
    assert isinstance(result.exception, Invalid)
    assert prices(app) == {}


# --- 6. docs/configuration.md lists every variable `make up` reads -----------------------------


def test_the_configuration_reference_lists_every_address_make_up_reads() -> None:
    from deploy.configref import OUTPUT, render
    from perfanalysis.devstack import DEFAULT_ADDRESSES

    text = OUTPUT.read_text()
    assert text == render(), "docs/configuration.md is stale: run python -m deploy.configref"
    table = text.split("## Other environment variables", 1)[1]
    for name in DEFAULT_ADDRESSES:
        assert f"`{name}`" in table, name
    for name in [n for n in DEFAULT_ADDRESSES if n.startswith("PERFANALYSIS_DEV_")]:
        assert f"| `{name}` | `make up` | HOST:PORT of " in table, name
    assert (
        "| `PERFANALYSIS_VAR_DIR` | ingest, admin, grafana, grafana-prune-orphans, report, `make up` |"
    ) in table
    # README's list of the variables that move a service names only ones the stack reads
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`(PERFANALYSIS_DEV_[A-Z_]+)`", readme))
    assert named == {n for n in DEFAULT_ADDRESSES if n.startswith("PERFANALYSIS_DEV_")}


# --- 1 and 5. README's commands run from a fresh checkout; the docs cite nothing outside it ----


def test_readme_runs_the_projects_commands_from_the_virtualenv() -> None:
    """`make up` puts `perfanalysis` in .venv/bin, not on PATH: a bare `perfanalysis ...` or
    `python -m ...` fails on a fresh machine (no such command, or a Python without the project)."""
    text = (ROOT / "README.md").read_text()
    bare = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines = block.splitlines()
        for before, line in zip(["", *lines], lines, strict=False):
            word = line.split(" ", 1)[0]
            in_image = before.startswith("# in the image")  # the image's entry point
            if word in ("perfanalysis", "python", "python3", "pytest") and not in_image:
                bare.append(line)
    bare += re.findall(r"`((?:python3?|pytest) [^`]*)`", text)  # commands in the prose
    assert bare == []
    assert "`. .venv/bin/activate`" in text


def test_readme_says_the_default_exporter_port_is_the_make_up_stacks() -> None:
    from perfanalysis.devstack import DEFAULT_ADDRESSES

    text = (ROOT / "README.md").read_text()
    section = text.split("## The exporter", 1)[1].split("\n## ", 1)[0]
    taken = DEFAULT_ADDRESSES["PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS"]
    assert taken == "127.0.0.1:9100"
    assert f"runs its own exporter on {taken}" in section
    assert "cannot listen on :9100: [Errno 98] Address already in use" in section
    ports = re.findall(r"--web.listen-address=\S*:(\d+)", section)
    assert ports
    assert "9100" not in ports


def test_no_document_cites_a_file_outside_the_repository() -> None:
    cited = []
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").glob("*.py"),
                 ROOT / "exporter" / "loadtest" / "README.md"]:  # fmt: skip
        cited += [f"{path.relative_to(ROOT)}: {m}" for m in
                  re.findall(r"\.\./shared/\S*|\bshared/reference/\S*", path.read_text())]  # fmt: skip
    assert cited == []
    assert "## Targets" in (ROOT / "docs" / "architecture.md").read_text()
