"""Queued events → the bytes of one OTLP ``ExportLogsServiceRequest``.

Each record is encoded on its own, so a record that cannot be encoded costs
only itself; the request around the records is assembled from bytes built
once per sink. The result is byte for byte what the SDK's encoder writes for
the records ``_records.emit`` gives a provider with the same resource
(tests/test_otel_encode.py proves it), at a fraction of its CPU: no SDK
record objects, no nested messages copied into their parents.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PBResource

from ..._version import __version__
from ._config import SCOPE
from ._records import INT64_MAX, INT64_MIN, MAX_DEPTH, TIME_LIMIT, Item, attributes, span_ids, split

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_INFO = b"\x10\x09\x1a\x04INFO"  # severity_number 9, severity_text "INFO"


_SMALL = [bytes((n,)) for n in range(128)]
_PACK_DOUBLE = struct.Struct("<d").pack


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    if value < 16384:  # two bytes: a record's and its body's lengths, as a rule
        return b"%c%c" % (value & 0x7F | 0x80, value >> 7)
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` is the field number and wire type in one byte."""
    return _SMALL[tag] + _varint(len(payload)) + payload


# Lengths below 128 are one varint byte, which ``b"%c" % n`` writes: the common
# small fields are each built by one bytes formatting instead of several joins.


def _any(value: Any, depth: int) -> bytes:
    """The bytes of one AnyValue message (a oneof: even a zero value is written)."""
    kind = type(value)
    if kind is str:
        data: bytes = value.encode()
        size = len(data)
        return b"\x0a%c%b" % (size, data) if size < 128 else b"\x0a" + _varint(size) + data
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
        data = str(value).encode()
        return b"\x0a" + _varint(len(data)) + data
    if kind is float:
        return b"\x21" + _PACK_DOUBLE(value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if value is None:
        return b""
    if depth >= MAX_DEPTH:
        data = orjson.dumps(value)
        return b"\x0a" + _varint(len(data)) + data
    if kind is dict:
        pairs = _pairs(value, depth + 1)
        return b"\x32" + _varint(len(pairs)) + pairs
    if kind is list:
        items = _items(value, depth + 1)
        return b"\x2a" + _varint(len(items)) + items
    raise TypeError(f"cannot encode {kind.__name__} in an OTLP value")


def _items(values: list[Any], depth: int) -> bytes:
    """Field 1 of ArrayValue, repeated: one AnyValue per item; items at ``depth``."""
    out = []
    for value in values:
        if type(value) is str:
            text = value.encode()
            size = len(text)
            if size < 126:
                out.append(b"\x0a%c\x0a%c%b" % (size + 2, size, text))
                continue
            data = b"\x0a" + _varint(size) + text
        else:
            data = _any(value, depth)
        size = len(data)
        out.append(b"\x0a%c%b" % (size, data) if size < 128 else b"\x0a" + _varint(size) + data)
    return b"".join(out)


#: property name → its KeyValue.key field followed by the value field's tag
_KEYS: dict[str, bytes] = {}


def _key(key: str) -> bytes:
    name = key.encode()
    head = (b"\x0a" + _varint(len(name)) + name if name else b"") + b"\x12"  # proto3: no ""
    if len(_KEYS) < 4096:  # property names repeat; random ones must not grow it for ever
        _KEYS[key] = head
    return head


def _pairs(mapping: dict[str, Any], depth: int) -> bytes:
    """Field 1 of KeyValueList, repeated: one KeyValue per item; values at ``depth``."""
    out = []
    for key, value in mapping.items():
        head = _KEYS.get(key) or _key(key)
        fixed = len(head) + 1  # the key, the value's tag and a one-byte value length
        if type(value) is str:
            text = value.encode()
            size = len(text)
            if fixed + size + 2 < 128:  # entry, AnyValue and string lengths: one byte each
                out.append(b"\x0a%c%b%c\x0a%c%b" % (fixed + size + 2, head, size + 2, size, text))
                continue
            data = b"\x0a" + _varint(size) + text
        elif value is True or value is False:
            data = b"\x10\x01" if value else b"\x10\x00"
        elif type(value) is int and 0 <= value < 128:
            data = b"\x18%c" % value
        else:
            data = _any(value, depth)
        size = len(data)
        if fixed + size < 128:
            out.append(b"\x0a%c%b%c%b" % (fixed + size, head, size, data))
        else:
            entry = head + _varint(size) + data
            out.append(b"\x0a" + _varint(len(entry)) + entry)
    return b"".join(out)


def _fill(target: AnyValue, value: Any, depth: int) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif kind is float:
        target.double_value = value
    elif kind is bool:
        target.bool_value = value
    elif value is None:
        target.SetInParent()  # present but empty, as the SDK writes it
    elif depth >= MAX_DEPTH:
        target.string_value = orjson.dumps(value).decode()
    elif kind is dict:
        target.kvlist_value.SetInParent()
        _fill_pairs(target.kvlist_value.values, value, depth + 1)
    elif kind is list:
        target.array_value.SetInParent()
        values = target.array_value.values
        for item in value:
            _fill(values.add(), item, depth + 1)
    else:
        raise TypeError(f"cannot encode {kind.__name__} in an OTLP value")


def _fill_pairs(target: Any, pairs: Mapping[str, Any], depth: int) -> None:
    for key, value in pairs.items():
        entry: KeyValue = target.add()
        entry.key = key
        _fill(entry.value, value, depth)


def _attributes(pairs: Mapping[str, Any]) -> bytes:
    """LogRecord field 6, repeated: one KeyValue per attribute."""
    out = b""
    for key, value in pairs.items():
        entry = KeyValue(key=key)
        _fill(entry.value, value, 0)
        out += _field(0x32, entry.SerializeToString())
    return out


class Encoder:
    """Encodes queued events for one resource and the ``jupyter_telemetry`` scope."""

    def __init__(self, resource_attributes: Mapping[str, Any], schema_url: str = "") -> None:
        resource = PBResource()
        _fill_pairs(resource.attributes, resource_attributes, 0)
        scope = InstrumentationScope(name=SCOPE, version=__version__)
        self._resource = _field(0x0A, resource.SerializeToString())
        self._resource_schema = _field(0x1A, schema_url.encode()) if schema_url else b""
        self._scope = _field(0x0A, scope.SerializeToString())
        self._heads: dict[tuple[str, int | str], tuple[bytes, bytes]] = {}

    def _head(self, schema_id: str, version: int | str) -> tuple[bytes, bytes]:
        """``(attributes, event_name)`` fields of a schema, built once."""
        key = (schema_id, version)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = (
                _attributes(attributes(schema_id, version)),
                _field(0x62, schema_id.encode()),
            )
        return head

    def record(self, item: Item) -> bytes:
        """One LogRecord message; raises ``ValueError``/``TypeError`` for what cannot be encoded."""
        event, stamp = split(item.line)
        pairs = _pairs(event, 1)  # the body: the event map, as _any(event, 0) writes it
        size = _varint(len(pairs))
        attrs, name = self._head(item.schema_id, item.version)
        time_ns = item.time_ns
        if 0 < time_ns < TIME_LIMIT:
            when = b"\x09" + _FIXED64(time_ns) + _INFO
        elif time_ns == 0:
            when = _INFO
        else:
            when = _INFO
            attrs = _attributes(attributes(item.schema_id, item.version, stamp))
        # Joined once: the body (field 5, an AnyValue whose field 6 is the map) is not
        # copied into its parent, nor the record into itself field by field.
        parts = [when, b"\x2a", _varint(1 + len(size) + len(pairs)), b"\x32", size, pairs, attrs]
        trace_id, span_id, flags = span_ids(item.context)
        if flags:
            parts.append(b"\x45" + _FIXED32(flags))
        if trace_id:
            parts.append(b"\x4a\x10" + trace_id.to_bytes(16, "big"))
        if span_id:
            parts.append(b"\x52\x08" + span_id.to_bytes(8, "big"))
        if item.observed_ns:
            parts.append(b"\x59" + _FIXED64(item.observed_ns))
        parts.append(name)
        return b"".join(parts)

    def request(self, records: Iterable[bytes]) -> bytes:
        """The request holding ``records`` (from :meth:`record`) under this resource and scope."""
        parts = [self._scope]
        for record in records:  # ScopeLogs field 2, repeated
            parts += (b"\x12", _varint(len(record)), record)
        scope_logs = b"".join(parts)
        resource_logs = self._resource + _field(0x12, scope_logs) + self._resource_schema
        return _field(0x0A, resource_logs)
