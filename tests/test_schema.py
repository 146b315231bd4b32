"""Schema registration: from dicts, files and URLs; metaschema and structure checks."""

from __future__ import annotations

import collections
import copy
import datetime
import decimal
import enum
import http.server
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import EVENT, SCHEMA, SCHEMA_ID, closed_port, read_lines

from jupyter_telemetry import (
    EventLog,
    EventSerializationError,
    EventValidationError,
    InvalidSchemaError,
    SchemaLoadError,
    SchemaRegistrationError,
)
from jupyter_telemetry._schema import compile_schema, parse_document


@pytest.fixture
def log(file_handler: Any) -> EventLog:
    return EventLog(handlers=[file_handler], allowed_schemas=[SCHEMA_ID])


def test_register_from_dict_copies_and_never_mutates(log: EventLog, events_file: Path) -> None:
    schema = copy.deepcopy(SCHEMA)
    before = copy.deepcopy(schema)
    log.register_schema(schema)
    assert schema == before
    schema["required"].append("user")  # later changes to the caller's dict have no effect
    log.record_event(SCHEMA_ID, 1, {"action": "open", "path": "/x"})
    assert len(read_lines(events_file)) == 1
    assert log.schemas[(SCHEMA_ID, 1)]["required"] == ["action", "path"]
    assert SCHEMA["required"] == ["action", "path"]


@pytest.mark.parametrize("form", ["path", "str", "text-file", "binary-file"])
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_register_schema_file(
    log: EventLog, events_file: Path, tmp_path: Path, form: str, fmt: str
) -> None:
    path = tmp_path / f"schema.{fmt}"
    path.write_text(json.dumps(SCHEMA) if fmt == "json" else yaml.safe_dump(SCHEMA))
    if form == "path":
        log.register_schema_file(path)
    elif form == "str":
        log.register_schema_file(str(path))
    else:
        with open(path, "r" if form == "text-file" else "rb") as handle:
            log.register_schema_file(handle)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert read_lines(events_file)[0]["action"] == "open"


def test_yaml_is_loaded_safely(log: EventLog, tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SchemaLoadError, match=r"evil\.yaml"):
        log.register_schema_file(path)


def test_unparseable_file_names_the_file(log: EventLog, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{ not: [valid")
    with pytest.raises(ValueError, match=r"broken\.json"):
        log.register_schema_file(path)


def test_missing_file_is_an_os_error(log: EventLog, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        log.register_schema_file(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (["$id"], "'$id'"),
        (["version"], "'version'"),
        (["$id", "version"], "'$id', 'version'"),
    ],
)
def test_id_and_version_are_required(log: EventLog, missing: list[str], message: str) -> None:
    schema = {k: v for k, v in SCHEMA.items() if k not in missing}
    with pytest.raises(ValueError) as info:
        log.register_schema(schema)
    assert str(info.value) == f"schema is missing required key(s): {message}"


@pytest.mark.parametrize("version", [True, 1.5, None, [1]])
def test_version_must_be_int_or_str(log: EventLog, version: Any) -> None:
    with pytest.raises(ValueError, match="version must be an int or a str"):
        log.register_schema({**SCHEMA, "version": version})


def test_invalid_schema_is_a_schema_error_naming_the_schema(log: EventLog) -> None:
    with pytest.raises(jsonschema.SchemaError) as info:
        log.register_schema({**SCHEMA, "properties": {"count": {"type": "integr"}}})
    assert isinstance(info.value, InvalidSchemaError)
    assert SCHEMA_ID in str(info.value)
    assert not log.schemas


@pytest.mark.parametrize(
    "properties",
    [
        {"__secret": {"type": "string"}},
        {"outer": {"type": "object", "properties": {"__inner": {"type": "string"}}}},
        {"list": {"type": "array", "items": {"type": "object", "properties": {"__x": {}}}}},
        {"a": {"anyOf": [{"type": "object", "properties": {"__y": {}}}]}},
    ],
)
def test_double_underscore_properties_are_rejected_at_every_level(
    log: EventLog, properties: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="reserved for the event capsule"):
        log.register_schema({**SCHEMA, "properties": properties})
    assert not log.schemas


def test_registering_the_same_id_and_version_twice_is_an_error(log: EventLog) -> None:
    log.register_schema(SCHEMA)
    with pytest.raises(SchemaRegistrationError, match="already registered"):
        log.register_schema(SCHEMA)
    with pytest.raises(ValueError, match="already registered"):
        log.register_schema({**SCHEMA, "version": "1"})


@pytest.mark.parametrize(
    "ref", ["http://127.0.0.1:{port}/schema.json", "file:///etc/passwd", "other.json#/defs/x"]
)
def test_refs_outside_the_document_are_refused_not_fetched(log: EventLog, ref: str) -> None:
    schema = {**SCHEMA, "properties": {"x": {"$ref": ref.format(port=closed_port())}}}
    with pytest.raises(ValueError, match="never fetched"):
        log.register_schema(schema)


def test_local_refs_are_followed(log: EventLog, events_file: Path) -> None:
    schema = {
        **SCHEMA,
        "definitions": {"positive": {"type": "integer", "minimum": 1}},
        "properties": {**SCHEMA["properties"], "count": {"$ref": "#/definitions/positive"}},
    }
    log.register_schema(schema)
    with pytest.raises(jsonschema.ValidationError, match=r"\$\.count"):
        log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 0})
    log.record_event(SCHEMA_ID, 1, {**EVENT, "count": 1})
    assert len(read_lines(events_file)) == 1


def test_draft_2020_12_schemas_are_honoured(log: EventLog, events_file: Path) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "version": 1,
        "type": "object",
        "properties": {
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}
        },
    }
    log.register_schema(schema)
    with pytest.raises(jsonschema.ValidationError, match=r"\$\.pair\[1\]"):
        log.record_event(SCHEMA_ID, 1, {"pair": ["a", "b"]})
    log.record_event(SCHEMA_ID, 1, {"pair": ["a", 1]})
    assert read_lines(events_file)[0]["pair"] == ["a", 1]


# -- URLs, against a real HTTP server on 127.0.0.1 ---------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes, float]] = {}

    def do_GET(self) -> None:
        status, body, delay = self.routes.get(self.path, (404, b"not found", 0.0))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if delay:  # a server that trickles its answer
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(delay)
        else:
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    _Handler.routes.clear()  # no route leaks into the next test


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_register_schema_url(log: EventLog, events_file: Path, server: str, fmt: str) -> None:
    body = json.dumps(SCHEMA) if fmt == "json" else yaml.safe_dump(SCHEMA)
    _Handler.routes[f"/schema.{fmt}"] = (200, body.encode(), 0.0)
    log.register_schema_url(f"{server}/schema.{fmt}")
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert len(read_lines(events_file)) == 1


def test_url_http_error_is_clear(log: EventLog, server: str) -> None:
    with pytest.raises(SchemaLoadError, match="HTTP 404"):
        log.register_schema_url(f"{server}/missing.json")


def test_url_unreachable_is_clear(log: EventLog) -> None:
    with pytest.raises(SchemaLoadError, match="failed"):
        log.register_schema_url(f"http://127.0.0.1:{closed_port()}/schema.json")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x.json", "data:,{}", "/etc/passwd"]
)
def test_url_must_be_http_or_https(log: EventLog, url: str) -> None:
    with pytest.raises(SchemaLoadError, match="must use http or https"):
        log.register_schema_url(url)


def test_url_size_limit(log: EventLog, server: str) -> None:
    log.schema_url_max_bytes = 1000
    _Handler.routes["/big.json"] = (200, json.dumps({**SCHEMA, "pad": "x" * 2000}).encode(), 0.0)
    with pytest.raises(SchemaLoadError, match="larger than 1000 bytes"):
        log.register_schema_url(f"{server}/big.json")


def test_url_timeout_bounds_a_trickling_server(log: EventLog, server: str) -> None:
    log.schema_url_timeout = 0.5
    _Handler.routes["/slow.json"] = (200, json.dumps(SCHEMA).encode(), 0.05)
    started = time.monotonic()
    # each byte comes within the per-read timeout: only the total deadline can stop it
    with pytest.raises(SchemaLoadError, match=r"longer than 0\.5 s"):
        log.register_schema_url(f"{server}/slow.json")
    assert time.monotonic() - started < 10.0  # the whole body would take ~27 s


def test_stored_schema_is_the_document_as_given(log: EventLog) -> None:
    schema = {
        **SCHEMA,
        "definitions": {"positive": {"type": "integer", "minimum": 1}},
        "properties": {**SCHEMA["properties"], "count": {"$ref": "#/definitions/positive"}},
    }
    log.register_schema(schema)
    assert log.schemas[(SCHEMA_ID, 1)] == schema  # no $ref rewritten by the compiler


# -- one validator: the same verdict, whatever the draft ----------------------------

DRAFTS = [
    "http://json-schema.org/draft-04/schema#",
    "http://json-schema.org/draft-06/schema#",
    "http://json-schema.org/draft-07/schema#",
    "https://json-schema.org/draft/2019-09/schema",
    "https://json-schema.org/draft/2020-12/schema",
    None,  # no $schema: Draft 7
]


def one_property(draft: str | None, subschema: dict[str, Any]) -> dict[str, Any]:
    schema = {"$id": SCHEMA_ID, "version": 1, "type": "object", "properties": {"x": subschema}}
    return schema if draft is None else {"$schema": draft, **schema}


def verdict(schema: dict[str, Any], value: Any, **options: Any) -> str:
    """``"valid"`` or the error's class and message, from the compiled validator."""
    try:
        compile_schema(schema, **options).validate({"x": value})
    except (jsonschema.ValidationError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "valid"


# (subschema, value, valid?): JSON Schema's semantics, decided once for every draft
SEMANTICS = [
    # multipleOf is exact on the number as written: 19.99 is 1999 hundredths
    ({"multipleOf": 0.01}, 19.99, True),
    ({"multipleOf": 0.01}, 4.35, True),
    ({"multipleOf": 0.1}, 0.3, True),
    ({"multipleOf": 0.1}, 0.1 + 0.2, False),  # 0.30000000000000004
    ({"multipleOf": 0.01}, 1e300, True),
    ({"multipleOf": 3}, 2**53 + 2, False),
    ({"maximum": 2**63}, 2**63 + 1, False),  # 64-bit integers, exactly
    # ECMA-262 patterns: $ is the end of the text, \d and \w are ASCII, \p{..} works
    ({"pattern": "^a$"}, "a\n", False),
    ({"pattern": "^a$"}, "a", True),
    ({"pattern": r"^\d+$"}, "١٢", False),  # Arabic-Indic digits
    ({"pattern": r"^\w$"}, "é", False),
    ({"pattern": r"^\p{L}+$"}, "héllo", True),
    ({"pattern": "^.$"}, "\U0001f600", True),  # one code point, not two
    ({"pattern": "^.$"}, "\r", False),
    ({"pattern": "(?<n>a)b"}, "xab", True),
    # a tuple is an array, as it is written
    ({"type": "array", "items": {"type": "string"}}, ("a", "b"), True),
    ({"type": "array", "items": {"type": "string"}}, ("a", 1), False),
    # bool is not a number; 1.0 is an integer
    ({"type": "integer"}, True, False),
    ({"type": "number"}, False, False),
]


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize(("subschema", "value", "valid"), SEMANTICS)
def test_one_semantics_for_every_draft(
    draft: str | None, subschema: dict[str, Any], value: Any, valid: bool
) -> None:
    outcome = verdict(one_property(draft, subschema), value)
    if valid:
        assert outcome == "valid"
    else:
        assert outcome.startswith("EventValidationError: "), outcome
        assert "is invalid at $.x" in outcome or "is invalid at $.x[1]" in outcome


def test_an_integral_float_is_an_integer_from_draft_6_on() -> None:
    assert verdict(one_property(DRAFTS[2], {"type": "integer"}), 1.0) == "valid"


@pytest.mark.parametrize("draft", DRAFTS)
def test_the_message_is_ours_with_json_path_and_validator(draft: str | None) -> None:
    schema = one_property(draft, {"type": "object", "properties": {"name": {"pattern": "^a"}}})
    with pytest.raises(EventValidationError) as info:
        compile_schema(schema).validate({"x": {"name": "b"}})
    error = info.value
    assert str(error) == (
        f'event for schema {SCHEMA_ID!r} version 1 is invalid at $.x.name: "b" does not match "^a"'
    )
    assert (error.json_path, list(error.path), error.validator) == (
        "$.x.name",
        ["x", "name"],
        "pattern",
    )
    assert (error.instance, error.validator_value, error.schema) == ("b", "^a", {"pattern": "^a"})
    assert (error.schema_id, error.version) == (SCHEMA_ID, 1)


def test_an_error_through_a_ref_names_the_event_path() -> None:
    schema = {
        **SCHEMA,
        "definitions": {"count": {"type": "integer", "minimum": 0}},
        "properties": {"c": {"type": "array", "items": {"$ref": "#/definitions/count"}}},
    }
    with pytest.raises(EventValidationError) as info:
        compile_schema(schema).validate({**EVENT, "c": [1, -1]})
    assert str(info.value).endswith("is invalid at $.c[1]: -1 is less than the minimum of 0")
    assert info.value.validator_value == 0 and info.value.instance == -1


class Text(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    ("subschema", "value"),
    [
        ({"type": "string", "pattern": "^a"}, Text("abc")),
        ({"type": "integer", "minimum": 2}, Count(3)),
        ({"type": "number", "maximum": 1}, Ratio(0.5)),  # numpy.float64 is one of these
        ({"enum": ["red"]}, Colour.RED),
        ({"const": 3}, Level.HIGH),
        ({"type": "object", "required": ["a"]}, collections.OrderedDict(a=1)),
        ({"type": "array", "uniqueItems": True}, collections.UserList([1, 2]).data),
    ],
)
def test_subclasses_of_json_types_validate_as_their_value(
    subschema: dict[str, Any], value: Any
) -> None:
    assert verdict(one_property(None, subschema), value) == "valid"
    assert verdict(one_property(None, {"not": subschema}), value).startswith("EventValidationError")


@pytest.mark.parametrize(
    ("subschema", "value", "found"),
    [
        ({"patternProperties": {"^a": {"type": "string"}}}, {1: "a"}, "key 1 is of type int"),
        ({"propertyNames": {"maxLength": 3}}, {None: 1}, "key None is of type NoneType"),
        ({"uniqueItems": True}, [{1, 2}, {1, 2}], "(of type set) is not JSON data"),
        ({"type": "array"}, {1, 2}, "(of type set) is not JSON data"),
        ({"type": "number", "multipleOf": 0.01}, math.inf, "inf: NaN and Infinity are not JSON"),
        ({"type": "number"}, -math.inf, "-inf: NaN and Infinity"),
        ({"multipleOf": 0.01}, 10**400, "does not fit a JSON line's 64-bit integers"),
        ({"maximum": 2**70}, 2**64, "does not fit a JSON line's 64-bit integers"),
        ({"type": "string", "minLength": 1}, datetime.date(2020, 1, 1), "(of type date)"),
        ({"maxLength": 3}, "\ud800", "lone surrogate"),
        ({"type": "number"}, decimal.Decimal("NaN"), "(of type Decimal)"),
    ],
)
def test_values_json_cannot_hold_are_a_serialisation_error(
    subschema: dict[str, Any], value: Any, found: str
) -> None:
    outcome = verdict(one_property(None, subschema), value)
    assert outcome.startswith("EventSerializationError: "), outcome
    assert "cannot be serialised to JSON at $.x" in outcome and found in outcome


@pytest.mark.parametrize(
    ("subschema", "value"),
    [
        ({"patternProperties": {"^a": {"type": "string"}}}, {1: "a"}),
        ({"uniqueItems": True}, [{1, 2}, {1, 2}]),
        ({"multipleOf": 0.01}, math.inf),  # the validator reads it as null: the renderer refuses
        ({"multipleOf": 2}, math.nan),
        ({"multipleOf": 0.5}, 10**400),
        ({"minimum": 0}, 2**64),
    ],
)
def test_record_event_refuses_them_with_a_documented_error_before_any_sink(
    log: EventLog, events_file: Path, subschema: dict[str, Any], value: Any
) -> None:
    log.register_schema(one_property(None, subschema))
    with pytest.raises(EventSerializationError, match="serialised"):
        log.record_event(SCHEMA_ID, 1, {"x": value})
    log.record_event(SCHEMA_ID, 1, {})
    assert len(read_lines(events_file)) == 1


@pytest.mark.parametrize("draft", DRAFTS)
def test_format_is_an_annotation_unless_asked_for(draft: str | None) -> None:
    schema = one_property(draft, {"type": "string", "format": "date-time"})
    assert verdict(schema, "yesterday") == "valid"  # as in 0.1.0
    assert verdict(schema, "yesterday", formats=True).startswith("EventValidationError")
    assert verdict(schema, "2024-02-29T12:00:00Z", formats=True) == "valid"
    assert verdict(one_property(draft, {"format": "no-such-format"}), "x", formats=True) == "valid"


def test_a_recursive_schema_refuses_events_too_deep_to_write_without_a_crash(
    log: EventLog, events_file: Path
) -> None:
    tree = {"$id": SCHEMA_ID, "version": 1, "properties": {"x": {"$ref": "#"}}}
    log.register_schema(tree)

    def nested(depth: int) -> dict[str, Any]:
        event: dict[str, Any] = {}
        for _ in range(depth - 1):
            event = {"x": event}
        return event

    log.record_event(SCHEMA_ID, 1, nested(254))
    for depth in (255, 100_000):  # the validator recurses natively: it must not be reached
        with pytest.raises(EventSerializationError, match="nested more than 254 levels"):
            log.record_event(SCHEMA_ID, 1, nested(depth))
    assert len(read_lines(events_file)) == 1


def test_a_deep_recursive_schema_validates_shallower_events_in_a_small_thread() -> None:
    inner: dict[str, Any] = {"$ref": "#"}
    for _ in range(50):
        inner = {"allOf": [inner]}
    schema = compile_schema({"$id": SCHEMA_ID, "version": 1, "properties": {"x": inner}})
    shallow: dict[str, Any] = {}
    for _ in range(5):
        shallow = {"x": shallow}
    event: dict[str, Any] = {}
    for _ in range(200):  # JSON can hold it; this schema cannot check it on a small stack
        event = {"x": event}
    outcome: list[BaseException | None] = []

    def check() -> None:
        try:
            schema.validate(shallow)
            schema.validate(event)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    threading.stack_size(512 * 1024)  # macOS' default for threads
    try:
        thread = threading.Thread(target=check)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(0)
    [error] = outcome
    assert isinstance(error, EventValidationError) and "nested too deeply" in str(error)


# -- registration ----------------------------------------------------------------------


def test_the_metaschema_is_checked_before_id_and_version_as_in_0_1_0() -> None:
    with pytest.raises(jsonschema.SchemaError) as info:
        compile_schema({"type": "objekt"})
    assert isinstance(info.value, InvalidSchemaError)
    assert "is not a valid JSON Schema at $.type" in str(info.value)


@pytest.mark.parametrize(
    "pattern",
    ["(", "(?P<n>a)", r"\Z", "a{2,1}"],
    ids=["unclosed", "python-only", "python-z", "range"],
)
@pytest.mark.parametrize("draft", DRAFTS)
def test_patterns_that_are_not_ecma_262_are_invalid_schemas(
    draft: str | None, pattern: str
) -> None:
    for subschema in ({"pattern": pattern}, {"patternProperties": {pattern: {}}}):
        with pytest.raises(InvalidSchemaError):
            compile_schema(one_property(draft, subschema))


@pytest.mark.parametrize(
    ("draft", "keyword", "ref"),
    [
        (DRAFTS[4], "$dynamicRef", "http://127.0.0.1:{port}/meta.json#meta"),
        (DRAFTS[4], "$ref", "http://127.0.0.1:{port}/x.json"),
        (DRAFTS[3], "$recursiveRef", "http://127.0.0.1:{port}/x.json"),
        (DRAFTS[3], "$ref", "other.json#/x"),
        (DRAFTS[0], "$ref", "http://127.0.0.1:{port}/x.json"),
    ],
)
def test_every_reference_that_leaves_the_document_is_refused_at_registration(
    draft: str, keyword: str, ref: str
) -> None:
    schema = one_property(draft, {keyword: ref.format(port=closed_port())})
    with pytest.raises(SchemaRegistrationError, match=rf"{re.escape(keyword)} to .* never fetched"):
        compile_schema(schema)


def test_local_dynamic_and_recursive_refs_work() -> None:
    dynamic = {
        "$schema": DRAFTS[4], "$id": SCHEMA_ID, "version": 1, "$dynamicAnchor": "node",
        "type": "object", "properties": {"kids": {"type": "array", "items": {"$dynamicRef": "#node"}}},
    }  # fmt: skip
    recursive = {
        "$schema": DRAFTS[3], "$id": SCHEMA_ID, "version": 1, "$recursiveAnchor": True,
        "type": "object", "properties": {"kids": {"type": "array", "items": {"$recursiveRef": "#"}}},
    }  # fmt: skip
    for document in (dynamic, recursive):
        schema = compile_schema(document)
        schema.validate({"kids": [{"kids": []}, {}]})
        with pytest.raises(EventValidationError, match=r"at \$\.kids\[0\]\.kids\[0\]: 1 is not"):
            schema.validate({"kids": [{"kids": [1]}]})


@pytest.mark.parametrize(
    "ref",
    ["#/definitions/none", "#nowhere", "#/definitions/a/items"],
    ids=["pointer", "anchor", "through-false"],
)
def test_a_dangling_local_ref_is_refused_even_where_unused(ref: str) -> None:
    schema = {**SCHEMA, "definitions": {"a": False, "unused": {"$ref": ref}}}
    with pytest.raises(SchemaRegistrationError, match="points to nothing"):
        compile_schema(schema)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("version", "\ud800"),
        ("$id", "http://x/\udfff"),
        ("version", 2**64),
        ("version", -(2**63) - 1),
    ],
)
def test_an_identity_that_cannot_be_written_is_refused_at_registration(
    log: EventLog, key: str, value: Any
) -> None:
    with pytest.raises(SchemaRegistrationError, match="JSON line"):
        log.register_schema({**SCHEMA, key: value})
    assert not log.schemas


def big_schema(properties: int) -> dict[str, Any]:
    """A schema of ``17 * properties + 5`` nodes, references and categories included."""
    return {
        "$id": SCHEMA_ID,
        "version": 1,
        "type": "object",
        "definitions": {"n": {"type": "integer", "minimum": 0}},
        "properties": {
            f"p{i}": {
                "type": "object",
                "properties": {
                    "s": {"type": "string", "maxLength": 10, "pattern": "^a"},
                    "n": {"$ref": "#/definitions/n", "categories": ["user_identifier"]},
                    "e": {"enum": ["a", "b", "c"]},
                },
            }
            for i in range(properties)
        },
    }


def nodes(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(nodes(v) for v in value)
    return 1


def test_a_20_000_node_schema_registers_quickly(log: EventLog, events_file: Path) -> None:
    document = big_schema(1_300)
    deep = document["properties"]["deep"] = {}
    for _ in range(60):  # too deep for code generation (an IndentationError in the past)
        deep["type"], deep["properties"] = "object", {"a": {"type": "string"}, "n": {}}
        deep = deep["properties"]["n"]
    assert nodes(document) > 20_000
    started = time.monotonic()
    log.register_schema(document)
    assert time.monotonic() - started < 5  # a hang guard: ~0.3 s here
    log.record_event(SCHEMA_ID, 1, {"p7": {"s": "abc", "n": 1, "e": "a"}})
    with pytest.raises(EventValidationError, match=r"\$\.p1199\.n: -1 is less than"):
        log.record_event(SCHEMA_ID, 1, {"p1199": {"n": -1}})
    assert len(read_lines(events_file)) == 1


def alias_bomb(levels: int) -> bytes:
    lines = [
        "$id: http://event.jupyter.org/test",
        "version: 1",
        'x-a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for level in range(1, levels):
        lines.append(f"x-a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("levels", [6, 9], ids=["half-a-million", "the-issue's-bomb"])
def test_yaml_aliases_cannot_multiply_the_document(
    log: EventLog, tmp_path: Path, levels: int
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_bytes(alias_bomb(levels))
    started = time.monotonic()
    with pytest.raises(SchemaLoadError, match=r"bomb\.yaml: YAML aliases expand the document"):
        log.register_schema_file(path)
    assert time.monotonic() - started < 5  # a hang guard
    with pytest.raises(SchemaLoadError, match="YAML aliases"):
        parse_document(alias_bomb(levels), "bomb")
    assert not log.schemas


def test_yaml_aliases_that_only_share_are_fine(log: EventLog, events_file: Path) -> None:
    text = (
        "$id: http://event.jupyter.org/test\nversion: 1\ntype: object\n"
        "properties:\n  a: &path {type: string, pattern: '^/'}\n  b: *path\n"
    )
    log.register_schema(parse_document(text, "shared.yaml"))
    log.record_event(SCHEMA_ID, 1, {"a": "/x", "b": "/y"})
    with pytest.raises(EventValidationError, match=r"\$\.b"):
        log.record_event(SCHEMA_ID, 1, {"b": "y"})
    assert len(read_lines(events_file)) == 1


def test_a_yaml_alias_into_itself_is_a_load_error() -> None:
    with pytest.raises(SchemaLoadError, match="refers to a node that contains it"):
        parse_document("$id: a\nversion: 1\nproperties:\n  x: &a {items: *a}\n", "loop.yaml")


@pytest.mark.parametrize("draft", DRAFTS)
def test_no_other_validator_s_message_leaks_out(draft: str | None) -> None:
    # 0.1.0-era code generation said "data.x must match pattern ^a$" at "$['x']"
    outcome = verdict(one_property(draft, {"pattern": "^a$"}), "a\n")
    assert outcome == (
        f"EventValidationError: event for schema {SCHEMA_ID!r} version 1 is invalid at $.x: "
        '"a\\n" does not match "^a$"'
    )


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize("schema_id", ["my event", "événement", "urn:x", "a\\b"])
def test_the_id_is_a_name_not_a_uri_as_in_0_1_0(
    draft: str | None, schema_id: str, file_handler: Any, events_file: Path
) -> None:
    log = EventLog(handlers=[file_handler], allowed_schemas=[schema_id])
    log.register_schema(
        {
            **one_property(draft, {"$ref": "#/definitions/n"}),
            "$id": schema_id,
            "definitions": {"n": {"type": "integer"}},
        }
    )
    log.record_event(schema_id, 1, {"x": 1})
    with pytest.raises(EventValidationError, match=r"\$\.x: \"one\" is not of type"):
        log.record_event(schema_id, 1, {"x": "one"})
    assert read_lines(events_file)[0]["__schema__"] == schema_id


@pytest.mark.parametrize("dialect", ["my dialect", "é", "http://127.0.0.1:9/unknown"])
def test_an_unknown_schema_dialect_is_read_as_draft_7(dialect: str) -> None:
    schema = {**one_property(None, {"type": "integer"}), "$schema": dialect}
    assert verdict(schema, 1) == "valid"
    assert verdict(schema, "one").startswith("EventValidationError")
