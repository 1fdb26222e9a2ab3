"""Flags of ``perfanalysis loadtest``: every error listed at once, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.loadtest.main import run, split_positionals
from exporter.loadtest.settings import levels, parse_for, run_spec, upload_spec
from perfanalysis.config import ConfigError

KEY = "pak_abcdefghijklm_" + "A" * 43


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    return str(path)


def errors_of(argv: list[str], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_for(run_spec(), argv, environ or {})
    return caught.value.errors


def test_defaults() -> None:
    values = parse_for(run_spec(), [], {})
    assert values["levels"] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert values["window"] == 1.0
    assert (values["repeats"], values["tolerance"], values["full_load_min"]) == (3, 3.0, 95.0)
    assert (values["retries"], values["max_background"], values["workers"]) == (10, 5.0, 0)
    assert values["upload"] is None
    assert values["output"] is None
    assert values["progress"] == "auto"


def test_flags_and_environment() -> None:
    values = parse_for(
        run_spec(),
        ["--levels", "50, 20,100%", "--window=500ms", "--repeats", "2"],
        {"PERFANALYSIS_LOADTEST_TOLERANCE": "2.5", "PERFANALYSIS_LOADTEST_REGION": "eu-west-1"},
    )
    assert values["levels"] == [20, 50, 100]
    assert values["window"] == 0.5
    assert values["repeats"] == 2
    assert values["tolerance"] == 2.5
    assert values["region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,50", "0 is out of range"),
        ("10,110", "110 is out of range"),
        ("10,ten", "'ten' is not a whole percent"),
        ("10,20,10", "10 is listed twice"),
        ("12.5", "'12.5' is not a whole percent"),
        ("10,20,90", "must include 100: the measured maximum is part of every result"),
        ("100", "give at least one level below 100 as well"),
    ],
)
def test_levels_out_of_range(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        levels(text)


def test_every_error_is_listed_at_once(tmp_path: Path) -> None:
    errors = errors_of(
        [
            "--levels", "5,150", "--window", "10ms", "--repeats", "0", "--tolerance", "-1",
            "--cloud-provider", "ibm", "--progress", "fancy", "--bogus",
            "--output", str(tmp_path / "missing" / "result.json"),
            "--key-file", str(tmp_path / "no-such-key"),
        ],
        {"PERFANALYSIS_LOADTEST_WINDOWS": "1s"},
    )  # fmt: skip
    text = "\n".join(errors)
    for expected in (
        "environment variable PERFANALYSIS_LOADTEST_WINDOWS: not a known setting (did you mean "
        "PERFANALYSIS_LOADTEST_WINDOW?)",
        "flag --bogus: unknown flag",
        "flag --levels: invalid value '5,150': 150 is out of range",
        "flag --window: invalid value '10ms': must be from 0.2s to 60s",
        "flag --repeats: invalid value '0': must be from 1 to 50",
        "flag --tolerance: invalid value '-1'",
        "flag --cloud-provider: invalid value 'ibm': expected one of aws, azure, gcp, oci",
        "flag --progress: invalid value 'fancy'",
        "flag --output: invalid value",
        "does not exist",
        "flag --key-file: invalid value",
        "cannot read the key file",
    ):
        assert expected in text, text
    assert len(errors) == 10


def test_names_the_admin_app_can_store() -> None:
    values = parse_for(run_spec(), ["--region", "us-phoenix-1", "--instance-type",
                                    "VM.Standard.E5.Flex"], {})  # fmt: skip
    assert (values["region"], values["instance_type"]) == ("us-phoenix-1", "VM.Standard.E5.Flex")
    errors = errors_of(["--region", "US East", "--instance-type", "x" * 81])
    assert len(errors) == 2
    assert all("expected up to" in error for error in errors)


def test_attempts_per_level_stay_within_what_a_result_records() -> None:
    assert errors_of(["--repeats", "50", "--retries", "20"]) == [
        "flags --repeats and --retries allow 1050 attempts per level; the result format records "
        "at most 1000: lower one of them"
    ]


def test_upload_and_key_file_go_together(key_file: str) -> None:
    assert errors_of(["--upload", "http://admin:8000"]) == [
        "flag --upload needs --key-file: the admin app accepts only keyed uploads"
    ]
    assert errors_of(["--key-file", key_file]) == [
        "flag --key-file is given without --upload: where should the result go?"
    ]
    assert (
        "expected the admin app's base URL"
        in errors_of(["--upload", "ftp://admin", "--key-file", key_file])[0]
    )


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n")
    errors = errors_of(["--upload", "http://admin", "--key-file", str(empty)])
    assert errors == [
        f"flag --key-file: invalid value {str(empty)!r}: the key file {empty} is empty"
    ]


def test_cli_exit_code_2_with_the_errors_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["run", "--levels", "0", "--repeats", "x"], {}) == 2
    err = capsys.readouterr().err
    assert err.startswith("perfanalysis loadtest run: invalid flags:\n")
    assert "  - flag --levels: invalid value '0': 0 is out of range" in err
    assert "  - flag --repeats: invalid value 'x'" in err


def test_cli_usage_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([], {}) == 2
    assert "usage: perfanalysis loadtest run [flags]" in capsys.readouterr().err
    assert run(["--help"], {}) == 0
    assert "upload FILE" in capsys.readouterr().out
    assert run(["walk"], {}) == 2
    assert "unknown subcommand 'walk'" in capsys.readouterr().err
    assert run(["run", "--help"], {}) == 0
    out = capsys.readouterr().out
    assert "--levels=LIST" in out
    assert "PERFANALYSIS_LOADTEST_MAX_BACKGROUND" in out


def test_upload_subcommand_needs_url_key_and_one_file(
    capsys: pytest.CaptureFixture[str], key_file: str
) -> None:
    assert run(["upload", "result.json"], {}) == 2
    err = capsys.readouterr().err
    assert "flag --upload is required" in err
    assert "flag --key-file is required" in err
    assert run(["upload", "--upload", "http://admin", "--key-file", key_file], {}) == 2
    assert "give exactly one result FILE (got 0)" in capsys.readouterr().err


def test_upload_subcommand_ignores_variables_of_run_but_not_typos(key_file: str) -> None:
    environ = {"PERFANALYSIS_LOADTEST_LEVELS": "10,20", "PERFANALYSIS_LOADTEST_UPLAOD": "x"}
    with pytest.raises(ConfigError) as caught:
        parse_for(upload_spec(), ["--upload", "http://admin", "--key-file", key_file], environ)
    assert caught.value.errors == [
        "environment variable PERFANALYSIS_LOADTEST_UPLAOD: not a known setting "
        "(did you mean PERFANALYSIS_LOADTEST_UPLOAD?)"
    ]


def test_positionals_are_told_apart_from_flag_values() -> None:
    spec = run_spec()
    assert split_positionals(["a.json", "--upload", "http://x", "--key-file=k", "b"], spec) == (
        ["a.json", "b"],
        ["--upload", "http://x", "--key-file=k"],
    )
    assert split_positionals(["--pin-workers", "a.json"], spec) == (["a.json"], ["--pin-workers"])


def test_a_relative_output_in_a_removed_directory_is_a_flag_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert errors_of(["--output", "./x.json"]) == [
        "flag --output: invalid value './x.json': is relative, but the current directory no "
        "longer exists: give an absolute path, or run from an existing directory"
    ]
    assert run(["run", "--output=./x.json", "--progress=off"], {}) == 2  # not a traceback
    assert "is relative, but the current directory no longer exists" in capsys.readouterr().err
    absolute = tmp_path / "x.json"
    assert parse_for(run_spec(), ["--output", str(absolute)], {})["output"] == str(absolute)
