"""The JSON line: each event serialised once, as pure ASCII.

:func:`dumps` is a ``json.dumps``-compatible serialiser, so it plugs into
``structlog.processors.JSONRenderer(serializer=dumps)``. ``orjson`` does the
serialising; non-ASCII characters are then written as JSON ``\\uXXXX``
escapes (surrogate pairs above U+FFFF), exactly as ``json.dumps`` with
``ensure_ascii=True`` writes them and as jupyter-telemetry 0.1.0 wrote, so a
handler opened with any encoding (cp1252, ascii, latin-1) writes every event.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import orjson

__all__ = ["dumps", "dumps_finite", "ensure_finite"]

_SCALARS = (str, int, bool, type(None))
_NON_FINITE = "NaN and Infinity have no JSON encoding"
_ESCAPE = "jupyter_telemetry.json_escape"


def _escape(error: UnicodeError) -> tuple[str, int]:
    # The ASCII codec hands over each run of non-ASCII characters: no quote,
    # backslash or control character, so json.dumps writes \u escapes only.
    assert isinstance(error, UnicodeEncodeError)
    return json.dumps(error.object[error.start : error.end])[1:-1], error.end


codecs.register_error(_ESCAPE, _escape)  # a codec error handler: faster than re.sub


def _non_finite(value: Any) -> bool:
    """Whether ``value`` holds a float NaN or infinity, at any depth (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            if item - item != 0.0:  # NaN and ±inf, without a call
                return True
        elif isinstance(item, dict):
            stack.extend(dict(item).values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def dumps(obj: Any, *, default: Any = None) -> str:
    """Serialise ``obj`` to one line of pure-ASCII JSON (no newline).

    Raises ``TypeError`` for anything JSON cannot hold exactly: NaN and
    ±Infinity, integers beyond 64 bits, strings with lone surrogates, objects
    of other types, nesting deeper than 254 levels. ``default`` (structlog
    passes a ``repr`` fallback) is ignored, so a value is never silently
    replaced.
    """
    line = orjson.dumps(obj).decode()
    # orjson writes NaN and Infinity as null; only a line holding null needs the walk.
    if "null" in line and _non_finite(obj):
        raise TypeError(_NON_FINITE)
    return line if line.isascii() else line.encode("ascii", _ESCAPE).decode("ascii")


def dumps_finite(obj: Any, *, default: Any = None) -> str:
    """:func:`dumps` for an ``obj`` whose values :func:`ensure_finite` already checked."""
    line = orjson.dumps(obj).decode()
    # isascii() is O(1): CPython records it when building the str.
    return line if line.isascii() else line.encode("ascii", _ESCAPE).decode("ascii")


def ensure_finite(event: dict[str, Any]) -> None:
    """Raise ``TypeError`` if ``event`` holds NaN or Infinity, or cannot be serialised.

    For events about to be redacted: the nulls redaction writes would send
    every rendered line through the walk, so the event is checked as given.
    """
    if b"null" in orjson.dumps(event) and _non_finite(event):
        raise TypeError(_NON_FINITE)
