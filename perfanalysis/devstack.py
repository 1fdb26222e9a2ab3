"""The local stack behind ``make up``, ``make down`` and ``make status``: no Docker, PID files.

Each service runs in its own session with its log in ``var/log`` and its PID in ``var/run``;
``up`` reuses what already runs, waits for readiness with a deadline and prints every URL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from perfanalysis.paths import ROOT, var_dir

VAR = var_dir()
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    ready_url: str
    urls: dict[str, str]

    @property
    def pid_file(self) -> Path:
        return VAR / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return VAR / "log" / f"{self.name}.log"


def _address(env: str, default: str) -> tuple[list[str], str]:
    """Flags to pass (none when the operator set the variable) and the base URL."""
    address = os.environ.get(env, default)
    flags = [] if env in os.environ else [f"--web.listen-address={address}"]
    return flags, f"http://{'127.0.0.1' + address if address.startswith(':') else address}"


CLI = [sys.executable, "-m", "perfanalysis.cli"]


def setup_steps() -> list[list[str]]:
    """Commands run before the services start; each is idempotent."""
    return [[*CLI, "admin", "--dev", "ensure-demo", "--var-dir", str(VAR)]]


def services() -> list[Service]:
    flags, base = _address("PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS", "127.0.0.1:9100")
    exporter = Service(
        "exporter",
        [*CLI, "exporter", *flags],
        f"{base}/health",
        {"metrics": f"{base}/metrics", "health": f"{base}/health"},
    )
    flags, base = _address("PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS", "127.0.0.1:8080")
    admin = Service(
        "admin",
        [*CLI, "admin", "--dev", *flags, "serve"],
        f"{base}/health",
        {"pages": f"{base}/", "API": f"{base}/api/v1/openapi.json"},
    )
    return [exporter, admin]


def running_pid(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"perfanalysis" in cmdline else None


def healthy(service: Service) -> bool:
    try:
        with urllib.request.urlopen(service.ready_url, timeout=2) as response:  # noqa: S310 (local URL)
            return bool(response.status == 200)
    except OSError:
        return False


def start(service: Service) -> None:
    pid = running_pid(service)
    if pid is not None:
        print(f"{service.name}: already running (pid {pid})")
        return
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
    service.pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + READY_TIMEOUT
    while not healthy(service):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = service.log_file.read_text(errors="replace").splitlines()[-20:]
            stop(service, quiet=True)
            raise SystemExit(
                f"{service.name} did not become ready; its log ends:\n" + "\n".join(tail)
            )
        time.sleep(0.1)
    print(f"{service.name}: started (pid {process.pid}), log {service.log_file}")


def stop(service: Service, quiet: bool = False) -> None:
    pid = running_pid(service)
    if pid is None:
        if not quiet:
            print(f"{service.name}: not running")
        service.pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    service.pid_file.unlink(missing_ok=True)
    if not quiet:
        print(f"{service.name}: stopped (pid {pid})")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    stack = services()
    if command == "up":
        for step in setup_steps():
            completed = subprocess.run(step, cwd=ROOT, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise SystemExit(
                    f"{' '.join(step[2:])} failed:\n{completed.stderr}{completed.stdout}"
                )
            print(completed.stdout, end="")
        for service in stack:
            start(service)
        print("\nPerfAnalysis is up:")
        for service in stack:
            for label, url in service.urls.items():
                print(f"  {service.name} {label}: {url}")
        print("Stop it with 'make down'.")
        return 0
    if command == "down":
        for service in reversed(stack):
            stop(service)
        return 0
    if command == "status":
        failing = 0
        for service in stack:
            pid = running_pid(service)
            state = "healthy" if pid and healthy(service) else ("unhealthy" if pid else "stopped")
            failing += state != "healthy"
            print(f"{service.name:<10} {state:<10} pid {pid or '-':<8} {service.ready_url}")
        return 1 if failing else 0
    print(
        f"usage: python -m perfanalysis.devstack up|down|status (got {command!r})", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
