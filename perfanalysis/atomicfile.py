"""Replacing a generated file whole: a reader (Prometheus, Grafana's file provisioner) sees the
old contents or the new, never half a file, and a failure leaves the old one as it was.

The new contents go to a hidden temporary file in the target's directory (so the rename stays on
one file system, and no ``*.json`` or ``*.rules.yml`` glob matches it), are flushed to disk, get
the target's permissions and group if it exists, and ``os.replace`` swaps them in. A symbolic
link is followed: the file it points to is replaced, and the link stays.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
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
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        keep_mode_and_group(path, temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


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
