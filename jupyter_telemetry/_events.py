"""How Python event values map onto the JSON the validator judges.

An event of exact JSON types passes through untouched: ``dict`` (string
keys), ``list`` and ``tuple`` (both arrays, as they are written), ``str``,
``int``, ``float``, ``bool``, ``None``, and enum members (as their values).
Subclasses of these (``OrderedDict``, a ``str`` subclass, ``numpy.float64``)
are validated as the plain values they stand for, through a copy. Anything
else (a set, bytes, a date, a ``Decimal``, ``uuid.UUID``, ``numpy.int64``, a
lone surrogate, a non-string key, NaN or Infinity, an int outside 64 bits,
nesting past :data:`MAX_EVENT_DEPTH`) is an :class:`EventSerializationError`
naming its path. Only events that are not plain pay for these walks.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import jsonschema

from ._document import MAX_EVENT_DEPTH
from .errors import EventSerializationError


def deeper_than(event: Any, limit: int) -> bool:
    """Whether ``event`` nests dicts, lists and tuples more than ``limit`` levels deep."""
    level = [event] if isinstance(event, (dict, list, tuple)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list, tuple))
        ]
    return False


def plain(event: Any, where: str) -> Any:
    """``event`` as plain JSON values, or :class:`EventSerializationError` naming the path."""
    return _plain(event, [], where)


def _plain(value: Any, path: list[str | int], where: str) -> Any:
    if isinstance(value, (dict, list, tuple)) and len(path) >= MAX_EVENT_DEPTH:
        raise unreadable(where, path, f"nested more than {MAX_EVENT_DEPTH} levels deep")
    if isinstance(value, dict):
        copy = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise unreadable(
                    where,
                    path,
                    f"key {key!r} is of type {type(key).__name__}; JSON keys are strings",
                )
            copy[_text(key, path, where)] = _plain(item, [*path, key], where)
        return copy
    if isinstance(value, (list, tuple)):
        return [_plain(item, [*path, index], where) for index, item in enumerate(value)]
    if isinstance(value, str):
        return _text(value, path, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value, path, where)
    if isinstance(value, int):
        if not fits_a_line(value):
            raise unreadable(where, path, f"{value!r} does not fit a JSON line's 64-bit integers")
        return int.__int__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise unreadable(where, path, f"{value!r}: NaN and Infinity are not JSON numbers")
        return float.__float__(value)
    raise unreadable(where, path, f"{value!r} (of type {type(value).__name__}) is not JSON data")


def _text(text: str, path: list[str | int], where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise unreadable(
            where, path, f"{text!r} holds a lone surrogate, which is not Unicode text"
        ) from None
    return str.__str__(text)


def unreadable(where: str, path: Any, what: Any) -> EventSerializationError:
    """The error for a value JSON cannot hold, at ``path`` (a list, or a JSON path string)."""
    at = path if isinstance(path, str) else json_path(path)
    return EventSerializationError(f"{where} cannot be serialised to JSON at {at}: {what}")


def json_path(path: list[str | int]) -> str:
    """jsonschema's own spelling of a path: ``$.a[0]['b c']``."""
    return jsonschema.ValidationError("", path=path).json_path


def fits_a_line(number: int) -> bool:
    """Whether the encoder can write ``number``: 64 bits, signed or not."""
    return -(2**63) <= number < 2**64
