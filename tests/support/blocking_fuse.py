"""A real FUSE filesystem whose statfs(2) hangs on demand, served by a child process.

``BlockingFuse`` mounts an empty directory tree on a fresh temporary directory. Its ``statfs``
answers with fixed values (see ``STATFS``) unless the fixture has called ``block()``: then every
statfs waits inside the filesystem, polling a control file every few milliseconds, until
``release()``. For the kernel, and so for the caller of statvfs(2), that is exactly a hung network
mount: the calling thread sits in the kernel until the filesystem answers.

The filesystem runs in a child process (fusepy over libfuse 2, multithreaded, so other requests are
still answered while a statfs waits), never in the test process: a blocked kernel call can only
wedge the threads that made it. The child logs each statfs as it enters and returns, with the
caller's thread group id, so a test can count the calls its own process made.

Teardown (``stop()``, also on ``__exit__``) works while a statfs is blocked: it releases the block,
unmounts (``fusermount -u`` or ``umount``, then ``umount -l`` when the mount is still busy), stops
the child by its PID (SIGTERM, then SIGKILL, which aborts the FUSE connection and fails any call
still pending), and removes the temporary directory only once nothing is mounted on it. If the
test process dies without a teardown, the child notices its parent is gone, detaches the mount and
exits.

Needs root (or CAP_SYS_ADMIN), /dev/fuse, the PyPI package ``fusepy`` and the Debian package
``libfuse2``; ``unavailable_reason()`` says which is missing, for a clear skip.

Run as a script (``python blocking_fuse.py serve MOUNTPOINT CONTROL_DIR``) it is the child.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The fixed answer of an unblocked statfs.
STATFS = {
    "f_bsize": 4096,
    "f_frsize": 4096,
    "f_blocks": 1000,
    "f_bfree": 400,
    "f_bavail": 300,
    "f_files": 500,
    "f_ffree": 200,
    "f_favail": 200,
    "f_namemax": 255,
}
FSNAME = "perfanalysis-blocking"  # the device column of the mount table
SUBTYPE = "perfanalysis_blocking"  # the fstype column reads fuse.perfanalysis_blocking

POLL = 0.01  # how often a blocked statfs looks at the control file
BLOCK_FILE = "block"  # statfs blocks while this file exists in the control directory
CALLS_FILE = "calls"  # one line per statfs event: "enter|exit TGID TID"
READY_FILE = "ready"  # written by the filesystem's init(), once the kernel handshake is done
LOG_FILE = "child.log"  # the child's stdout and stderr


class FuseUnavailable(Exception):
    """A prerequisite of a FUSE mount is missing on this machine: the message names it."""


def unavailable_reason() -> str | None:
    """Why a FUSE mount cannot be made here (package names included), or None when it can."""
    if not sys.platform.startswith("linux"):
        return "FUSE mounts are only tested on Linux"
    if os.geteuid() != 0:
        return "mounting a FUSE filesystem needs root (or CAP_SYS_ADMIN)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (kernel fuse module not loaded?)"
    try:
        import fuse  # type: ignore[import-untyped]
    except ImportError:
        return "the PyPI package 'fusepy' is not installed (pip install fusepy)"
    except OSError as exc:  # fusepy raises EnvironmentError when libfuse.so.2 is not found
        return f"the Debian package 'libfuse2' is not installed (apt-get install libfuse2): {exc}"
    if not hasattr(fuse, "FUSE") or not hasattr(fuse, "fuse_get_context"):
        return "the importable 'fuse' module is not fusepy (pip install fusepy)"
    return None


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def _unescape(field: str) -> str:
    """Undo the kernel's octal escapes in /proc/*/mounts (\\040 space and the like)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_entries(mountpoint: str, table: str = "/proc/self/mounts") -> list[tuple[str, str, str]]:
    """(device, fstype, mountpoint) of each mount on ``mountpoint``, as the mount table shows it."""
    try:
        with open(table, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and _unescape(parts[1]) == mountpoint:
            found.append((_unescape(parts[0]), parts[2], _unescape(parts[1])))
    return found


@dataclass(frozen=True)
class StatfsEvent:
    kind: str  # "enter" or "exit"
    tgid: int  # the calling process (0 when unknown)
    tid: int  # the calling thread


class BlockingFuse:
    """A FUSE mount whose statfs blocks between ``block()`` and ``release()``; see the module doc."""

    def __init__(self, start_timeout: float = 15.0) -> None:
        self.start_timeout = start_timeout
        self.base = ""
        self.mountpoint = ""
        self.control = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BlockingFuse:
        """Mount and wait until it answers; FuseUnavailable when a prerequisite is missing."""
        reason = unavailable_reason()
        if reason:
            raise FuseUnavailable(reason)
        self.base = tempfile.mkdtemp(prefix="perfanalysis-fuse-")
        self.mountpoint = os.path.join(self.base, "mnt")
        self.control = os.path.join(self.base, "control")
        os.mkdir(self.mountpoint)
        os.mkdir(self.control)
        self._log = open(os.path.join(self.control, LOG_FILE), "wb")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "serve", self.mountpoint, self.control],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C meant for pytest must not kill it mid-test
            )
            ready = wait_until(
                lambda: (
                    self.process is not None
                    and (
                        self.process.poll() is not None
                        or (os.path.exists(self._path(READY_FILE)) and self.is_mounted())
                    )
                ),
                self.start_timeout,
            )
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the FUSE child exited with {self.process.returncode} before mounting "
                    f"{self.mountpoint}:\n{self.child_log()}"
                )
            if not ready:
                raise RuntimeError(
                    f"the FUSE mount on {self.mountpoint} was not ready within "
                    f"{self.start_timeout}s:\n{self.child_log()}"
                )
            # One real statfs, from a throwaway thread so that a broken child cannot hang us.
            got = self.statvfs_within(self.start_timeout)
            if got is None or got.f_blocks != STATFS["f_blocks"]:
                raise RuntimeError(
                    f"statfs on {self.mountpoint} gave {got!r}, not the fixed answer:\n"
                    f"{self.child_log()}"
                )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Release, unmount, stop the child and remove the temporary directory; never raises."""
        if not self.base:
            return
        with contextlib.suppress(OSError):
            self.release()
        # Let a released statfs return first, so a plain unmount is not refused as busy.
        if self.process is not None and self.process.poll() is None:
            wait_until(lambda: self.in_flight(tgid=None) == 0, 2.0)
        self._unmount()
        self._stop_child()
        if self.is_mounted():  # the child died without unmounting: the mount is left dangling
            self._run(["umount", "-l", self.mountpoint])
        if self._log is not None:
            self._log.close()
            self._log = None
        if not self.is_mounted():
            shutil.rmtree(self.base, ignore_errors=True)
        self.base = ""

    def __enter__(self) -> BlockingFuse:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _unmount(self) -> None:
        if not self.is_mounted():
            return
        fusermount = shutil.which("fusermount") or shutil.which("fusermount3")
        plain = [fusermount, "-u", self.mountpoint] if fusermount else ["umount", self.mountpoint]
        if self._run(plain) and not self.is_mounted():
            return
        # Still busy (a statfs still inside the filesystem): detach now, the kernel drops the
        # mount once its last user returns, which killing the child forces below.
        self._run(["umount", "-l", self.mountpoint])

    def _stop_child(self) -> None:
        process = self.process
        if process is None:
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        self.process = None

    @staticmethod
    def _run(argv: list[str]) -> bool:
        try:
            done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    # -- control -----------------------------------------------------------------------------

    def block(self) -> None:
        """From now on every statfs waits inside the filesystem until ``release()``."""
        with open(self._path(BLOCK_FILE), "w", encoding="ascii"):
            pass

    def release(self) -> None:
        """Let blocked and future statfs calls answer."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(BLOCK_FILE))

    # -- observation -------------------------------------------------------------------------

    def events(self) -> list[StatfsEvent]:
        try:
            with open(self._path(CALLS_FILE), encoding="ascii") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            kind, tgid, tid = line.split()
            events.append(StatfsEvent(kind, int(tgid), int(tid)))
        return events

    def calls(self, tgid: int | None = None) -> int:
        """statfs calls that reached the filesystem (from process ``tgid``; None: from anyone)."""
        return self._count("enter", tgid)

    def in_flight(self, tgid: int | None = None) -> int:
        """statfs calls inside the filesystem now (from ``tgid``; None: from anyone)."""
        return self._count("enter", tgid) - self._count("exit", tgid)

    def _count(self, kind: str, tgid: int | None) -> int:
        return sum(1 for e in self.events() if e.kind == kind and (tgid is None or e.tgid == tgid))

    def is_mounted(self) -> bool:
        return bool(self.mountpoint) and bool(mount_entries(self.mountpoint))

    def mount_entry(self, table: str = "/proc/1/mounts") -> tuple[str, str, str]:
        """(device, fstype, mountpoint) as ``table`` shows them: the labels the exporter uses."""
        entries = mount_entries(self.mountpoint, table)
        if not entries:
            raise RuntimeError(f"{self.mountpoint} is not in {table}")
        return entries[-1]

    def statvfs_within(self, timeout: float) -> os.statvfs_result | None:
        """os.statvfs on the mount from a daemon thread; None when it has not returned in time."""
        box: list[os.statvfs_result] = []

        def call() -> None:
            with contextlib.suppress(OSError):
                box.append(os.statvfs(self.mountpoint))

        worker = threading.Thread(target=call, name="blocking-fuse-statvfs", daemon=True)
        worker.start()
        worker.join(timeout)
        return box[0] if box else None

    def child_log(self, limit: int = 4000) -> str:
        try:
            with open(self._path(LOG_FILE), encoding="utf-8", errors="replace") as handle:
                return handle.read()[-limit:]
        except OSError:
            return "(no child log)"

    def _path(self, name: str) -> str:
        if not self.control:
            raise RuntimeError("the FUSE mount is not started")
        return os.path.join(self.control, name)


# -- the child ---------------------------------------------------------------------------------


def _caller_tgid(tid: int) -> int:
    """The process a calling thread belongs to (the kernel's FUSE request carries the thread id)."""
    try:
        with open(f"/proc/{tid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def serve(mountpoint: str, control: str) -> int:
    import errno
    import stat

    from fuse import FUSE, FuseOSError, Operations, fuse_get_context

    block_file = os.path.join(control, BLOCK_FILE)
    calls_file = os.path.join(control, CALLS_FILE)
    ready_file = os.path.join(control, READY_FILE)
    write_lock = threading.Lock()
    started = time.time()

    def record(kind: str, tid: int, tgid: int) -> None:
        line = f"{kind} {tgid} {tid}\n".encode("ascii")
        with write_lock:
            fd = os.open(calls_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    class Blocking(Operations):  # type: ignore[misc]
        use_ns = True

        def init(self, path: str) -> None:
            with open(ready_file, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")

        def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
            if path != "/":
                raise FuseOSError(errno.ENOENT)
            return {
                "st_mode": stat.S_IFDIR | 0o755,
                "st_nlink": 2,
                "st_uid": 0,
                "st_gid": 0,
                "st_ctime": started,
                "st_mtime": started,
                "st_atime": started,
            }

        def readdir(self, path: str, fh: int) -> list[str]:
            return [".", ".."]

        def statfs(self, path: str) -> dict[str, int]:
            tid = fuse_get_context()[2]
            tgid = _caller_tgid(tid)  # the caller is inside statfs(2): its /proc entry is there
            record("enter", tid, tgid)
            try:
                while os.path.exists(block_file):
                    time.sleep(POLL)
                return dict(STATFS)
            finally:
                record("exit", tid, tgid)

    parent = os.getppid()

    def watchdog() -> None:
        # The test process died without a teardown: detach the mount and go, never leave it.
        while os.getppid() == parent:
            time.sleep(0.2)
        with contextlib.suppress(OSError):
            os.unlink(block_file)
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False, timeout=10)
        if not mount_entries(mountpoint):
            with contextlib.suppress(OSError):
                os.rmdir(mountpoint)
            shutil.rmtree(control, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(mountpoint))
        os._exit(1)

    threading.Thread(target=watchdog, name="watchdog", daemon=True).start()
    FUSE(
        Blocking(),
        mountpoint,
        foreground=True,
        nothreads=False,
        fsname=FSNAME,
        subtype=SUBTYPE,
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve":
        sys.exit(f"usage: {sys.argv[0]} serve MOUNTPOINT CONTROL_DIR")
    sys.exit(serve(sys.argv[2], sys.argv[3]))
