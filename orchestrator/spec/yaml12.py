"""Strict YAML for job files: YAML 1.2 core scalars, values as written, bounded. Pure.

PyYAML speaks YAML 1.1, where `chmod 0755` becomes `chmod 493`, `MODE: 0644` becomes
420, `TIME: 12:30` becomes 750 and `on`/`yes` become true. Job files are loaded with the
YAML 1.2 core schema instead: booleans are only true/false, integers are decimal (or
0o/0x), there are no sexagesimal numbers or timestamps. Numbers keep the text they
were written as (`Number.text`), so a command item or a variable gets exactly that text.

Also refused: duplicate keys (a merge key `<<:` may be overridden, that is what it is
for), keys that are not plain values, and documents whose aliases expand beyond a
bound (a billion laughs costs nothing here, and nothing later).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import quote

# Values a document may hold once its aliases are expanded.
MAX_EXPANDED_NODES = 100_000
# Digits an integer may be written with: Python's int() refuses more than 4300 (and str()
# of a longer hexadecimal one fails), far beyond any field; a command item this long
# can be quoted.
MAX_INT_DIGITS = 1000
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


class Int(int):
    """An integer that remembers how it was written."""

    text: str


class Float(float):
    """A float that remembers how it was written."""

    text: str


def written(value: object) -> str | None:
    """The text a scalar number was written as, if it came from a job file."""
    return getattr(value, "text", None) if isinstance(value, Int | Float) else None


class StrictLoader(yaml.SafeLoader):
    """Safe YAML with the YAML 1.2 core schema for plain scalars (see the module doc)."""

    # Our own table, replacing the YAML 1.1 one SafeLoader would inherit.
    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_EXPANDED_NODES values, or
    that contains itself. Counted over the node graph, memoised: linear in its size."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConstructorError(
                None, None, "an alias refers to a node that holds it", node.start_mark
            )
        open_nodes.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise ConstructorError(
                None,
                None,
                f"the document expands to more than {MAX_EXPANDED_NODES:,} values "
                "through its aliases",
                node.start_mark,
            )
        sizes[key] = total
        return total

    size(root)


def _construct_int(loader: StrictLoader, node: ScalarNode) -> Int:
    text = str(node.value)
    if len(text) > MAX_INT_DIGITS:
        raise ConstructorError(
            None,
            None,
            f"a number of more than {MAX_INT_DIGITS} digits (quote it if it is text)",
            node.start_mark,
        )
    if text.startswith("0o"):
        value = Int(int(text[2:], 8))
    elif text.startswith("0x"):
        value = Int(int(text[2:], 16))
    else:
        value = Int(int(text, 10))
    value.text = text
    return value


def _construct_float(loader: StrictLoader, node: ScalarNode) -> Float:
    text = str(node.value)
    value = Float(float(text.lower().replace(".inf", "inf").replace(".nan", "nan")))
    value.text = text
    return value


def _construct_mapping(loader: StrictLoader, node: MappingNode) -> dict[Any, Any]:
    own: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in own
        except TypeError:
            raise ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if duplicate:
            raise ConstructorError(None, None, f"duplicate key {quote(key)}", key_node.start_mark)
        own.add(key)
    # Merged keys come first, so the mapping's own keys override them.
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=True)


for _tag, _pattern, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", _INT.pattern, "-+0123456789"),
    ("float", _FLOAT.pattern, "-+.0123456789"),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("merge", r"<<", "<"),
):
    StrictLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(rf"^(?:{_pattern})$"), list(_first)
    )
StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_all(text: str) -> list[object]:
    """Every document of `text`; raises yaml.YAMLError (RecursionError when too deep)."""
    return list(yaml.load_all(text, Loader=StrictLoader))
