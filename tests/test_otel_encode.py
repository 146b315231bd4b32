"""Our encoder writes byte for byte what the SDK's encoder writes for the same records."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from jupyter_telemetry import __version__
from jupyter_telemetry.sinks.otel._encode import Encoder
from jupyter_telemetry.sinks.otel._records import Item, emit

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # beyond int64: sent as a string
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=20,
)


def deep(depth: int) -> Any:
    value: Any = [1]
    for _ in range(depth):
        value = {"k": value}
    return value


events = st.dictionaries(
    st.text().filter(lambda key: not key.startswith("__")),
    values | st.integers(0, 30).map(deep),  # deeper than MAX_DEPTH: sent as JSON text
    max_size=6,
)
items = st.builds(
    lambda event, schema_id, version, time_ns, observed, ids: (
        event,
        schema_id,
        version,
        time_ns,
        observed,
        ids,
    ),
    events,
    st.sampled_from(["https://example.org/a", "b", "événement"]),
    st.integers(0, 3) | st.sampled_from(["1", "2.0"]),
    st.integers(-(2**70), 2**70),  # before 1970 and after 2554 too
    st.integers(1, 2**64 - 1),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1), st.integers(0, 255)),
)


def item(event: dict[str, Any], schema_id: str, version: int | str, time_ns: int,
         observed: int, ids: tuple[int, int, int]) -> Item:  # fmt: skip
    stamp = "2024-02-29T12:00:00Z" if 0 <= time_ns < 2**64 else "0001-01-01T00:00:00Z"
    capsule = {
        "__timestamp__": stamp,
        "__schema__": schema_id,
        "__schema_version__": version,
        "__metadata_version__": 1,
        **event,
    }
    trace_id, span_id, flags = ids
    context = set_span_in_context(
        NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags)))
    )
    return Item(orjson.dumps(capsule).decode(), time_ns, schema_id, version, context, observed)


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(items, min_size=1, max_size=6))
def test_our_request_is_byte_identical_to_the_sdks(batch: list[Any]) -> None:
    resource = Resource.create({"service.name": "encode", "n": 1, "ok": True, "f": 1.5})
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("jupyter_telemetry", __version__)
    encoder = Encoder(dict(resource.attributes), resource.schema_url)
    queued = [item(*fields) for fields in batch]
    for one in queued:
        emit(logger, one)  # what an application's provider receives
    ours = encoder.request([encoder.record(one) for one in queued])
    theirs = encode_logs(exporter.get_finished_logs()).SerializeToString()
    assert ours == theirs
    ExportLogsServiceRequest.FromString(ours)  # and it parses (depth within the limits)


# Lengths at which a field's size stops fitting one varint byte (127/128), for
# keys, string values, nested maps and arrays: where the encoder's shortcuts end.
_EDGES = [0, 1, 100, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 300, 16383, 16384]


@pytest.mark.parametrize("key_size", [0, 1, 7, 60, 126, 127, 128, 200])
def test_sizes_at_the_one_byte_boundaries_encode_as_the_sdk_does(key_size: int) -> None:
    key = "k" * key_size
    event: dict[str, Any] = {}
    for n in _EDGES:
        event[f"{key}s{n}"] = "x" * n
        event[f"{key}u{n}"] = "é" * (n // 2)  # two UTF-8 bytes a character
        event[f"{key}a{n}"] = ["y" * n, n]
        event[f"{key}m{n}"] = {key: "z" * n, "n": n, "f": n / 3, "b": n % 2 == 0, "z": None}
        event[f"{key}i{n}"] = n - 64
        event[f"{key}v{n}"] = n  # a varint of one, two, three bytes
    event[key] = "an empty key is not written, as proto3 says"
    test_our_request_is_byte_identical_to_the_sdks.hypothesis.inner_test(  # type: ignore[attr-defined]
        [(event, "s", 1, 1709208000_000000000, 1709208000_000000001, (1, 2, 1))]
    )
