"""The OpenAPI document says what ingest and the key verifier do: a field named host is refused
from every key, pinned or free, and a key's last use is UTC, written to the minute."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from ingest.batch import ForcedTags
from tenants.keys import LAST_USE_RESOLUTION


def schemas(client: FlaskClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/api/v1/openapi.json").get_json()
    return document["components"]["schemas"]


def test_the_host_tag_says_a_host_field_is_refused_from_every_key(client: FlaskClient) -> None:
    for free_or_pinned in (ForcedTags("acme", "web1"), ForcedTags("acme", "web1", "web1.x")):
        assert "host" in free_or_pinned.refused_field_keys
    for schema in ("Collector", "CollectorCreate", "CollectorUpdate"):
        description = schemas(client)[schema]["properties"]["host_tag"]["description"]
        assert "refuses a field named host from every key" in description, schema


def test_a_keys_last_use_is_utc_to_the_minute_as_a_tokens(client: FlaskClient) -> None:
    assert LAST_USE_RESOLUTION == 60.0
    found = schemas(client)
    key = found["Key"]["properties"]["last_used_at"]["description"]
    token = found["Token"]["properties"]["last_used_at"]["description"]
    assert token.startswith("UTC, to the minute")
    assert key.startswith("UTC, to the minute")
    assert "at most once a minute per key" in key


def test_the_collector_key_upload_says_it_is_the_keys_use(client: FlaskClient) -> None:
    document: dict[str, Any] = client.get("/api/v1/openapi.json").get_json()
    upload = document["paths"]["/loadtests"]["post"]
    assert "last_used_at" in upload["description"]
    assert "last_seen_at" in upload["description"]
