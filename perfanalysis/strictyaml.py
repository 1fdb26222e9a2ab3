"""YAML's safe loader, except that a mapping may not repeat a key.

PyYAML keeps the last of two equal keys without a word, so a second ``tls_server_config:`` in an
exporter web-config, or a second ``tenant:`` in a report's, silently replaced the first. The
exporter's web-config must be refused as node_exporter refuses it (exporter-toolkit reads it with
yaml.v2's ``UnmarshalStrict``), and every other file the project reads is held to the same rule.
A key given again through a merge (``<<: *defaults``) is an override, as YAML means it, not a
repeat.

pyyaml is imported by whoever imports this module: the exporter does so only when it reads a file.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key; the message names it and the lines of both."""


class StrictSafeLoader(yaml.SafeLoader):
    """Each mapping's own keys are checked once, before any merge rewrites it in place: PyYAML
    flattens a merged mapping's node when another mapping merges it, which may happen before
    that mapping itself is constructed."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        self._check_once(node)
        super().flatten_mapping(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self._check_once(node)
        return super().construct_mapping(node, deep=deep)

    def _check_once(self, node: yaml.MappingNode) -> None:
        checked: set[int] = self.__dict__.setdefault("_checked_mappings", set())
        if id(node) not in checked:
            checked.add(id(node))
            _refuse_repeated_keys(self, node)


def _refuse_repeated_keys(loader: StrictSafeLoader, node: yaml.MappingNode) -> None:
    first: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue  # a merge is an override; a complex key is refused by the constructor
        key = loader.construct_object(key_node, deep=True)
        try:
            earlier = first.setdefault(key, key_node)
        except TypeError:
            continue
        if earlier is not key_node:
            raise DuplicateKeyError(
                "while constructing a mapping",
                node.start_mark,
                f"found the key {key!r} a second time (first on line {earlier.start_mark.line + 1})",
                key_node.start_mark,
            )


def load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    """One YAML document, as ``yaml.safe_load`` reads it but refusing repeated keys."""
    return yaml.load(stream, Loader=StrictSafeLoader)  # noqa: S506 - a SafeLoader
