"""The kernel's share of a sample: what the collectors read, read again with no parsing.

A scrape is recorded once: every file it opens (``os.open`` and ``open``), every directory it
lists and every file system it asks statfs about. Replaying the recording reads the same files
to the end with plain system calls, lists the same directories and calls statfs on the same
paths, and parses nothing. Most of its cost is the kernel producing /proc's and /sys's text,
which any exporter of these collectors pays, in any language: it is the floor under a sample's
CPU, and what is above it is the exporter's own work.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from exporter.collectors.statfs import StatfsRunner
from exporter.registry import Registry

READ_SIZE = 64 * 1024


@dataclass
class Recording:
    """What one scrape touched, in order, each path as often as the scrape touched it."""

    files: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)

    def replay(self) -> None:
        for path in self.files:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue  # the scrape found it missing too
            try:
                while os.read(fd, READ_SIZE):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
        for path in self.directories:
            with contextlib.suppress(OSError):
                os.listdir(path)
        for path in self.mounts:
            with contextlib.suppress(OSError):
                os.statvfs(path)


def record(registry: Registry) -> Recording:
    """Run one scrape of ``registry`` and note what it read.

    ``os.open``, ``open``, ``os.listdir`` and ``os.scandir`` are wrapped for the scrape's
    duration (collectors look them up at call time), and so is each statfs runner's function;
    all are restored before returning.
    """
    recording = Recording()
    runners = list(_runners(registry))
    with contextlib.ExitStack() as stack:
        stack.enter_context(_wrapped(os, "open", recording.files))
        stack.enter_context(_wrapped(builtins, "open", recording.files))
        stack.enter_context(_wrapped(os, "listdir", recording.directories))
        stack.enter_context(_wrapped(os, "scandir", recording.directories))
        for runner in runners:
            stack.enter_context(_wrapped(runner, "statfs", recording.mounts))
        registry.scrape()
    return recording


def _runners(registry: Registry) -> Iterator[StatfsRunner]:
    for collector in registry.collectors:
        runner = getattr(collector, "runner", None)
        if isinstance(runner, StatfsRunner):
            yield runner


@contextlib.contextmanager
def _wrapped(owner: Any, name: str, paths: list[str]) -> Iterator[None]:
    original: Callable[..., Any] = getattr(owner, name)

    def noting(*args: Any, **kwargs: Any) -> Any:
        path = args[0] if args else kwargs.get("path", ".")
        if isinstance(path, str | bytes | os.PathLike):
            paths.append(os.fsdecode(path))
        return original(*args, **kwargs)

    setattr(owner, name, noting)
    try:
        yield
    finally:
        setattr(owner, name, original)
