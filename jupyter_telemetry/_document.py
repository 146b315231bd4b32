"""A schema document's private JSON copy, and what registration learns walking it.

One walk copies the document, refuses what is not JSON data, and notes its
references, anchors, property names and depth. From those,
:func:`max_event_depth` decides whether validation can recurse without bound
(a reference cycle) and, if so, how deep an event may be: the compiled
validator recurses on the native stack, and an event nested deeply enough
under a recursive schema would overflow it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .errors import SchemaRegistrationError

REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")
#: Nesting the JSON encoder writes (orjson's limit): deeper events are never recorded.
MAX_EVENT_DEPTH = 254
# Native frames a recursive schema may use per event, as (schema depth x event
# depth): ~300 bytes each measured, so ~300 KiB, within the 512 KiB a thread
# gets on the smallest default stacks.
_FRAME_BUDGET = 1024

Path = tuple[str, ...]


@dataclass
class Shape:
    """What one walk of a schema document found."""

    refs: list[tuple[Path, str, str]] = field(default_factory=list)  # (where, keyword, value)
    anchors: dict[str, Path] = field(default_factory=dict)
    property_names: list[tuple[Path, str]] = field(default_factory=list)
    patterns: list[tuple[Path, str]] = field(default_factory=list)  # pattern, patternProperties
    #: a subschema with its own base URI, or a dynamic reference: resolution is not ours
    opaque: bool = False
    depth: int = 0


def pointer(path: Path) -> str:
    """``path`` as a JSON pointer fragment: ``#/properties/a~1b``."""
    return "#" + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def copy_json(document: Mapping[str, Any], where: str) -> tuple[dict[str, Any], Shape]:
    """A deep copy of ``document`` and its :class:`Shape`.

    Raises :class:`SchemaRegistrationError` for anything that is not JSON data
    (YAML also yields dates, bytes and sets; dicts may hold tuples or
    non-string keys), including strings that are not Unicode (lone surrogates)
    and non-finite numbers. May raise ``RecursionError``.
    """
    shape = Shape()
    return _copy(document, (), shape, where), shape


def _copy(node: Any, path: Path, shape: Shape, where: str) -> Any:
    if len(path) > shape.depth:
        shape.depth = len(path)
    if isinstance(node, dict) or (not path and isinstance(node, Mapping)):
        copy: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                _refuse(where, path, key)
            _text(key, path, where)
            copy[key] = _copy(value, (*path, key), shape, where)
        _note(copy, path, shape)
        return copy
    if isinstance(node, list):
        return [_copy(value, (*path, str(i)), shape, where) for i, value in enumerate(node)]
    if isinstance(node, str):
        return _text(node, path, where)
    if (isinstance(node, float) and math.isfinite(node)) or node is None or isinstance(node, int):
        return node
    return _refuse(where, path, node)


def _note(node: dict[str, Any], path: Path, shape: Shape) -> None:
    for keyword in REFERENCES:
        value = node.get(keyword)
        if isinstance(value, str):
            shape.refs.append((path, keyword, value))
            if keyword != "$ref":
                shape.opaque = True
    for keyword in ("$anchor", "$dynamicAnchor"):
        if isinstance(node.get(keyword), str):
            shape.anchors[node[keyword]] = path
    base = node.get("$id", node.get("id"))
    if isinstance(base, str) and path:
        if base.startswith("#"):
            shape.anchors[base[1:]] = path
        else:
            shape.opaque = True
    if isinstance(node.get("properties"), dict):
        shape.property_names.extend((path, name) for name in node["properties"])
    if isinstance(node.get("pattern"), str):
        shape.patterns.append(((*path, "pattern"), node["pattern"]))
    if isinstance(node.get("patternProperties"), dict):
        where = (*path, "patternProperties")
        shape.patterns.extend((where, pattern) for pattern in node["patternProperties"])


def _text(text: str, path: Path, where: str) -> str:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise SchemaRegistrationError(
                f"{where} holds {text!r} at {pointer(path)}: a lone surrogate is not "
                "Unicode text and cannot be written to a JSON line"
            ) from None
    return text


def _refuse(where: str, path: Path, node: Any) -> Any:
    raise SchemaRegistrationError(
        f"{where} holds {node!r} (of type {type(node).__name__}) at {pointer(path)}: a schema "
        "is JSON data (objects with string keys, arrays, strings, finite numbers, "
        "booleans, null)"
    )


def max_event_depth(shape: Shape) -> int:
    """The deepest event to validate; 0 when the encoder's own limit is low enough.

    Only a schema whose references recurse lets the validator descend as deep
    as the event goes.
    """
    limit = _FRAME_BUDGET // max(1, shape.depth)
    if limit >= MAX_EVENT_DEPTH or not _recursive(shape):
        return 0
    return max(1, limit)


def _recursive(shape: Shape) -> bool:
    """Whether some chain of references leads back into itself (or we cannot tell)."""
    if shape.opaque:
        return True
    targets: list[Path] = []
    for _, _, value in shape.refs:
        target = _target(value[1:], shape)
        if target is None:
            return True
        targets.append(target)
    order = sorted(range(len(shape.refs)), key=lambda i: shape.refs[i][0])
    places = [shape.refs[i][0] for i in order]

    def inside(target: Path) -> list[int]:
        """The references placed in the subschema at ``target``."""
        start, found = bisect.bisect_left(places, target), []
        for index in range(start, len(places)):
            if places[index][: len(target)] != target:
                break
            found.append(order[index])
        return found

    state = [0] * len(shape.refs)  # 0 unvisited, 1 on the path, 2 done
    for first in range(len(shape.refs)):
        if state[first]:
            continue
        stack = [(first, iter(inside(targets[first])))]
        state[first] = 1
        while stack:
            current, following = stack[-1]
            step = next(following, None)
            if step is None:
                state[current] = 2
                stack.pop()
            elif state[step] == 1:
                return True
            elif state[step] == 0:
                state[step] = 1
                stack.append((step, iter(inside(targets[step]))))
    return False


def _target(fragment: str, shape: Shape) -> Path | None:
    if fragment == "" or fragment.startswith("/"):
        parts = unquote(fragment).split("/")[1:]
        return tuple(p.replace("~1", "/").replace("~0", "~") for p in parts)
    return shape.anchors.get(fragment)
