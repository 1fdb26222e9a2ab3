"""Flags of ``perfanalysis loadtest run`` and ``upload``, each with a PERFANALYSIS_LOADTEST_ variable."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exporter.config import duration
from exporter.loadtest.contract import INSTANCE_TYPE, MAX_ATTEMPTS, PROVIDERS, REGION, Text, fits
from exporter.loadtest.controller import DEFAULT_FULL_LOAD_MIN
from exporter.loadtest.progress import MODES
from exporter.push.keyfile import KeyFile, KeyFileError
from perfanalysis.config import Setting, Spec, number, parse, positive_int, whole_number

ENV_PREFIX = "PERFANALYSIS_LOADTEST_"
DEFAULT_LEVELS = "10,20,30,40,50,60,70,80,90,100"
MIN_WINDOW, MAX_WINDOW = 0.2, 60.0


def levels(text: str) -> list[int]:
    """``10,20,...,100``: whole percents from 1 to 100, each once, run in ascending order. 100 is
    required (it is the measured maximum every comparison uses), with at least one level below."""
    values: list[int] = []
    for part in text.split(","):
        item = part.strip().rstrip("%")
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a whole percent") from None
        if not 1 <= value <= 100:
            raise ValueError(f"{value} is out of range: levels are busy percents from 1 to 100")
        if value in values:
            raise ValueError(f"{value} is listed twice")
        values.append(value)
    if 100 not in values:
        raise ValueError("must include 100: the measured maximum is part of every result")
    if len(values) < 2:
        raise ValueError("give at least one level below 100 as well")
    return sorted(values)


def _window(text: str) -> float:
    seconds = duration(text)
    if not MIN_WINDOW <= seconds <= MAX_WINDOW:
        raise ValueError(f"must be from {MIN_WINDOW:g}s to {MAX_WINDOW:g}s")
    return seconds


def _bounded(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = number(text)
        if not (low < value if low_open else low <= value) or value > high:
            left = f"above {low:g}" if low_open else f"from {low:g}"
            raise ValueError(f"must be {left} up to {high:g}")
        return value

    return convert


def _count(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        value = whole_number(text)
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return convert


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text.strip().lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text.strip().lower()

    return convert


def _name(rule: Text) -> Callable[[str], str]:
    """A region or instance type as the result format takes it: letters, digits, '.', '_', '-'."""

    def convert(text: str) -> str:
        value = text.strip()
        if not value or not fits(rule, value):
            raise ValueError(
                f"expected up to {rule.high} letters, digits, '.', '_' or '-' "
                "(for example us-east-1, VM.Standard.E5.Flex)"
            )
        return value

    return convert


def _output(text: str) -> str:
    problem = unwritable(text)
    if problem:
        raise ValueError(problem)
    return text


def unwritable(path: str) -> str | None:
    """Why a result could not be written to ``path``, checked before the run; None when it can."""
    try:
        directory = os.path.dirname(os.path.abspath(path))
    except OSError:  # a relative path, and the current directory was removed
        return (
            "is relative, but the current directory no longer exists: give an absolute path, "
            "or run from an existing directory"
        )
    if not os.path.isdir(directory):
        return f"the directory {directory} does not exist"
    if not os.access(directory, os.W_OK):
        return f"the directory {directory} is not writable by this user"
    if os.path.isdir(path):
        return "is a directory; give a file name"
    return None


def base_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected the admin app's base URL, such as https://admin.example.com")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return text.strip().rstrip("/")


def key_file(text: str) -> KeyFile:
    try:
        return KeyFile(text)
    except KeyFileError as exc:
        raise ValueError(str(exc)) from None


def _upload_settings(spec: Spec, required: bool) -> None:
    spec.add(Setting(
        "upload", "Admin app base URL to send the result to (POST <URL>/api/v1/loadtests)."
        + ("" if required else " Needs --key-file."), None, base_url, metavar="URL",
    ))  # fmt: skip
    spec.add(Setting(
        "key-file", "File holding this collector's key (pak_...), sent as 'Authorization: Token'.",
        None, key_file, metavar="FILE",
    ))  # fmt: skip
    spec.add(Setting(
        "upload-timeout", "Timeout of the upload request.", "30s", duration, metavar="DURATION"
    ))  # fmt: skip
    spec.checks.append(_upload_pair if not required else _upload_required)


def _upload_pair(values: dict[str, Any]) -> list[str]:
    if values["upload"] and not values["key_file"]:
        return ["flag --upload needs --key-file: the admin app accepts only keyed uploads"]
    if values["key_file"] and not values["upload"]:
        return ["flag --key-file is given without --upload: where should the result go?"]
    return []


def _default_output(values: dict[str, Any]) -> list[str]:
    """With --upload and no --output the result goes to ./loadtest-<host>-<time>.json first (the
    file is kept when the upload fails): refuse before the run, as for --output, when it cannot."""
    if not values["upload"] or values["output"]:
        return []
    try:
        directory = os.getcwd()
    except OSError:
        problem = "the current directory no longer exists"
    else:
        if os.access(directory, os.W_OK):
            return []
        problem = f"the current directory {directory} is not writable by this user"
    return [
        "flag --upload without --output writes the result to ./loadtest-<host>-<time>.json "
        f"first (kept if the upload fails), but {problem}: give --output FILE in a writable "
        "directory, or run from one"
    ]


def _upload_required(values: dict[str, Any]) -> list[str]:
    problems = []
    if not values["upload"]:
        problems.append("flag --upload is required: the admin app's base URL")
    if not values["key_file"]:
        problems.append("flag --key-file is required: the collector key file")
    return problems


def _attempts_bound(values: dict[str, Any]) -> list[str]:
    attempts = values["repeats"] * (values["retries"] + 1)
    if attempts > MAX_ATTEMPTS:
        return [f"flags --repeats and --retries allow {attempts} attempts per level; the result "
                f"format records at most {MAX_ATTEMPTS}: lower one of them"]  # fmt: skip
    return []


def run_spec() -> Spec:
    spec = Spec(
        "perfanalysis loadtest run",
        ENV_PREFIX,
        "Run the calibrated CPU load test (unit pa-mem4m-v1) on every vCPU at each busy level and "
        "write the JSON result (schema perfanalysis.loadtest/1); optionally upload it.",
    )
    add = spec.add
    add(Setting("levels", "Target busy levels, in percent (1-100).", DEFAULT_LEVELS, levels,
                metavar="LIST"))  # fmt: skip
    add(Setting("window", "Length of one measurement window.", "1s", _window, metavar="DURATION"))
    add(Setting("repeats", "Accepted windows per level.", 3, _count(1, 50), metavar="N"))
    add(Setting("tolerance", "Accept a level when measured busy is within this many points of it.",
                3.0, _bounded(0, 25, low_open=True), metavar="POINTS"))  # fmt: skip
    add(Setting("full-load-min", "Busy% at or above which the 100% level is accepted.",
                DEFAULT_FULL_LOAD_MIN, _bounded(1, 100), metavar="PERCENT"))  # fmt: skip
    add(Setting("retries", "Retries per repeat, nudging the load, before a level fails.", 10,
                _count(0, 100), metavar="N"))  # fmt: skip
    add(Setting("max-background", "Points of busy% from other work that make a window "
                "disturbed (retried, never accepted); 100 turns the check off. Whatever it says, "
                "a window in which the workers did no work is never accepted, and a level that "
                "did none stops the run.", 5.0,
                _bounded(0, 100), metavar="POINTS"))  # fmt: skip
    add(Setting("workers", "Worker processes; 0 means one per vCPU this process may use.", 0,
                _count(0, 4096), metavar="N"))  # fmt: skip
    add(Setting("pin-workers", "Pin worker i to the i-th CPU this process may use.", False,
                boolean=True))  # fmt: skip
    add(Setting("calibration-windows", "Flat-out windows before the levels; the best sets the "
                "units per CPU-second that loads are computed from.", 2, positive_int, metavar="N"))  # fmt: skip
    add(Setting("output", "Write the result to this file instead of stdout (with --upload and no "
                "--output: ./loadtest-<host>-<time>.json).", None, _output, metavar="FILE"))  # fmt: skip
    add(Setting("progress", f"Progress display on stderr: {', '.join(MODES)} (auto: a status line "
                "on a terminal, plain lines otherwise).", "auto", _choice(MODES), metavar="MODE"))  # fmt: skip
    add(Setting("cloud-provider", f"Cloud provider ({', '.join(PROVIDERS)}); overrides detection.",
                None, _choice(PROVIDERS), metavar="NAME"))  # fmt: skip
    add(Setting("region", "Cloud region; overrides detection.", None, _name(REGION),
                metavar="NAME"))  # fmt: skip
    add(Setting("instance-type", "Instance type or shape; overrides detection.", None,
                _name(INSTANCE_TYPE), metavar="NAME"))  # fmt: skip
    spec.checks.append(_attempts_bound)
    _upload_settings(spec, required=False)
    spec.checks.append(_default_output)
    return spec


def upload_spec() -> Spec:
    spec = Spec(
        "perfanalysis loadtest upload FILE",
        ENV_PREFIX,
        "Upload a result file written by 'perfanalysis loadtest run' to the admin app.",
    )
    _upload_settings(spec, required=True)
    return spec


def parse_for(spec: Spec, argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse one subcommand; variables that belong to the other subcommand are not errors here."""
    everyone = {
        s.env_name(ENV_PREFIX) for other in (run_spec(), upload_spec()) for s in other.settings
    }
    mine = {s.env_name(ENV_PREFIX) for s in spec.settings}
    relevant = {k: v for k, v in environ.items() if k in mine or k not in everyone}
    return parse(spec, argv, relevant)
