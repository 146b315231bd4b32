"""Bad input: random events against random schemas, random schema documents, hostile
references, deep and huge events (Hypothesis, a real collector for the big ones)."""

from __future__ import annotations

import http.server
import io
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from decimal import Context, Decimal, localcontext
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import orjson
import pytest
from _collector import Collector
from conftest import EVENT, SCHEMA, SCHEMA_ID, read_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from jupyter_telemetry import EventLog, EventValidationError, SchemaLoadError
from jupyter_telemetry._schema import compile_schema
from jupyter_telemetry.sinks.otel._records import sanitise

FUZZ_ID = "http://event.jupyter.org/fuzz"
CAPSULE_KEYS = ("__timestamp__", "__schema__", "__schema_version__", "__metadata_version__")
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ------------------------------------------------------------------

#: property names: a small pool (so events meet their schema's properties), capsule
#: and reserved names, and anything else
NAMES = st.sampled_from(["a", "b", "x", "count", "message", "é", "a b", ""]) | st.text(max_size=5)
RESERVED = st.sampled_from(["__schema__", "__timestamp__", "__x"])
TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
PATTERNS = ["^a", "a|b", "^$", "[", "(?P<n>a)", r"\d+", r"\p{L}", "é", "(", ".*"]
REFS = [
    "#",
    "#/definitions/a",
    "#/definitions/b",
    "#/definitions/missing",
    "#/properties/x",
    "#foo",
    "#/version",
    "#/definitions/a/items",
]
DIALECTS = [
    "http://json-schema.org/draft-04/schema#",
    "http://json-schema.org/draft-06/schema#",
    "http://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft/2019-09/schema",
    "https://json-schema.org/draft/2020-12/schema",
    "http://127.0.0.1:9/unknown-meta-schema",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # past 64 bits: no JSON number for orjson
    | st.floats()  # NaN and infinities included
    | st.text(max_size=8)
)
finite_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
#: what Python callers can put in an event that JSON has no word for
hostile_scalars = (
    st.binary(max_size=3)
    | st.sets(st.integers(0, 3), max_size=2)
    | st.builds(object)
    | st.dates()
    | st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=10)
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
)
values = st.recursive(
    json_scalars | hostile_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(NAMES, children, max_size=4)
        | st.dictionaries(st.integers(0, 3) | st.none(), children, min_size=1, max_size=2)
    ),
    max_leaves=10,
)
#: mostly JSON, sometimes something else, to keep the valid share high
event_values = st.one_of(
    st.recursive(
        json_scalars,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(NAMES, c, max_size=4),
        max_leaves=10,
    ),
    values,
)


def _keyword_groups(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    def one(key: str, value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({key: value})

    small = st.integers(-1, 4)
    number = st.integers(-5, 5) | st.floats(-10, 10)
    return st.one_of(
        one("type", st.sampled_from(TYPES) | st.lists(st.sampled_from(TYPES), max_size=3)),
        one("enum", st.lists(finite_scalars, max_size=4)),
        one("const", finite_scalars),
        one("minLength", small),
        one("maxLength", small),
        one("pattern", st.sampled_from(PATTERNS)),
        one("format", st.sampled_from(["date-time", "email", "uri", "regex", "ipv4"])),
        one("minimum", number),
        one("maximum", number),
        one("exclusiveMinimum", number | st.booleans()),
        one("exclusiveMaximum", number | st.booleans()),
        one("multipleOf", st.sampled_from([0, -1, 0.1, 2, 1e-9, 3.5])),
        one("items", children | st.lists(children, max_size=3)),
        one("minItems", small),
        one("maxItems", small),
        one("uniqueItems", st.booleans()),
        one("contains", children),
        one("additionalItems", children),
        one("properties", st.dictionaries(NAMES, children, max_size=4)),
        one("required", st.lists(NAMES | st.integers(0, 2), max_size=3)),
        one("additionalProperties", children),
        one("patternProperties", st.dictionaries(st.sampled_from(PATTERNS), children, max_size=2)),
        one("propertyNames", children),
        one("minProperties", small),
        one("maxProperties", small),
        one(
            "dependencies",
            st.dictionaries(NAMES, st.lists(NAMES, max_size=2) | children, max_size=2),
        ),
        one("allOf", st.lists(children, max_size=3)),
        one("anyOf", st.lists(children, max_size=3)),
        one("oneOf", st.lists(children, max_size=3)),
        one("not", children),
        st.fixed_dictionaries({"if": children, "then": children, "else": children}),
        one("$ref", st.sampled_from(REFS)),
        # any keyword with any value: mostly metaschema violations
        st.dictionaries(
            st.sampled_from(["type", "items", "required", "properties", "enum", "minimum"]),
            values,
            min_size=1,
            max_size=1,
        ),
    )


def _merge(groups: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for group in groups:
        merged.update(group)
    return merged


subschemas = st.recursive(
    st.booleans() | st.just({}) | _keyword_groups(st.just({})),
    lambda children: st.lists(_keyword_groups(children), max_size=3).map(_merge) | st.booleans(),
    max_leaves=8,
)


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, Any]:
    """An event schema document: often sensible, often broken in one or two places."""
    doc = draw(st.lists(_keyword_groups(subschemas), max_size=3).map(_merge))
    if draw(st.booleans()):
        doc["type"] = "object"
        doc["properties"] = draw(st.dictionaries(NAMES | RESERVED, subschemas, max_size=5))
    if draw(st.booleans()):
        doc["definitions"] = {"a": draw(subschemas), "b": draw(subschemas)}
    if draw(st.integers(0, 4)) == 0:
        doc["$schema"] = draw(st.sampled_from(DIALECTS))
    doc["$id"], doc["version"] = FUZZ_ID, 1
    return doc


@st.composite
def events_for(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    properties = schema.get("properties")
    names = list(properties) if isinstance(properties, dict) and properties else ["a"]
    keys = st.sampled_from(names) | NAMES
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(values)  # not an object at all
    if kind == 1:
        return MappingProxyType(draw(st.dictionaries(keys, event_values, max_size=5)))
    if kind == 2:  # a capsule key
        return {**draw(st.dictionaries(keys, event_values, max_size=3)), draw(RESERVED): 1}
    return draw(st.dictionaries(keys, event_values, max_size=6))


def as_json(value: Any) -> Any:
    """``value`` as JSON gives it back: tuples become lists, nothing else changes.

    Except dates: orjson writes a ``datetime.date`` as its ISO string, and a
    schema that does not constrain the type lets one through.
    """
    if isinstance(value, Mapping):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# -- random events against random schemas ----------------------------------------


def test_random_events_against_random_schemas_write_one_whole_line_or_nothing(
    figures: Any,
) -> None:
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=400)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        schema = data.draw(schemas(), label="schema")
        streams = [io.StringIO(), io.StringIO()]
        exporter = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log = EventLog(
            handlers=[logging.StreamHandler(stream) for stream in streams],
            allowed_schemas=[FUZZ_ID],
            logger_provider=provider,
        )
        # No handler: its line, read only by the OTel sink, is not rendered by structlog.
        bare_exporter = InMemoryLogRecordExporter()
        bare_provider = LoggerProvider()
        bare_provider.add_log_record_processor(SimpleLogRecordProcessor(bare_exporter))
        bare = EventLog(allowed_schemas=[FUZZ_ID], logger_provider=bare_provider)
        try:
            try:
                log.register_schema(schema)
            except (jsonschema.SchemaError, ValueError):
                outcomes["schema refused"] += 1
                return
            outcomes["schema registered"] += 1
            bare.register_schema(schema)
            for event in data.draw(st.lists(events_for(schema), min_size=1, max_size=4)):
                written = [stream.getvalue() for stream in streams]
                exported = len(exporter.get_finished_logs())
                bare_exported = len(bare_exporter.get_finished_logs())
                try:
                    bare_capsule = bare.record_event(FUZZ_ID, 1, event)
                    bare_error = None
                except (jsonschema.ValidationError, ValueError, TypeError) as exc:
                    bare_error = type(exc)
                try:
                    capsule = log.record_event(FUZZ_ID, 1, event)
                except (jsonschema.ValidationError, ValueError, TypeError) as exc:
                    assert str(exc).strip(), "an error without a message"
                    assert log.flush(5)
                    assert [stream.getvalue() for stream in streams] == written, "partial write"
                    assert len(exporter.get_finished_logs()) == exported
                    assert bare_error is type(exc), "OTel alone decided otherwise"
                    assert bare.flush(5)
                    assert len(bare_exporter.get_finished_logs()) == bare_exported
                    outcomes[f"event refused: {type(exc).__name__}"] += 1
                    continue
                assert bare_error is None and bare_capsule is not None
                assert bare.flush(5)
                bare_record = bare_exporter.get_finished_logs()[-1]
                assert capsule is not None
                assert log.flush(5)
                for stream, before in zip(streams, written, strict=True):
                    new = stream.getvalue()[len(before) :]
                    assert new.endswith("\n") and new.count("\n") == 1, repr(new[:200])
                    line = orjson.loads(new)  # strict JSON: no NaN, no Infinity
                    assert line == as_json(capsule)
                payload = {k: v for k, v in line.items() if k not in CAPSULE_KEYS}
                assert payload == as_json(event), "the line does not say what the event said"
                [record] = exporter.get_finished_logs()[exported:]
                # in OTLP's documented form: ints beyond int64 as strings, deep values as JSON
                assert record.log_record.body == sanitise(payload)
                assert record.log_record.event_name == FUZZ_ID
                assert bare_record.log_record.body == record.log_record.body
                outcomes["event recorded"] += 1
        finally:
            log.shutdown(5)
            bare.shutdown(5)

    check()
    assert outcomes["event recorded"] > 50 and outcomes["schema refused"] > 10, outcomes
    figures(hypothesis_examples=outcomes["schema registered"] + outcomes["schema refused"],
            outcomes=dict(sorted(outcomes.items())))  # fmt: skip


# -- one validator: agreement with jsonschema, the reference implementation --------

#: plain JSON an encoder writes: no tuples, no NaN, 64-bit integers
plain_events = st.recursive(
    finite_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(NAMES, c, max_size=4),
    max_leaves=10,
)
#: where the two implementations differ on purpose (README: "One validator")
DOCUMENTED_DIFFERENCES = ("multipleOf", "pattern", "patternProperties")


def reference_verdict(document: dict[str, Any], event: Any) -> bool | None:
    """jsonschema's verdict (formats unchecked, as ours), or None if it cannot give one."""
    cls = jsonschema.validators.validator_for(document, default=jsonschema.Draft7Validator)
    try:
        return bool(cls(document).is_valid(event))
    except Exception:  # RecursionError on a $ref cycle, referencing errors, ...
        return None


def test_the_validator_agrees_with_the_reference_implementation(figures: Any) -> None:
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=400)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        document = data.draw(schemas(), label="schema")
        try:
            schema = compile_schema(document)
        except (jsonschema.SchemaError, ValueError):
            outcomes["schema refused"] += 1
            return
        for event in data.draw(st.lists(plain_events, min_size=1, max_size=4), label="events"):
            try:
                schema.validate(event)
                ours = True
            except EventValidationError as exc:
                assert str(exc).startswith(
                    f"event for schema {FUZZ_ID!r} version 1 is invalid at $"
                )
                ours = False
            reference = reference_verdict(document, event)
            if reference is None:
                outcomes["no reference verdict"] += 1
            elif reference == ours:
                outcomes["agree: valid" if ours else "agree: invalid"] += 1
            else:
                text = json.dumps(document)
                assert any(f'"{word}"' in text for word in DOCUMENTED_DIFFERENCES), (
                    f"ours {ours}, jsonschema {reference}"
                )
                outcomes["differ where documented"] += 1

    check()
    assert outcomes["agree: valid"] > 50 and outcomes["agree: invalid"] > 50, outcomes
    figures(outcomes=dict(sorted(outcomes.items())))


def decimal_value(number: float | int) -> Decimal:
    """The number as JSON text writes it; floats past 2**53 are integers, exactly."""
    if isinstance(number, float) and abs(number) < 2**53:
        return Decimal(repr(number))
    return Decimal(int(number))


@settings(FUZZ, max_examples=500)
@given(
    st.sampled_from(DIALECTS[:5]),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0.01, 0.1, 0.5, 2, 3, 1e-9, 0.3, 7e-5]) | st.floats(1e-300, 1e300),
)
def test_multiple_of_is_exact_on_the_number_as_written(
    dialect: str, number: float | int, divisor: float
) -> None:
    schema = compile_schema(
        {"$schema": dialect, "$id": FUZZ_ID, "version": 1, "multipleOf": divisor}
    )
    with localcontext(Context(prec=1000)):
        expected = decimal_value(number) % decimal_value(divisor) == 0
    try:
        schema.validate(number)
        assert expected, f"{number!r} is not a multiple of {divisor!r}"
    except EventValidationError:
        assert not expected, f"{number!r} is a multiple of {divisor!r}"


# -- random schema documents -------------------------------------------------------


yaml_only = st.dates() | st.binary(max_size=3) | st.sets(st.integers(0, 3), max_size=2)
documents = st.one_of(
    schemas(),
    # schema-shaped, with a value JSON has no word for (what YAML hands over) somewhere
    st.builds(
        lambda doc, where, value: {**doc, where: value},
        schemas(),
        st.sampled_from(["enum", "const", "default", "properties", "$schema", "title"]),
        yaml_only | st.lists(yaml_only, max_size=2) | st.dictionaries(st.integers(0, 2), st.just({}), min_size=1),
    ),
    # identity problems
    st.builds(
        lambda doc, schema_id, version: {**doc, "$id": schema_id, "version": version},
        schemas(),
        values,
        values,
    ),
    st.dictionaries(st.sampled_from(["$id", "version", "type", "properties"]), values, max_size=4),
    values,
)  # fmt: skip


def identity(document: Any) -> tuple[str, int | str] | None:
    """The ``($id, version)`` a document claims, when both are usable."""
    if not isinstance(document, Mapping):
        return None
    schema_id, version = document.get("$id"), document.get("version")
    if not isinstance(schema_id, str) or not schema_id:
        return None
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        return None
    return schema_id, version


def test_random_schema_documents_register_whole_or_not_at_all(figures: Any) -> None:
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=500)
    @given(documents)
    def check(document: Any) -> None:
        stream = io.StringIO()
        log = EventLog(handlers=[logging.StreamHandler(stream)])
        log.register_schema(SCHEMA)  # one schema already there, untouched by what follows
        before = dict(log.schemas)
        claimed = identity(document)
        try:
            log.register_schema(document)
        except (jsonschema.SchemaError, ValueError) as exc:
            assert str(exc).strip(), "an error without a message"
            assert dict(log.schemas) == before, "half registered"
            outcomes[f"refused: {type(exc).__name__}"] += 1
            if claimed is None or (claimed[0], str(claimed[1])) in {(i, str(v)) for i, v in before}:
                return
            # nothing of the refused document stayed behind: its identity is free
            try:
                log.register_schema({"$id": claimed[0], "version": claimed[1], "type": "object"})
            except (jsonschema.SchemaError, ValueError) as again:  # e.g. $id is no URI
                assert "already registered" not in str(again), "half registered"
                return
            log.allowed_schemas = [claimed[0]]
            assert log.record_event(claimed[0], claimed[1], {"ok": True}) is not None
            assert json.loads(stream.getvalue().splitlines()[-1])["ok"] is True
            return
        assert claimed is not None
        assert len(log.schemas) == len(before) + 1
        assert log.schemas[claimed] is not document  # a private copy
        outcomes["registered"] += 1

    check()
    assert outcomes["registered"] > 20, outcomes
    figures(hypothesis_examples=sum(outcomes.values()), outcomes=dict(sorted(outcomes.items())))


SCHEMA_FILES = (
    st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | st.sampled_from(
        [
            b"$id: a\nversion: 1\nproperties:\n  x: {enum: [2001-12-14]}\n",
            b"$id: a\nversion: 1\nproperties:\n  x: {const: !!binary aGVsbG8=}\n",
            b"$id: a\nversion: 1\nproperties:\n  1: {}\n",
            b"$id: a\nversion: 1\nproperties:\n  x: &a {items: *a}\n",
            b"$id: a\nversion: 1\nproperties: {x: {maximum: .nan}}\n",
            b"$id: a\nversion: 1\n$schema: [1]\n",
            b"$id: a\nversion: 1\nproperties: !!python/object:os.system {}\n",
            b"[" * 100_000,
            b"$id: a\nversion: 1\nproperties: {x: {type: string}}\n",
        ]
    )
)


def test_random_schema_files_load_or_fail_with_a_schema_error(figures: Any) -> None:
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=200)
    @given(SCHEMA_FILES)
    def check(data: bytes) -> None:
        log = EventLog(handlers=[logging.StreamHandler(io.StringIO())])
        try:
            log.register_schema_file(io.BytesIO(data))
        except (jsonschema.SchemaError, ValueError) as exc:
            assert str(exc).strip()
            assert dict(log.schemas) == {}
            outcomes[f"refused: {type(exc).__name__}"] += 1
        else:
            assert len(log.schemas) == 1
            outcomes["registered"] += 1

    check()
    figures(hypothesis_examples=sum(outcomes.values()), outcomes=dict(sorted(outcomes.items())))


# -- hostile references: nothing is ever fetched -------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 that records whether anyone connected."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def nobody_connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def test_refs_meta_schemas_and_ids_pointing_at_a_listening_socket_are_never_fetched(
    listener: socket.socket, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    stream = io.StringIO()
    log = EventLog(handlers=[logging.StreamHandler(stream)], allowed_schemas=[f"{base}/id.json"])
    refused = [
        {"properties": {"x": {"$ref": f"{base}/schema.json"}}},
        {"properties": {"x": {"$ref": f"{base}/schema.json#/definitions/a"}}},
        {"definitions": {"unused": {"$ref": f"{base}/unused.json"}}},
        {"properties": {"x": {"$ref": "relative.json"}}},  # relative to the $id below
        {"allOf": [{"$ref": f"{base}/all-of.json"}]},
    ]
    for extra in refused:
        with pytest.raises(ValueError, match="never fetched"):
            log.register_schema({"$id": f"{base}/id.json", "version": 1, **extra})
    # a remote $schema or $id is a name, not an address: registered, never fetched
    log.register_schema(
        {
            "$schema": f"{base}/meta-schema.json",
            "$id": f"{base}/id.json",
            "version": 1,
            "definitions": {"n": {"type": "integer"}},
            "properties": {"n": {"$ref": "#/definitions/n"}},
        }
    )
    log.record_event(f"{base}/id.json", 1, {"n": 1})
    with pytest.raises(jsonschema.ValidationError):
        log.record_event(f"{base}/id.json", 1, {"n": "one"})
    assert len(stream.getvalue().splitlines()) == 1
    assert nobody_connected(listener), "a reference was fetched"


def test_a_file_ref_is_never_opened(tmp_path: Path) -> None:
    # A FIFO with no writer: anything that opens it to read blocks for ever.
    fifo = tmp_path / "schema.json"
    os.mkfifo(fifo)
    log = EventLog(handlers=[logging.StreamHandler(io.StringIO())])
    outcome: list[BaseException | None] = []

    def register() -> None:
        try:
            log.register_schema(
                {"$id": SCHEMA_ID, "version": 1, "properties": {"x": {"$ref": fifo.as_uri()}}}
            )
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=register, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader so the thread can end
        with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb") as unblock:
            unblock.write(b"{}")
        pytest.fail("registration opened the file the $ref names")
    [error] = outcome
    assert isinstance(error, ValueError) and "never fetched" in str(error)


# -- deep and huge events ----------------------------------------------------------


def nested(depth: int, leaf: Any = 1) -> dict[str, Any]:
    event: Any = leaf
    for _ in range(depth):
        event = {"x": event}
    return event  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("depth", "outcome"),
    [(200, None), (300, TypeError), (100_000, TypeError)],
)
def test_deep_events_are_recorded_or_refused_quickly_without_a_crash(
    tmp_path: Path, depth: int, outcome: type[Exception] | None, figures: Any
) -> None:
    # An open schema: validation does not descend; the JSON encoder's depth limit (254) does.
    path = tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(handlers=[handler], allowed_schemas=[FUZZ_ID])
    log.register_schema({"$id": FUZZ_ID, "version": 1, "type": "object"})
    event = nested(depth)
    started = time.monotonic()
    if outcome is None:
        log.record_event(FUZZ_ID, 1, event)
    else:
        with pytest.raises(outcome, match="serialised"):
            log.record_event(FUZZ_ID, 1, event)
    seconds = time.monotonic() - started
    handler.close()
    assert len(read_lines(path)) == (1 if outcome is None else 0)
    assert seconds < 5, f"{seconds:.1f} s for one event nested {depth} deep"
    figures(depth=depth, outcome=outcome.__name__ if outcome else "recorded",
            seconds=round(seconds, 3))  # fmt: skip


@pytest.mark.parametrize("size", [900_000, 10_000_000, 100_000_000])
def test_huge_strings_are_recorded_or_refused_by_max_event_size_quickly(
    tmp_path: Path, size: int, figures: Any
) -> None:
    path = tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    event = {**EVENT, "user": "u" * size}
    started = time.monotonic()
    if size < log.max_event_size:
        log.record_event(SCHEMA_ID, 1, event)
    else:
        with pytest.raises(ValueError, match=r"more than max_event_size \(1000000\)"):
            log.record_event(SCHEMA_ID, 1, event)
    seconds = time.monotonic() - started
    handler.close()
    lines = read_lines(path)
    assert len(lines) == (1 if size < log.max_event_size else 0)
    assert seconds < 10, f"{seconds:.1f} s for one {size:,}-character event"
    figures(characters=size, written=len(lines), seconds=round(seconds, 3))


def test_nan_and_infinity_are_refused_not_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    log = EventLog(handlers=[handler], allowed_schemas=[FUZZ_ID])
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    otel_only = EventLog(allowed_schemas=[FUZZ_ID], logger_provider=provider)
    for each in (log, otel_only):
        each.register_schema({"$id": FUZZ_ID, "version": 1, "properties": {"x": {}}})
    for value in (math.nan, math.inf, -math.inf, [1.0, math.nan], {"y": math.inf}):
        for each in (log, otel_only):
            with pytest.raises(TypeError, match="NaN and Infinity"):
                each.record_event(FUZZ_ID, 1, {"x": value})
    assert otel_only.flush(5) and exporter.get_finished_logs() == ()
    log.record_event(FUZZ_ID, 1, {"x": None, "y": "null", "z": 1e308})  # null is fine
    handler.close()
    [line] = read_lines(path)
    assert (line["x"], line["y"], line["z"]) == (None, "null", 1e308)


@pytest.mark.parametrize(
    "document",
    [
        {"$id": FUZZ_ID, "version": 1, "not": nested(5_000, {})},  # past the recursion limit
        {"$id": FUZZ_ID, "version": 1, "properties": {"x": nested(5_000, {})}},
        {"$id": FUZZ_ID, "version": 1, "enum": [date(2001, 12, 14)]},
        {"$id": FUZZ_ID, "version": 1, "$schema": ["not", "a", "string"]},
        {"$id": FUZZ_ID, "version": 1, "properties": {"x": {"$ref": "#/definitions/none"}}},
        {"$id": FUZZ_ID, "version": 1, "properties": {"x": {"$ref": "#/version"}}},
        {
            "$id": FUZZ_ID,
            "version": 1,
            "$ref": "#/definitions/a/items",
            "definitions": {"a": False},
        },
        {"$id": FUZZ_ID, "version": 1, "allOf": [{}], "not": {"$ref": "#/allOf/x"}},
        {"$schema": DIALECTS[0], "$id": FUZZ_ID, "version": 1, "patternProperties": {"(": {}}},
        # Python's syntax, not ECMA-262's (which spells it "(?<n>a)")
        {"$schema": DIALECTS[0], "$id": FUZZ_ID, "version": 1, "pattern": "(?P<n>a)"},
    ],
    ids=[
        "deep",
        "deep-property",
        "date",
        "schema-list",
        "dangling-ref",
        "ref-to-int",
        "ref-through-a-boolean-schema",
        "ref-with-a-name-for-an-array-index",
        "draft4-pattern-properties",
        "draft4-pattern",
    ],
)
def test_schemas_that_would_break_recording_are_refused_at_registration(
    document: dict[str, Any],
) -> None:
    log = EventLog(handlers=[logging.StreamHandler(io.StringIO())], allowed_schemas=[FUZZ_ID])
    with pytest.raises((ValueError, jsonschema.SchemaError)):
        log.register_schema(document)
    assert dict(log.schemas) == {}


@pytest.mark.parametrize("dialect", DIALECTS[:3])  # "dependencies" ends with draft 7
def test_every_kind_of_subschema_still_registers_and_validates(dialect: str) -> None:
    stream = io.StringIO()
    log = EventLog(handlers=[logging.StreamHandler(stream)], allowed_schemas=[FUZZ_ID])
    log.register_schema(
        {
            "$schema": dialect,
            "$id": FUZZ_ID,
            "version": 1,
            "definitions": {"c": {"required": ["c"]}, "n": {"type": "integer"}},
            # dependencies: a schema, and an array of names (not a subschema)
            "dependencies": {"a": {"$ref": "#/definitions/c"}, "b": ["a"]},
            "patternProperties": {"^n": {"$ref": "#/definitions/n"}},
            "properties": {"s": {"type": "string", "pattern": "^[a-z]+$"}},
        }
    )
    log.record_event(FUZZ_ID, 1, {"a": 1, "b": 2, "c": 3, "n1": 4, "s": "abc"})
    for bad in ({"a": 1}, {"b": 1}, {"n1": "x"}, {"s": "ABC"}):
        with pytest.raises(jsonschema.ValidationError):
            log.record_event(FUZZ_ID, 1, bad)
    assert len(stream.getvalue().splitlines()) == 1


@pytest.fixture
def http_server() -> Iterator[Callable[[bytes], str]]:
    """Serve one body at a time over http on 127.0.0.1; returns a function giving its URL."""
    body: list[bytes] = [b""]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body[0])))
            self.end_headers()
            self.wfile.write(body[0])

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(data: bytes) -> str:
        body[0] = data
        return f"http://127.0.0.1:{httpd.server_address[1]}/schema.json"

    yield serve
    httpd.shutdown()
    httpd.server_close()


def test_a_deeply_nested_schema_document_from_a_url_or_file_is_a_load_error(
    http_server: Callable[[bytes], str], tmp_path: Path
) -> None:
    deep = b'{"$id": "x", "version": 1, "a": ' + b"[" * 200_000  # under 1 MiB
    log = EventLog(handlers=[logging.StreamHandler(io.StringIO())])
    with pytest.raises(SchemaLoadError, match="nested too deeply"):
        log.register_schema_url(http_server(deep))
    (tmp_path / "deep.json").write_bytes(deep)
    with pytest.raises(SchemaLoadError, match="nested too deeply"):
        log.register_schema_file(tmp_path / "deep.json")


# -- a 900,000-character event, end to end ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("char", ["x", "é", "\N{GRINNING FACE}"], ids=["ascii", "2-byte", "4-byte"])
def test_a_900_000_character_event_arrives_and_poisons_no_batch(
    tmp_path: Path, protocol: str, char: str, figures: Any
) -> None:
    collector = Collector(tmp_path / "collector")
    collector.start()
    try:
        service, path = f"big-{uuid.uuid4().hex[:8]}", tmp_path / "events.log"
        handler = logging.FileHandler(path, encoding="utf-8")
        log = EventLog(
            handlers=[handler],
            allowed_schemas=[SCHEMA_ID],
            otlp_endpoint=(
                collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
            ),
            otlp_protocol=protocol,
            service_name=service,
            otlp_max_queue_size=10_000,
            max_event_size=12_000_000,  # the line escapes each non-ASCII character as \uXXXX
        )
        log.register_schema(SCHEMA)
        medium = "m" * 2_000  # 420 of these fill most of one export request
        big = char * 900_000
        count = 0
        for user in [medium] * 420 + [big] + [medium] * 420:
            log.record_event(SCHEMA_ID, 1, {**EVENT, "user": user, "count": count})
            count += 1
        started = time.monotonic()
        delivered = log.flush(60)
        seconds = time.monotonic() - started
        log.shutdown(10)
        handler.close()
        assert delivered and log.otel_dropped == 0
        received = collector.wait_for_logs(count, timeout=60)
        assert sorted(r.body["count"] for r in received) == list(range(count))
        [giant] = [r for r in received if len(r.body["user"]) > 2_000]
        assert giant.body["user"] == big and giant.body["count"] == 420
        assert read_lines(path)[420]["user"] == big
    finally:
        collector.stop()
    figures(
        protocol=protocol,
        character=f"U+{ord(char):04X}",
        big_event_characters=900_000,
        big_event_utf8_bytes=len(big.encode()),
        offered=count,
        delivered=len(received),
        dropped=log.otel_dropped,
        flush_seconds=round(seconds, 2),
    )
