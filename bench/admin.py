"""The admin app under gunicorn on PostgreSQL: latency at 50 concurrent clients, key verifications/s.

* Seeds a throwaway PostgreSQL database (on the server DATABASE_URL points at) with tenants,
  collectors, keys and audit events, starts ``perfanalysis admin serve`` (gunicorn) on it, and
  drives the list pages and the API as a tenant admin (so every request checks a role) with
  wrk: 50 connections, each a client that waits a think time between an answer and its next
  request. The first think time (1 s by default, as k6 and Locust scripts usually pace a user)
  is the target's: p95 <= 50 ms, no errors. Shorter ones, down to 0 (closed loop, which measures
  saturation: latency is then 50 / throughput), show the capacity within the target. An error is
  a socket error or any answer other than 200, which every request here expects: a redirect to
  the login page (an expired session) is an error, not a fast page.
* Times ``KeyVerifier.verify`` with a warm cache in this process. Target >= 50,000/s.

Targets: docs/architecture.md, Targets. Both are absolute: no anchor runs beside them.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m bench.admin \\
        [--seconds 10] [--user-seconds 30] [--think 1000,250,100,50,0] [--workers 4] [--threads 8]
        [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.termination import unwind_on_termination
from perfanalysis.testing.postgres import throwaway_database
from perfanalysis.testing.servers import free_port, wait_until

P95_TARGET_MS = 50.0
VERIFY_TARGET = 50_000
SECRET = "bench-secret-" + "k" * 40
PASSWORD = "bench password 1234"  # noqa: S105 (a throwaway database)
TENANTS, COLLECTORS_PER_TENANT = 5, 20
CONNECTIONS, THREADS = 50, 2  # wrk: 50 clients on 2 event-loop threads
EXPECTED_STATUS = 200  # every path benchmarked is a GET that answers 200

WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = {%(headers)s}
local think_ms = %(think_ms)d
local threads = {}
setup = function(thread) table.insert(threads, thread) end
local i = 0
codes = {}
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], headers[i])
end
-- clients arrive spread over one think time rather than all at once, then think between an
-- answer and their next request; wrk asks delay() before every request of this thread
local first_requests = %(connections_per_thread)d
delay = function()
  if think_ms == 0 then return 0 end
  if first_requests > 0 then
    first_requests = first_requests - 1
    return math.random(0, think_ms)
  end
  return math.random(math.floor(think_ms / 2), math.floor(think_ms * 3 / 2))
end
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %%d, "p50_ms": %%.2f, "p95_ms": %%.2f, "p99_ms": %%.2f, ' ..
    '"max_ms": %%.2f, "socket_errors": %%d, "seconds": %%.2f}\\n',
    summary.requests, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6))
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("codes")) do io.write(string.format("CODE %%d %%d\\n", code, n)) end
  end
end
"""


def seed(url: str) -> tuple[str, str]:
    """Tenants, collectors, keys and audit events; returns (a user API token, a collector key)."""
    from tenants import db as database
    from tenants.access import system_actor
    from tenants.accounts import create_user, issue_token, set_membership
    from tenants.app import create_app
    from tenants.collectors import register_collector
    from tenants.keys import issue_key
    from tenants.schema import upgrade
    from tenants.settings import load
    from tenants.tenancy import create_tenant

    app = create_app(
        load([], {"PERFANALYSIS_ADMIN_DATABASE_URL": url, "PERFANALYSIS_ADMIN_SECRET_KEY": SECRET})
    )
    upgrade(app.extensions["pa_engine"])
    actor = system_actor("bench")
    with app.app_context():
        db = database.session()
        # a tenant admin rather than a platform admin: every request then checks a role
        user = create_user(db, actor, "bench@example.test", PASSWORD, "Bench")
        _, token = issue_token(db, user, app.extensions["pa_hasher"], "bench")
        key = ""
        for t in range(TENANTS):
            tenant = create_tenant(
                db,
                actor,
                f"t{t}",
                f"Tenant {t}",
                app.extensions["pa_storage"],
                app.extensions["pa_vault"],
            )
            set_membership(db, actor, tenant, user.email, "admin")
            for c in range(COLLECTORS_PER_TENANT):
                collector = register_collector(
                    db,
                    actor,
                    tenant,
                    {"name": f"host-{c:02d}", "hostname": f"host-{c:02d}.t{t}.example"},
                )
                key = issue_key(
                    db, actor, tenant, collector, app.extensions["pa_hasher"], "bench"
                ).plaintext
    app.extensions["pa_engine"].dispose()
    return token, key


def login_cookie(base: str) -> str:
    http = requests.Session()
    http.trust_env = False
    page = http.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    answer = http.post(
        f"{base}/login",
        data={"email": "bench@example.test", "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (302, 303), answer.text[:200]
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def run_wrk(
    base: str,
    paths: list[tuple[str, dict[str, str]]],
    seconds: int,
    think_ms: int,
    workdir: Path,
) -> dict[str, Any]:
    """50 connections for ``seconds``; each waits ``think_ms`` (0.5-1.5x, uniform) between requests."""
    lua = WRK_SCRIPT % {
        "think_ms": think_ms,
        "connections_per_thread": CONNECTIONS // THREADS,
        "paths": ", ".join(json.dumps(p) for p, _ in paths),
        "headers": ", ".join(
            "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in h.items()) + "}"
            for _, h in paths
        ),
    }
    script = workdir / "bench.lua"
    script.write_text(lua)
    completed = subprocess.run(
        [
            *("wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"),
            *("-s", str(script), base),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    result = parse_wrk(completed.stdout)
    print(
        f"  answers by status: {result.pop('codes')}; socket errors {result['socket_errors']:.0f}",
        file=sys.stderr,
    )
    return result


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The script's RESULT line, the answers by status (``codes``, from its CODE lines; wrk
    itself counts only statuses above 399 as errors) and ``unexpected_status``: every answer
    other than EXPECTED_STATUS."""
    lines = stdout.splitlines()
    result: dict[str, Any] = json.loads(next(x for x in lines if x.startswith("RESULT "))[7:])
    codes: dict[int, int] = {}
    for line in lines:
        if line.startswith("CODE "):
            code, count = map(int, line.split()[1:])
            codes[code] = codes.get(code, 0) + count
    result["codes"] = codes
    result["unexpected_status"] = sum(n for code, n in codes.items() if code != EXPECTED_STATUS)
    return result


def verifications_per_second(url: str, key: str, seconds: float = 3.0) -> float:
    from sqlalchemy.orm import sessionmaker

    from tenants.crypto import CredentialHasher
    from tenants.db import make_engine
    from tenants.keys import KeyVerifier

    engine = make_engine(url)
    verifier = KeyVerifier(sessionmaker(engine), CredentialHasher(SECRET), ttl=5.0)
    verifier.verify(key)  # warm the cache
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            verifier.verify(key)
        count += 1000
    engine.dispose()
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per phase")
    parser.add_argument(
        "--user-seconds",
        type=int,
        default=30,
        help="wrk duration at the first (target's) think time",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument(
        "--think",
        type=_think_times,
        default=[1000, 250, 100, 50, 0],
        help="think times in ms, comma-separated; the first is the users' (target), 0 is closed loop",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    server = os.environ.get("DATABASE_URL")
    if not server or not server.startswith("postgres"):
        parser.error(
            "set DATABASE_URL to a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    if shutil.which("wrk") is None:
        parser.error("wrk is missing: apt-get install wrk (make bench installs it)")
    with (
        throwaway_database(server, "pa_bench") as url,
        tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp,
    ):
        print("seeding the admin database …", file=sys.stderr, flush=True)
        token, key = seed(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PERFANALYSIS_ADMIN_DATABASE_URL": url,
            "PERFANALYSIS_ADMIN_SECRET_KEY": SECRET,
            "PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "PERFANALYSIS_ADMIN_WEB_WORKERS": str(args.workers),
            "PERFANALYSIS_ADMIN_WEB_THREADS": str(args.threads),
        }
        env.pop("REDIS_URL", None)
        log = (Path(tmp) / "admin.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "perfanalysis.cli", "admin", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: _ok(f"{base}/health"), timeout=60, what="the admin app")
            bearer = {"Authorization": f"Bearer {token}"}
            cookie = {"Cookie": login_cookie(base)}
            api = [
                (p, bearer)
                for p in (
                    "/api/v1/tenants",
                    "/api/v1/tenants/t1/collectors",
                    "/api/v1/tenants/t1/keys",
                    "/api/v1/tenants/t2/members",
                )
            ]
            pages = [
                (p, cookie)
                for p in (
                    "/tenants",
                    "/tenants/t1",
                    "/tenants/t1/loadtests",
                    f"/tenants/t1/collectors/{COLLECTORS_PER_TENANT + 1}",  # t1's first collector
                )
            ]
            results: list[tuple[str, int, dict[str, Any]]] = []
            print("warming up (connections, caches, compiled templates) …", file=sys.stderr)
            run_wrk(base, api + pages, 3, 0, Path(tmp))
            for name, paths in (("API", api), ("pages", pages)):
                for level, think in enumerate(args.think):
                    # the target's level runs longer: its clients' arrival (over one think
                    # time) must not dominate p95
                    seconds = args.user_seconds if level == 0 else args.seconds
                    print(
                        f"wrk: 50 clients on the {name}, think time {think} ms, {seconds} s …",
                        file=sys.stderr,
                        flush=True,
                    )
                    results.append((name, think, run_wrk(base, paths, seconds, think, Path(tmp))))
        finally:
            process.terminate()
            process.wait(timeout=30)
        rate = verifications_per_second(url, key)
    latency_met = report(results, f"{args.workers} workers x {args.threads} threads", args.think[0])
    verify_met = rate >= VERIFY_TARGET
    print(
        f"key verifications with a warm cache: {rate:,.0f}/s (target >= {VERIFY_TARGET:,}): {'met' if verify_met else 'MISSED'}"
    )
    return 0 if (latency_met and verify_met) or not args.strict else 1


def report(results: list[tuple[str, int, dict[str, Any]]], server: str, user_think: int) -> bool:
    """Print the table and the verdicts; True when the p95 target is met at the users' think
    time, on the API and the pages alike."""
    print(
        f"admin under gunicorn ({server}) on PostgreSQL, 50 concurrent clients; "
        "each client waits a think time (0.5-1.5x) between answer and next request"
    )
    print(
        f"{'':7}{'think ms':>9}{'requests':>10}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    verdicts: list[bool] = []
    capacity: dict[str, float] = {}
    for name, think, r in results:
        errors = errors_of(r)
        per_second = r["requests"] / r["seconds"]
        within = r["p95_ms"] <= P95_TARGET_MS and errors == 0
        if within:
            capacity[name] = max(capacity.get(name, 0.0), per_second)
        if think == user_think:
            verdicts.append(within)
        label = "0 (closed loop)" if think == 0 else str(think)
        print(
            f"{name:7}{label:>9}{int(r['requests']):>10}{per_second:>8.0f}{r['p50_ms']:>9.1f}"
            f"{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{errors:>8}"
        )
    met = bool(verdicts) and all(verdicts)
    print(f"errors: socket errors and answers other than {EXPECTED_STATUS}")
    print(
        f"target p95 <= {P95_TARGET_MS:.0f} ms with no errors, 50 clients at a {user_think} ms think time: "
        + ("met" if met else "MISSED")
    )
    print(
        "capacity within the target (highest measured rate with p95 <= 50 ms, no errors): "
        + ", ".join(f"{name} {capacity.get(name, 0):.0f} req/s" for name in ("API", "pages"))
    )
    return met


def errors_of(result: dict[str, Any]) -> int:
    """Socket errors plus every answer other than EXPECTED_STATUS."""
    return int(result["socket_errors"]) + int(result["unexpected_status"])


def _think_times(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole milliseconds: {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("think times must be 0 or more milliseconds")
    return values


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    unwind_on_termination()
    sys.exit(main())
