"""The project's YAML loader: yaml.safe_load's reading, with a repeated key refused."""

from __future__ import annotations

import pytest
import yaml

from perfanalysis import strictyaml


def test_a_plain_document_reads_as_safe_load_reads_it() -> None:
    text = "a: 1\nb: [x, {c: 2.5}]\nd: 2024-01-02\ne: null\n"
    assert strictyaml.load(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "key", "first", "second"),
    [
        ("tls_server_config: {cert_file: a}\nusers: {}\ntls_server_config: {}\n", "tls_server_config", 1, 3),
        ("tenants:\n  demo: {cpu: 1}\n  other: {}\n  demo: {cpu: 2}\n", "demo", 2, 4),
        ("{a: 1, a: 2}\n", "a", 1, 1),
    ],
)  # fmt: skip
def test_a_repeated_key_is_refused_naming_it_and_both_lines(
    text: str, key: str, first: int, second: int
) -> None:
    with pytest.raises(strictyaml.DuplicateKeyError) as raised:
        strictyaml.load(text)
    message = str(raised.value)
    assert f"found the key {key!r} a second time (first on line {first})" in message
    assert f"line {second}, column" in message
    assert isinstance(raised.value, yaml.YAMLError)  # callers' existing handlers catch it


def test_a_key_given_again_through_a_merge_is_an_override() -> None:
    text = "base: &base {a: 1, b: 2}\nmine:\n  <<: *base\n  a: 3\n"
    assert strictyaml.load(text)["mine"] == {"a": 3, "b": 2}


def test_keys_equal_only_as_text_are_different_keys() -> None:
    assert strictyaml.load("1: x\n'1': y\n") == {1: "x", "1": "y"}


def test_a_merge_override_in_a_mapping_merged_before_it_is_built_is_an_override() -> None:
    """PyYAML flattens ``a`` in place when ``c`` merges it, before ``a`` itself is built."""
    text = "base: &b {x: 1, y: 1}\ntemplates:\n  a: &a\n    <<: *b\n    x: 2\nc:\n  <<: *a\n"
    assert strictyaml.load(text) == yaml.safe_load(text)
    with pytest.raises(strictyaml.DuplicateKeyError, match="found the key 'x' a second time"):
        strictyaml.load(text.replace("    x: 2\n", "    x: 2\n    x: 3\n"))
