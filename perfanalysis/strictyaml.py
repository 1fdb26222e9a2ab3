"""YAML's safe loader, except that a mapping may not repeat a key.

PyYAML keeps the last of two equal keys without a word, so a second ``tls_server_config:`` in an
exporter web-config, or a second ``tenant:`` in a report's, silently replaced the first. The
exporter's web-config must be refused as node_exporter refuses it (exporter-toolkit reads it with
yaml.v2's ``UnmarshalStrict``), and every other file the project reads is held to the same rule.
A key given again through a merge (``<<: *defaults``) is an override, as YAML means it, not a
repeat.

Bad input is refused here too, for every file, as a ``StrictYAMLError`` (a ``yaml.YAMLError``
whose ``problem_mark`` says where), never a traceback nor a hang:

* aliases that would expand the document by more than ``MAX_ALIAS_NODES`` nodes (a "billion
  laughs" bomb: the loaded data shares the nodes, but a message or a walk that shows or visits the
  value expands them), or an alias inside the very node its anchor names (a value containing
  itself), as yaml.v2 refuses them;
* more than ``MAX_DEPTH`` nested lists and mappings (Python's recursion limit is reached some
  hundreds of levels down), with the mark of the collection that is one too deep;
* a scalar its tag cannot be: ``!!float two``, ``!!bool maybe``, an integer of more than 4300
  digits (Python's limit), each with its line and column.

A plain scalar that looks like a timestamp but is no date (``2025-02-30``, ``2025-01-01T25:00:00Z``)
stays text, as if it had been quoted, so that the reader's own checks name its key path.

pyyaml is imported by whoever imports this module: the exporter does so only when it reads a file.
"""

from __future__ import annotations

import reprlib
from typing import IO, Any, cast

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
MAX_ALIAS_NODES = 1_000_000  # nodes aliases may add to a document, as if each were a copy
MAX_DEPTH = 100  # nested lists and mappings; a configuration file needs a handful


class StrictYAMLError(yaml.MarkedYAMLError):
    """Input this loader refuses; ``problem`` says what, ``problem_mark`` where."""


class DuplicateKeyError(StrictYAMLError, yaml.constructor.ConstructorError):
    """A mapping repeats a key; the message names it and the lines of both."""


class AliasError(StrictYAMLError, yaml.composer.ComposerError):
    """Aliases expand the document too much, or an alias is inside the node its anchor names."""


class NestingError(StrictYAMLError, yaml.composer.ComposerError):
    """Lists and mappings nested more than ``MAX_DEPTH`` deep."""


class ScalarError(StrictYAMLError, yaml.constructor.ConstructorError):
    """A scalar that cannot be read as its type (``!!float two``, a 5000-digit integer)."""


class StrictSafeLoader(yaml.SafeLoader):
    """Each mapping's own keys are checked once, before any merge rewrites it in place: PyYAML
    flattens a merged mapping's node when another mapping merges it, which may happen before
    that mapping itself is constructed.

    Composing counts, for each node, how many nodes it stands for with its aliases expanded, and
    refuses the alias that takes the document past ``MAX_ALIAS_NODES`` more than it has (or that
    is inside its own anchor's node), and a collection more than ``MAX_DEPTH`` levels down."""

    def compose_document(self) -> yaml.Node | None:
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for, once composed
        self._depth = 0
        self._added = 0  # nodes the aliases so far add, each counted as a copy
        try:
            return super().compose_document()
        finally:
            self._sizes = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return cast(yaml.Node, super().compose_node(parent, index))
        nests = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if nests and self._depth >= MAX_DEPTH:
            raise NestingError(
                None, None, f"nested too deeply: more than {MAX_DEPTH} levels of lists and "
                "mappings", event.start_mark,
            )  # fmt: skip
        self._depth += nests
        try:
            node = cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self._depth -= nests
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return node

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        node = self.anchors.get(event.anchor)
        mark = cast(yaml.Mark, event.start_mark)
        if node is None:
            return  # PyYAML's "found undefined alias"
        size = self._sizes.get(id(node))
        if size is None:  # its anchor's node is still being composed: it would contain itself
            raise AliasError(
                f"the anchor &{event.anchor}", node.start_mark,
                f"the alias *{event.anchor} is inside the value its anchor names: a value cannot "
                "contain itself", mark,
            )  # fmt: skip
        self._added += size
        if self._added > MAX_ALIAS_NODES:
            raise AliasError(
                None, None, f"aliases, up to this *{event.anchor}, would expand the document by "
                f"more than {MAX_ALIAS_NODES:,} nodes: write the values out, or use fewer aliases",
                mark,
            )  # fmt: skip

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, KeyError, OverflowError) as exc:  # KeyError: !!bool maybe
            why = "" if isinstance(exc, KeyError) else f" ({exc})"
            raise ScalarError(
                None, None, f"{show(node.value)} is not a valid {node.tag.rpartition(':')[2]}{why}",
                node.start_mark,
            ) from None  # fmt: skip

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date or time, or the text as written when it is none (2025-02-30)."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, AttributeError, OverflowError):  # AttributeError: !!timestamp hello
            return self.construct_scalar(node)

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


StrictSafeLoader.add_constructor(TIMESTAMP_TAG, StrictSafeLoader.construct_yaml_timestamp)


def load(
    stream: str | bytes | IO[str] | IO[bytes], loader: type[StrictSafeLoader] = StrictSafeLoader
) -> Any:
    """One YAML document, as ``yaml.safe_load`` reads it but refusing repeated keys and what
    the module's docstring lists; ``loader`` may be a subclass of StrictSafeLoader."""
    reader = loader(stream)
    try:
        return reader.get_single_data()
    except RecursionError:  # MAX_DEPTH comes first, unless the caller's stack is deep already
        raise NestingError(None, None, "nested too deeply", reader.get_mark()) from None
    finally:
        reader.dispose()


_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 60
_SHOW.maxlevel = 2


def show(value: Any) -> str:
    """A loaded value for a message: its repr, cut short (a long text, a big or deep list)."""
    return _SHOW.repr(value)
