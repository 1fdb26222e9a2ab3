"""The Python helpers that stand in for url_for and macros in the rows of the admin pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, url_for
from markupsafe import Markup

from tenants.views.formatting import csrf_field, hardware, labels, path, when


@pytest.mark.parametrize(
    ("endpoint", "values"),
    [
        ("pages.collector", {"slug": "acme-prod", "collector_id": 7}),
        ("pages.collector_status", {"slug": "a", "collector_id": 7, "active": False}),
        ("pages.collector_status", {"slug": "a", "collector_id": 7, "active": True}),
        ("pages.rotate_key", {"slug": "a", "key_id": "abcdefghijklm"}),
        ("pages.revoke_key", {"slug": "a", "key_id": "abcdefghijklm"}),
        ("pages.change_role", {"slug": "a", "user_id": 3}),
        ("pages.remove_member", {"slug": "a", "user_id": 3}),
        ("pages.tenant", {"slug": "a b/c"}),
    ],
)
def test_path_builds_what_url_for_builds(app: Flask, endpoint: str, values: dict[str, Any]) -> None:
    with app.test_request_context("/tenants", base_url="http://admin.test/prefix"):
        assert path(endpoint, **values) == url_for(endpoint, **values)
        assert path(endpoint, **values).startswith("/prefix/")


def test_when_shows_the_relative_and_exact_time_or_the_empty_text_escaped(app: Flask) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with app.test_request_context("/"):
        shown = when(moment)
        assert isinstance(shown, Markup)
        assert shown.startswith('<time datetime="2026-01-02T03:04:05+00:00" ')
        assert 'title="2026-01-02 03:04:05 UTC">' in shown
        assert when(None, "<never>") == '<span class="muted">&lt;never&gt;</span>'


def test_the_csrf_field_follows_the_sessions_token(app: Flask) -> None:
    from flask import session

    with app.test_request_context("/"):
        first = csrf_field()
        assert first == csrf_field()
        session["csrf"] = "changed<token>"
        assert (
            csrf_field() == '<input type="hidden" name="csrf_token" value="changed&lt;token&gt;">'
        )


def test_labels_and_hardware_escape_what_users_typed(app: Flask) -> None:
    class Machine:
        vcpus, memory_bytes, cloud_provider = 4, 16 << 30, "<aws>"
        region, instance_type = "eu-west-1", None

    assert labels({"b": "<x>", "A": "1"}) == (
        '<span class="chip">A=1</span> <span class="chip">b=&lt;x&gt;</span>'
    )
    assert labels({}) == '<span class="muted">none</span>'
    assert hardware(Machine()) == "4 vCPU · 16 GiB · &lt;aws&gt; · eu-west-1"  # type: ignore[arg-type]
