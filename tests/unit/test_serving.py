"""perfanalysis.serving: what gunicorn's workers load."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn.http.message import _check_fast_parser

from perfanalysis.serving import GunicornApp, gunicorn_options, heartbeat_directory


class Built:
    """Stands for an app with the reference cycles apps have."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_what_loading_built_is_left_out_of_garbage_collection(unfrozen: None) -> None:
    made: list[Built] = []

    def factory() -> Built:
        made.append(Built())
        return made[-1]

    app = GunicornApp(factory, {"workers": 1}).load()

    assert app is made[0]
    assert gc.get_freeze_count() > 0
    assert not any(tracked is app for tracked in gc.get_objects())  # a collection skips it
    later = Built()
    assert any(tracked is later for tracked in gc.get_objects())  # what requests make is not


def test_requests_are_parsed_by_gunicorns_c_parser() -> None:
    """gunicorn falls back to its Python parser (about 1.5 times the CPU per request: 100 against
    68 us for a write's head here) when gunicorn_h1c is missing or a setting it cannot honour
    is on."""
    app = GunicornApp(lambda: None, gunicorn_options("127.0.0.1", 8000, 2, 4, timeout=40))
    assert _check_fast_parser(app.cfg)


def test_workers_beat_their_heartbeat_in_memory_where_there_is_some(tmp_path: Path) -> None:
    app = GunicornApp(lambda: None, gunicorn_options("127.0.0.1", 8000, 2, 4))
    assert app.cfg.worker_tmp_dir == ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    assert heartbeat_directory(str(tmp_path)) == {"worker_tmp_dir": str(tmp_path)}
    assert heartbeat_directory(str(tmp_path / "missing")) == {}
