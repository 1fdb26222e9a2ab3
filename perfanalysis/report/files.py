"""The report's output files: each appears whole or not at all, and a failed run keeps the last.

The HTML is written to a temporary file beside its target and renamed over it, and Chromium
prints the PDF to a temporary file that is renamed over the PDF once it is there, so a full disk,
a Chromium failure or an interrupted run leaves the previous report as it was and no temporary
file behind. A target that exists but is no regular file (``/dev/stdout``, a FIFO) is written in
place: a rename would replace the device node itself. A symbolic link is followed, so the link
stays and its target is replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from perfanalysis.atomicfile import keep_mode_and_group


def same_file(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: ``os.path.samefile`` when both exist (hard links too),
    else the resolved paths (a file about to be created)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def in_place(path: str | os.PathLike[str]) -> bool:
    """An existing target that is neither a regular file nor a directory: written in place."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A new empty file beside ``path`` (mode 0666 less the umask, as a plain ``open`` makes),
    renamed over ``path`` when the block ends and removed when it raises. An OSError names
    ``path``, not the temporary file."""
    target = Path(os.path.realpath(path))
    temporary = _create_beside(target, path)
    try:
        keep_mode_and_group(target, temporary)
        yield temporary
        try:
            os.replace(temporary, target)
        except OSError as exc:
            raise _naming(exc, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (see the module)."""
    if in_place(path):
        with open(path, "wb") as stream:
            stream.write(data)
        return
    with replacing(path) as temporary, open(temporary, "wb") as stream:
        try:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        except OSError as exc:
            raise _naming(exc, path) from None


def _create_beside(target: Path, named: str | os.PathLike[str]) -> Path:
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise _naming(exc, named) from None
        return candidate
    raise FileExistsError(errno.EEXIST, "no free temporary name beside it", os.fspath(named))


def _naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    return OSError(exc.errno, exc.strerror or str(exc), os.fspath(path))
