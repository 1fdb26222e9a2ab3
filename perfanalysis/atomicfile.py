"""Replacing a generated file whole: a reader (Prometheus, Grafana's file provisioner) sees the
old contents or the new, never half a file, and a failure leaves the old one as it was.

The new contents go to a hidden temporary file in the target's directory (so the rename stays on
one file system, and no ``*.json`` or ``*.rules.yml`` glob matches it), are flushed to disk, get
the target's permissions and group if it exists, and ``os.replace`` swaps them in. A symbolic
link is followed: the file it points to is replaced, and the link stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path


def target(path: Path) -> Path:
    """The file a rename must replace: ``path``, or the file a symbolic link there points to."""
    return Path(os.path.realpath(path))


def stage(path: Path, data: bytes) -> Path:
    """``data`` in a new hidden temporary file next to ``path`` (its directory made if missing),
    with ``path``'s permissions if it exists, else 0666 less the umask as a plain ``open`` makes.

    The caller renames it over ``path`` with ``os.replace``, or unlinks it; nothing is left behind
    when this raises.
    """
    path = target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = create_beside(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        keep_mode_and_group(path, temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A new empty file beside ``path`` (see ``create_beside``) with ``path``'s permissions and
    group, for the block to fill; renamed over ``path`` when the block ends, removed when it
    raises. An OSError names ``path``, not the temporary file."""
    final = target(Path(path))
    temporary = create_beside(final, path)
    try:
        keep_mode_and_group(final, temporary)
        yield temporary
        try:
            os.replace(temporary, final)
        except OSError as exc:
            raise naming(exc, path) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def create_beside(path: Path, named: str | os.PathLike[str] | None = None) -> Path:
    """A new empty hidden file in ``path``'s directory (mode 0666 less the umask, as a plain
    ``open`` makes), under a name no one else holds; an OSError names ``named`` (else ``path``)."""
    for _ in range(100):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as exc:
            raise naming(exc, named or path) from None
        return candidate
    raise FileExistsError(
        errno.EEXIST, "no free temporary name beside it", os.fspath(named or path)
    )


def naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` about ``path``: the file the user named, not a temporary one."""
    return OSError(exc.errno, exc.strerror or str(exc), os.fspath(path))


def keep_mode_and_group(target: Path, temporary: Path) -> None:
    """``target``'s permissions and group on its replacement ``temporary`` (a file made private
    with chmod 600, or given to a service's group, stays so); nothing to keep for a new one."""
    try:
        kept = target.stat()
    except FileNotFoundError:
        return
    if kept.st_gid != temporary.stat().st_gid:
        with contextlib.suppress(PermissionError):  # only its owner or root may
            os.chown(temporary, -1, kept.st_gid)
    os.chmod(temporary, stat.S_IMODE(kept.st_mode))


def write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole (``stage``, then ``os.replace``); on failure the old
    file is unchanged and no temporary file is left."""
    temporary = stage(path, data)
    try:
        os.replace(temporary, target(path))
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
