"""``perfanalysis loadtest run [flags]`` and ``perfanalysis loadtest upload FILE [flags]``.

Exit codes: 0 every level accepted (and uploaded, or already stored by an earlier upload, when
asked: only the admin app's 201 or 409 count); 1 the run, the result file's write or the upload
failed (a level whose workers did no work, 0.0 units/s, fails the run there, before anything is
written or uploaded: the admin app would refuse the result) (the result file is kept; a result that could not be written goes to stdout, and is still
uploaded when asked), host facts the admin app would refuse (before the run), or a result it
would refuse (written, not uploaded); 2 bad flags, key file or result file; 3 the run finished but at least one
level was not accepted (recorded as ``accepted: false`` in the result); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporter.loadtest.cloud import CloudFacts, choose, detect
from exporter.loadtest.controller import NoWorkDone
from exporter.loadtest.host import gather
from exporter.loadtest.pool import PoolError
from exporter.loadtest.progress import Progress
from exporter.loadtest.result import (
    ResultFileError,
    RunSettings,
    build,
    host_problems,
    parse,
    validate,
)
from exporter.loadtest.runner import Plan, execute
from exporter.loadtest.settings import parse_for, run_spec, upload_spec
from exporter.loadtest.upload import AlreadyStored, UploadError, describe_answer, post_result
from exporter.push.keyfile import KeyFile
from perfanalysis import atomicfile
from perfanalysis.config import ConfigError, HelpRequested, Spec

PROGRAM = "perfanalysis loadtest"
USAGE = f"""usage: {PROGRAM} run [flags]
       {PROGRAM} upload FILE --upload URL --key-file FILE

  run     run the calibrated CPU load test on every vCPU and write the JSON result
  upload  upload a result file written by 'run' to the admin app

Run '{PROGRAM} run --help' or '{PROGRAM} upload --help' for the flags."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LEVELS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    args = list(argv)
    env = os.environ if environ is None else environ
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return EXIT_OK if args else EXIT_USAGE
    command, rest = args[0], args[1:]
    if command == "run":
        return run_command(rest, env)
    if command == "upload":
        return upload_command(rest, env)
    print(f"{PROGRAM}: unknown subcommand {command!r}\n\n{USAGE}", file=sys.stderr)
    return EXIT_USAGE


def _parse(spec: Spec, argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any] | int:
    """The values, or an exit code once help or every error has been printed."""
    try:
        return parse_for(spec, argv, environ)
    except HelpRequested as help_:
        print(help_.text)
        return EXIT_OK
    except ConfigError as exc:
        _errors(f"{spec.program.split(' FILE')[0]}: invalid flags:", exc.errors)
        return EXIT_USAGE


def _errors(title: str, problems: Sequence[str]) -> None:
    print(title, file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def run_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    values = _parse(run_spec(), argv, environ)
    if isinstance(values, int):
        return values
    progress = Progress(sys.stderr, values["progress"])
    given = CloudFacts(values["cloud_provider"], values["region"], values["instance_type"])
    started = datetime.now(UTC)
    try:
        host = gather(choose(given, detect()))
        refused = host_problems(host)
        if refused:  # told now, not after the hour the run takes
            progress.close()
            _errors(f"{PROGRAM}: the admin app would refuse any result of this host, so the "
                    "load test is not run:", refused)  # fmt: skip
            return EXIT_FAILED
        outcome = execute(Plan.from_values(values), progress)
    except KeyboardInterrupt:
        progress.close()
        print(f"{PROGRAM}: interrupted; no result written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NoWorkDone as exc:  # before any write or upload: the admin app would refuse it
        progress.close()
        print(f"{PROGRAM}: the load test failed: {exc}; no result written", file=sys.stderr)
        return EXIT_FAILED
    except (PoolError, OSError, ValueError) as exc:
        progress.close()
        print(f"{PROGRAM}: the load test failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    settings = RunSettings(values["window"], values["repeats"], values["tolerance"],
                           values["full_load_min"])  # fmt: skip
    document = build(started, datetime.now(UTC), host, settings, outcome.levels)
    # the admin app's own check: a disturbed host can measure units that fall between levels
    problems = validate(document)
    text = json.dumps(document, indent=2) + "\n"
    path = values["output"] or (_default_path(host.hostname, started) if values["upload"] else None)
    written = True
    if path is None:
        sys.stdout.write(text)
    else:
        try:
            atomicfile.write(Path(path), text.encode())  # a crash never leaves half a result
        except OSError as exc:
            print(f"{PROGRAM}: cannot write {path}: {exc}", file=sys.stderr)
            sys.stdout.write(text)  # the hour's work is not lost: it goes to stdout instead
            written = False
        else:
            print(f"result written to {path}", file=sys.stderr)
    cv = document["repeatability_cv_percent"]
    print(
        f"max {document['max_units_per_second']:g} units/s (the 100% level), repeatability CV "
        + (
            "n/a (needs an accepted 100% level with two or more repeats)"
            if cv is None
            else f"{cv:g}% (between the 100% level's repeats)"
        ),
        file=sys.stderr,
    )
    failed = [level for level in outcome.levels if not level.accepted]
    if failed:
        _errors(f"{len(failed)} of {len(outcome.levels)} levels were not accepted:",
                [level.failure for level in failed])  # fmt: skip
    code = EXIT_OK
    if problems:  # kept to look at, but the admin app would refuse it: not uploaded
        _errors(f"{PROGRAM}: exit status 1: the admin app would refuse this result"
                + (", so it was not uploaded:" if values["upload"] else ":"), problems)  # fmt: skip
        code = EXIT_FAILED
    elif values["upload"]:
        # the upload sends the bytes in memory: a file that could not be written does not stop it
        code = _upload(text.encode(), path if written else None, values["upload"],
                       values["key_file"], values["upload_timeout"])  # fmt: skip
    if not written:
        said = (
            f"{PROGRAM}: exit status 1: the result could not be written to {path} (it is on stdout)"
        )
        if values["upload"] and not problems:
            said += "; the admin app holds it" if code == EXIT_OK else "; the upload failed too"
        print(said, file=sys.stderr)
        return EXIT_FAILED
    if code != EXIT_OK:
        return code
    return EXIT_LEVELS_FAILED if failed else EXIT_OK


def _default_path(hostname: str, started: datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9.-]+", "_", hostname) or "host"
    return f"loadtest-{safe}-{started:%Y%m%dT%H%M%SZ}.json"


def retry_command(path: str, url: str, key_path: str) -> str:
    """The upload command for a shell, every word quoted as it needs (a path with a space)."""
    if path.startswith("-"):
        path = os.path.join(os.curdir, path)  # not taken for a flag
    return shlex.join([*PROGRAM.split(), "upload", path, "--upload", url, "--key-file", key_path])


def _upload(body: bytes, path: str | None, url: str, key: KeyFile, timeout: float) -> int:
    """Send the result; 0 only when the admin app stored it (201) or holds it already (409).
    ``path`` is the result file, None when it could not be written (the result went to stdout,
    so the outcome is told on stderr to keep stdout the result alone)."""
    out = sys.stdout if path is not None else sys.stderr
    try:
        answer = post_result(body, url, key, timeout)
    except AlreadyStored as stored:
        print(stored.describe(), file=out)
        return EXIT_OK
    except UploadError as exc:
        _errors(f"{PROGRAM}: upload failed: {exc.message}", exc.details)
        if path is None:
            kept = "the result is not in a file: save it from stdout to FILE"
            if exc.transient:
                kept += f", then retry with: {retry_command('FILE', url, key.path)}"
        else:
            kept = f"the result is kept in {path}"
            if exc.transient:
                kept += f"; retry with: {retry_command(path, url, key.path)}"
        print(kept, file=sys.stderr)
        return EXIT_FAILED
    print(describe_answer(answer), file=out)
    return EXIT_OK


def split_positionals(argv: Sequence[str], spec: Spec) -> tuple[list[str], list[str]]:
    """(positional arguments, flag arguments): a ``--flag`` without ``=`` takes the next word."""
    booleans = {s.flag for s in spec.settings if s.boolean}
    positionals: list[str] = []
    flags: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--") or arg == "--":
            if arg != "--":
                positionals.append(arg)
            continue
        flags.append(arg)
        name = arg[2:]
        if "=" not in name and name not in booleans and args and not args[0].startswith("--"):
            flags.append(args.pop(0))
    return positionals, flags


def upload_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    spec = upload_spec()
    positionals, flags = split_positionals(argv, spec)
    values = _parse(spec, flags, environ)
    if isinstance(values, int):
        return values
    if len(positionals) != 1:
        print(f"{PROGRAM} upload: give exactly one result FILE (got {len(positionals)})",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    path = positionals[0]
    try:
        with open(path, "rb") as handle:
            body = handle.read()
    except OSError as exc:
        print(f"{PROGRAM} upload: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:  # as the admin app reads it: UTF-8, no key twice in one object
        document = parse(body)
    except ResultFileError as exc:
        print(f"{PROGRAM} upload: {path} is {exc}", file=sys.stderr)
        return EXIT_USAGE
    problems = validate(document)
    if problems:
        _errors(f"{PROGRAM} upload: {path} is not a load test result:", problems)
        return EXIT_USAGE
    return _upload(body, path, values["upload"], values["key_file"], values["upload_timeout"])
