"""The report's output files: each appears whole or not at all, and a failed run keeps the last.

The HTML is written to a temporary file beside its target and renamed over it, and Chromium
prints the PDF to a temporary file that is renamed over the PDF once it is there, so a full disk,
a Chromium failure or an interrupted run leaves the previous report as it was and no temporary
file behind. A target that exists but is no regular file (``/dev/stdout``, a FIFO) is written in
place: a rename would replace the device node itself. A symbolic link is followed, so the link
stays and its target is replaced.
"""

from __future__ import annotations

import os
import stat
import tempfile

from perfanalysis.atomicfile import naming, replacing


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


def target_problem(path: str | os.PathLike[str]) -> str | None:
    """Why an output file cannot be written at ``path``, checked before anything is read: it is
    a directory, its directory is missing (or no directory), or no file may be created there
    (the temporary file beside it: one is made and removed, since permissions alone do not
    tell, in /proc say). None when it can be written."""
    if os.fspath(path).endswith(os.sep):
        return f"{path} ends in {os.sep}: give a file name"
    real = os.path.realpath(path)  # a symbolic link is followed: its target is replaced
    if os.path.isdir(real):
        return f"{path} is a directory: give a file name"
    if in_place(real):
        return None if os.access(real, os.W_OK) else f"{path} is not writable"
    parent = os.path.dirname(real) or "."
    if not os.path.exists(parent):
        return f"{path}: the directory {parent} does not exist"
    if not os.path.isdir(parent):
        return f"{path}: {parent} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".perfanalysis-check-"):
            pass
    except OSError as exc:
        return f"{path}: no file may be created in {parent} ({exc.strerror or exc})"
    return None


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
            raise naming(exc, path) from None
