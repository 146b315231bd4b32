"""Schema registration: from dicts, files and URLs; metaschema and structure checks."""

from __future__ import annotations

import copy
import http.server
import json
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
    InvalidSchemaError,
    SchemaLoadError,
    SchemaRegistrationError,
)


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
