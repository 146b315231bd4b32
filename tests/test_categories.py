"""Personal-data categories: what each allow policy records, in every sink.

Each case records one event through a real ``logging.FileHandler``, a real
OTLP collector (the ``collector`` fixture) and, with ``span_events=True``,
the application's own in-process tracer; every sink must show exactly the
expected, redacted event.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import EVENT, SCHEMA, SCHEMA_ID, load_config, read_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from traitlets import TraitError
from traitlets.config import Config

from jupyter_telemetry import EventLog, SchemaRegistrationError
from jupyter_telemetry import eventlog as eventlog_module
from jupyter_telemetry._capsule import CAPSULE_KEYS
from jupyter_telemetry.sinks.otel import PAYLOAD

SID = "https://events.example.org/personal-data"
UID, UII, TS = "user-identifier", "user-identifiable-information", "action-timestamp"


def schema(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"$id": SID, "version": 1, "type": "object", "properties": properties, **extra}


ACTION = {"type": "string", "categories": ["unrestricted"]}

FLAT = schema(
    {
        "action": ACTION,
        "user": {"type": "string", "categories": [UID]},
        "email": {"type": "string", "categories": [UII]},
        "at": {"type": "string", "categories": [TS]},
        "note": {"type": "string"},
    }
)
FLAT_EVENT = {
    "action": "open",
    "user": "ada",
    "email": "ada@example.org",
    "at": "2024-05-01T10:00:00Z",
    "note": "no categories",
    "extra": "undeclared",
}

NESTED = schema(
    {
        "action": ACTION,
        "user": {
            "type": "object",
            "categories": [UID],
            "properties": {
                "name": {"type": "string"},
                "email": {"type": "string", "categories": [UII]},
                "prefs": {"type": "object", "properties": {"theme": ACTION}},
            },
        },
    }
)
NESTED_EVENT = {
    "action": "open",
    "user": {"name": "Ada", "email": "ada@example.org", "prefs": {"theme": "dark"}},
}

SESSION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "ip": {"type": "string", "categories": [UII]},
        "started": {"type": "string", "categories": [TS]},
    },
}
ARRAY = schema(
    {"action": ACTION, "sessions": {"type": "array", "categories": [UID], "items": SESSION}}
)
ARRAY_EVENT = {
    "action": "open",
    "sessions": [
        {"id": "s1", "ip": "10.0.0.1", "started": "t1"},
        {"id": "s2", "ip": "10.0.0.2", "started": "t2"},
    ],
}

PERSON = {
    "type": "object",
    "categories": [UID],
    "properties": {"name": {"type": "string"}, "email": {"type": "string", "categories": [UII]}},
}
REF = schema(
    {
        "action": ACTION,
        "owner": {"$ref": "#/$defs/person"},
        "editors": {
            "type": "array",
            "categories": ["unrestricted"],
            "items": {"$ref": "#/definitions/person"},
        },
    },
    definitions={"person": PERSON},
    **{"$defs": {"person": PERSON}},
)
REF_EVENT = {
    "action": "open",
    "owner": {"name": "Ada", "email": "ada@example.org"},
    "editors": [{"name": "Bob", "email": "bob@example.org"}],
}

ALLOF = schema(
    {
        "action": ACTION,
        "user": {
            "allOf": [
                {"categories": [UID]},
                {"properties": {"email": {"type": "string", "categories": [UII]}}},
                {"properties": {"name": {"type": "string"}}},
            ]
        },
    },
    allOf=[{"properties": {"at": {"type": "string", "categories": [TS]}}}],
)
ALLOF_EVENT = {
    "action": "open",
    "user": {"name": "Ada", "email": "ada@example.org"},
    "at": "2024-05-01T10:00:00Z",
}


def policy(categories: list[str] | None = None, properties: list[str] | None = None) -> Any:
    options: dict[str, list[str]] = {}
    if categories is not None:
        options["allowed_categories"] = categories
    if properties is not None:
        options["allowed_properties"] = properties
    return {SID: options}


# (schema, event, {policy name: (allowed_schemas, expected event as recorded)})
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, tuple[Any, dict[str, Any]]]]] = {
    "flat": (
        FLAT,
        FLAT_EVENT,
        {
            "list": ([SID], {**dict.fromkeys(FLAT_EVENT), "action": "open"}),
            "none": (policy(), {**dict.fromkeys(FLAT_EVENT), "action": "open"}),
            "categories": (
                policy([UID, TS]),
                {
                    **dict.fromkeys(FLAT_EVENT),
                    "action": "open",
                    "user": "ada",
                    "at": FLAT_EVENT["at"],
                },
            ),
            "properties": (
                policy(properties=["email", "note"]),
                {
                    **dict.fromkeys(FLAT_EVENT),
                    "action": "open",
                    "email": "ada@example.org",
                    "note": "no categories",
                },
            ),
            "both": (
                policy([UID], ["extra"]),
                {
                    **dict.fromkeys(FLAT_EVENT),
                    "action": "open",
                    "user": "ada",
                    "extra": "undeclared",
                },
            ),
        },
    ),
    "nested": (
        NESTED,
        NESTED_EVENT,
        {
            "list": ([SID], {"action": "open", "user": None}),
            "none": (policy(), {"action": "open", "user": None}),
            "categories": (
                policy([UID, TS]),
                {
                    "action": "open",
                    "user": {"name": "Ada", "email": None, "prefs": {"theme": "dark"}},
                },
            ),
            "properties": (
                policy(properties=["user.email"]),
                {
                    "action": "open",
                    "user": {"name": None, "email": "ada@example.org", "prefs": None},
                },
            ),
            "both": (
                policy([UII], ["user.prefs"]),
                {
                    "action": "open",
                    "user": {"name": None, "email": None, "prefs": {"theme": "dark"}},
                },
            ),
        },
    ),
    "array": (
        ARRAY,
        ARRAY_EVENT,
        {
            "list": ([SID], {"action": "open", "sessions": None}),
            "none": (policy(), {"action": "open", "sessions": None}),
            "categories": (
                policy([UID, TS]),
                {
                    "action": "open",
                    "sessions": [
                        {"id": "s1", "ip": None, "started": "t1"},
                        {"id": "s2", "ip": None, "started": "t2"},
                    ],
                },
            ),
            "properties": (
                policy(properties=["sessions.ip"]),
                {
                    "action": "open",
                    "sessions": [
                        {"id": None, "ip": "10.0.0.1", "started": None},
                        {"id": None, "ip": "10.0.0.2", "started": None},
                    ],
                },
            ),
            "both": (
                policy([UID], ["sessions.ip"]),
                {
                    "action": "open",
                    "sessions": [
                        {"id": "s1", "ip": "10.0.0.1", "started": None},
                        {"id": "s2", "ip": "10.0.0.2", "started": None},
                    ],
                },
            ),
        },
    ),
    "ref": (
        REF,
        REF_EVENT,
        {
            "list": ([SID], {"action": "open", "owner": None, "editors": [None]}),
            "none": (policy(), {"action": "open", "owner": None, "editors": [None]}),
            "categories": (
                policy([UID, TS]),
                {
                    "action": "open",
                    "owner": {"name": "Ada", "email": None},
                    "editors": [{"name": "Bob", "email": None}],
                },
            ),
            "properties": (
                policy(properties=["owner"]),
                {"action": "open", "owner": REF_EVENT["owner"], "editors": [None]},
            ),
            "both": (
                policy([UID], ["editors.email"]),
                {
                    "action": "open",
                    "owner": {"name": "Ada", "email": None},
                    "editors": [{"name": "Bob", "email": "bob@example.org"}],
                },
            ),
        },
    ),
    "allOf": (
        ALLOF,
        ALLOF_EVENT,
        {
            "list": ([SID], {"action": "open", "user": None, "at": None}),
            "none": (policy(), {"action": "open", "user": None, "at": None}),
            "categories": (
                policy([UID, TS]),
                {"action": "open", "user": {"name": "Ada", "email": None}, "at": ALLOF_EVENT["at"]},
            ),
            "properties": (
                policy(properties=["user.email"]),
                {"action": "open", "user": {"name": None, "email": "ada@example.org"}, "at": None},
            ),
            "both": (
                policy([UII], ["at"]),
                {"action": "open", "user": None, "at": ALLOF_EVENT["at"]},
            ),
        },
    ),
}

MATRIX = [
    pytest.param(name, policy_name, id=f"{name}-{policy_name}")
    for name, (_, _, policies) in CASES.items()
    for policy_name in policies
]


def payload(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in CAPSULE_KEYS}


def in_memory_tracer() -> tuple[Any, InMemorySpanExporter]:
    """The application's own tracer (not the global one), exporting to memory."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider.get_tracer("app"), spans


def test_the_cases_tell_the_policies_apart() -> None:
    for name, (_, event, policies) in CASES.items():
        expected = [json.dumps(e, sort_keys=True) for p, (_, e) in policies.items() if p != "none"]
        assert len(set(expected)) == len(expected), name
        assert all(e != event for _, e in policies.values()), name


@pytest.mark.parametrize(("case", "policy_name"), MATRIX)
def test_policy_matrix_in_every_sink(
    case: str,
    policy_name: str,
    collector: Any,
    file_handler: logging.FileHandler,
    events_file: Path,
) -> None:
    document, event, policies = CASES[case]
    allowed, expected = policies[policy_name]
    service = f"categories-{case}-{policy_name}-{uuid.uuid4().hex[:8]}"
    tracer, spans = in_memory_tracer()
    before = copy.deepcopy((event, allowed))
    log = EventLog(
        handlers=[file_handler],
        allowed_schemas=allowed,
        otlp_endpoint=collector.grpc_endpoint,
        service_name=service,
        span_events=True,
    )
    log.register_schema(document)
    with tracer.start_as_current_span("request"):
        capsule = log.record_event(SID, 1, event)
    assert log.flush(5)
    log.shutdown(5)

    assert capsule is not None and payload(capsule) == expected
    assert [payload(line) for line in read_lines(events_file)] == [expected]
    (record,) = collector.wait_for_logs(
        1, predicate=lambda r: r.resource.get("service.name") == service
    )
    assert record.body == expected
    (span,) = spans.get_finished_spans()
    (span_event,) = span.events
    assert json.loads(span_event.attributes[PAYLOAD]) == expected
    assert (event, allowed) == before


# -- schemas without categories: exactly 0.1.0 ---------------------------------


@pytest.mark.parametrize(
    "allowed",
    [[SCHEMA_ID], {SCHEMA_ID: {}}, {SCHEMA_ID: {"allowed_categories": [UID]}}],
    ids=["list", "dict-empty", "dict-categories"],
)
def test_schema_without_categories_records_every_property(
    allowed: Any, file_handler: logging.FileHandler, events_file: Path
) -> None:
    log = EventLog(handlers=[file_handler], allowed_schemas=allowed)
    log.register_schema(SCHEMA)
    assert log._routes[(SCHEMA_ID, "1")].redact is None  # no per-event cost at all
    log.record_event(SCHEMA_ID, 1, {**EVENT, "undeclared": "kept"})
    assert payload(read_lines(events_file)[0]) == {**EVENT, "undeclared": "kept"}


def test_one_category_anywhere_switches_the_list_form_to_unrestricted_only(
    file_handler: logging.FileHandler, events_file: Path
) -> None:
    document = copy.deepcopy(SCHEMA)
    document["properties"]["action"]["categories"] = ["unrestricted"]
    log = EventLog(handlers=[file_handler], allowed_schemas=[SCHEMA_ID])
    log.register_schema(document)
    log.record_event(SCHEMA_ID, 1, EVENT)
    assert payload(read_lines(events_file)[0]) == {**dict.fromkeys(EVENT), "action": "open"}


# -- edge cases of the rules ---------------------------------------------------


def record_one(document: dict[str, Any], allowed: Any, event: dict[str, Any]) -> dict[str, Any]:
    stream = io.StringIO()
    log = EventLog(handlers=[logging.StreamHandler(stream)], allowed_schemas=allowed)
    log.register_schema(document)
    log.record_event(SID, 1, event)
    return payload(json.loads(stream.getvalue()))


@pytest.mark.parametrize(
    ("allowed", "value", "expected"),
    [
        (policy([UID]), "ada", "ada"),  # a string where an object may be: recorded whole
        (policy(), "ada", None),
        (policy(properties=["user.email"]), "ada", None),  # an opened container is not its value
        (policy(properties=["user.email"]), None, None),
        (policy(properties=["user.email"]), {"email": "e", "id": "i"}, {"email": "e", "id": None}),
    ],
)
def test_values_of_another_type_follow_the_decision_of_their_property(
    allowed: Any, value: Any, expected: Any
) -> None:
    document = schema(
        {
            "user": {
                "type": ["object", "string", "null"],
                "categories": [UID],
                "properties": {"email": {"type": "string", "categories": [UII]}},
            }
        }
    )
    assert record_one(document, allowed, {"user": value}) == {"user": expected}


def test_named_path_into_an_undeclared_nested_key_is_recorded() -> None:
    document = schema({"user": {"type": "object", "categories": [UII], "properties": {}}})
    event = {"user": {"nick": "ada", "other": "x"}}
    got = record_one(document, policy(properties=["user.nick"]), event)
    assert got == {"user": {"nick": "ada", "other": None}}


def test_nested_undeclared_keys_inherit_their_parents_decision() -> None:
    document = schema({"user": {"type": "object", "categories": [UID], "properties": {}}})
    event = {"user": {"nick": "ada"}}
    assert record_one(document, policy([UID]), event) == event
    assert record_one(document, policy(), event) == {"user": None}


def test_additional_properties_with_categories_decide_undeclared_keys() -> None:
    document = schema(
        {"action": ACTION},
        additionalProperties={"type": "string", "categories": [UID]},
    )
    event = {"action": "open", "login": "ada"}
    assert record_one(document, policy([UID]), event) == event
    assert record_one(document, [SID], event) == {"action": "open", "login": None}


def test_items_with_categories_null_each_element_and_keep_the_length() -> None:
    document = schema(
        {"ips": {"type": "array", "categories": ["unrestricted"], "items": {"categories": [UII]}}}
    )
    event = {"ips": ["10.0.0.1", "10.0.0.2"]}
    assert record_one(document, [SID], event) == {"ips": [None, None]}
    assert record_one(document, policy([UII]), event) == event


TREE = schema(
    {"tree": {"categories": ["unrestricted"], "$ref": "#/definitions/node"}},
    definitions={
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "owner": {"type": "string", "categories": [UID]},
                "kids": {"type": "array", "items": {"$ref": "#/definitions/node"}},
            },
        }
    },
)
TREE_EVENT = {"tree": {"name": "r", "owner": "ada", "kids": [{"name": "k", "owner": "bob"}]}}


def test_a_recursive_ref_is_recorded_whole_when_everything_below_is_allowed() -> None:
    assert record_one(TREE, policy([UID]), TREE_EVENT) == TREE_EVENT


def test_a_recursive_ref_is_withheld_whole_when_anything_below_is_not() -> None:
    assert record_one(TREE, [SID], TREE_EVENT) == {
        "tree": {"name": "r", "owner": None, "kids": [None]}
    }


def test_changing_allowed_schemas_recompiles_the_policy(
    file_handler: logging.FileHandler, events_file: Path
) -> None:
    log = EventLog(handlers=[file_handler], allowed_schemas=[SID])
    log.register_schema(FLAT)
    log.record_event(SID, 1, FLAT_EVENT)
    log.allowed_schemas = policy([UID])
    log.record_event(SID, 1, FLAT_EVENT)
    first, second = (payload(line)["user"] for line in read_lines(events_file))
    assert (first, second) == (None, "ada")


# -- registration errors -------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "fragment"),
    [
        ({"user": {"categories": "user-identifier"}}, "property 'user' at #/properties/user"),
        ({"user": {"categories": [UID, 3]}}, "property 'user' at #/properties/user"),
        ({"user": {"categories": None}}, "got None"),
        (
            {"user": {"properties": {"email": {"categories": {"pii": True}}}}},
            "property 'user.email' at #/properties/user/properties/email",
        ),
        (
            {"sessions": {"items": {"properties": {"ip": {"categories": UII}}}}},
            "property 'sessions.ip' at #/properties/sessions/items/properties/ip",
        ),
        (
            {"user": {"allOf": [{"categories": [[UID]]}]}},
            "property 'user' at #/properties/user/allOf/0",
        ),
    ],
)
def test_bad_categories_are_a_registration_error_naming_the_property(
    properties: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(SchemaRegistrationError, match="must be a list of strings") as info:
        EventLog().register_schema(schema(properties))
    assert fragment in str(info.value)
    assert SID in str(info.value) and isinstance(info.value, ValueError)


def test_bad_categories_in_definitions_are_named_by_pointer() -> None:
    document = schema({}, definitions={"person": {"categories": UID}})
    with pytest.raises(SchemaRegistrationError, match="#/definitions/person must be a list"):
        EventLog().register_schema(document)


def test_categories_as_a_property_name_or_a_value_is_not_the_keyword() -> None:
    document = schema(
        {
            "categories": {"type": "array", "items": {"type": "string"}, "default": ["x"]},
            "kind": {"enum": [{"categories": "not a keyword"}]},
        }
    )
    log = EventLog(handlers=[logging.NullHandler()], allowed_schemas=[SID])
    log.register_schema(document)
    assert log._routes[(SID, "1")].redact is None
    # what a user sees: under the list form (unrestricted only), a schema that
    # declared categories would have every one of these values withheld
    event = {"categories": ["a"], "kind": {"categories": "not a keyword"}, "extra": 1}
    assert record_one(document, [SID], event) == event


# -- configuration -------------------------------------------------------------


def test_dict_form_from_a_config_file(tmp_path: Path, events_file: Path) -> None:
    config = load_config(
        tmp_path,
        "import logging\n"
        f"c.EventLog.handlers = [logging.FileHandler({str(events_file)!r})]\n"
        "c.EventLog.allowed_schemas = {\n"
        f"    {SID!r}: {{\n"
        f"        'allowed_categories': [{UID!r}],\n"
        "        'allowed_properties': ['email'],\n"
        "    }\n"
        "}\n",
    )
    log = EventLog(config=config)
    log.register_schema(FLAT)
    log.record_event(SID, 1, FLAT_EVENT)
    log.handlers[0].close()
    assert payload(read_lines(events_file)[0]) == {
        **dict.fromkeys(FLAT_EVENT),
        "action": "open",
        "user": "ada",
        "email": "ada@example.org",
    }


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("{'allowed_catgories': ['unrestricted']}", "unknown option(s) 'allowed_catgories'"),
        ("{'allowed_properties': 'user'}", "allowed_properties for schema"),
        ("{'allowed_categories': [1]}", "must be a list of strings"),
        ("['unrestricted']", "must be a dict"),
    ],
)
def test_bad_options_in_a_config_file_are_a_trait_error(
    tmp_path: Path, options: str, fragment: str
) -> None:
    config = load_config(tmp_path, f"c.EventLog.allowed_schemas = {{{SID!r}: {options}}}\n")
    with pytest.raises(TraitError) as info:
        EventLog(config=config)
    assert fragment in str(info.value) and "allowed_schemas" in str(info.value)


def test_allowed_lists_and_config_are_never_mutated(tmp_path: Path) -> None:
    categories, properties = [UID], ["email"]
    allowed = {SID: {"allowed_categories": categories, "allowed_properties": properties}}
    config = Config()
    config.EventLog.allowed_schemas = allowed
    before = copy.deepcopy(allowed)
    log = EventLog(config=config, handlers=[logging.NullHandler()])
    log.register_schema(FLAT)
    event = copy.deepcopy(FLAT_EVENT)
    for _ in range(200):
        log.record_event(SID, 1, event)
    assert allowed == before and categories == [UID] and properties == ["email"]
    assert config.EventLog.allowed_schemas == before
    assert log.allowed_schemas == before
    assert event == FLAT_EVENT


def test_list_form_is_never_mutated() -> None:
    allowed = [SID]
    log = EventLog(handlers=[logging.NullHandler()], allowed_schemas=allowed)
    log.register_schema(NESTED)
    for _ in range(200):
        log.record_event(SID, 1, NESTED_EVENT)
    assert allowed == [SID] and log.allowed_schemas == [SID]


def test_the_plan_is_compiled_at_registration_not_per_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = eventlog_module._categories.redactor

    def counting(*args: Any) -> Any:
        calls.append(args[2])
        return original(*args)

    monkeypatch.setattr(eventlog_module._categories, "redactor", counting)
    log = EventLog(handlers=[logging.NullHandler()], allowed_schemas=policy([UID]))
    log.register_schema(FLAT)
    compiled = len(calls)
    for _ in range(100):
        log.record_event(SID, 1, FLAT_EVENT)
    assert compiled == 1 and len(calls) == compiled


def test_the_redacted_event_is_a_new_dict() -> None:
    log = EventLog(handlers=[logging.NullHandler()], allowed_schemas=policy([UID, TS]))
    log.register_schema(NESTED)
    event = copy.deepcopy(NESTED_EVENT)
    capsule = log.record_event(SID, 1, event)
    assert capsule is not None and capsule["user"] is not event["user"]
    assert event == NESTED_EVENT


# -- property: nothing withheld ever reaches a sink ----------------------------

CATEGORY_POOL = ["unrestricted", UID, UII, TS]
NAMES = st.sampled_from(["a", "b", "c", "d"])
CATEGORIES = st.none() | st.lists(st.sampled_from(CATEGORY_POOL), max_size=2, unique=True)


def with_categories(draw_categories: Any, node: dict[str, Any]) -> dict[str, Any]:
    return node if draw_categories is None else {**node, "categories": draw_categories}


LEAF = st.builds(with_categories, CATEGORIES, st.just({"type": "string"}))


def extend(children: Any) -> Any:
    objects = st.builds(
        with_categories,
        CATEGORIES,
        st.dictionaries(NAMES, children, max_size=3).map(
            lambda props: {"type": "object", "properties": props}
        ),
    )
    arrays = st.builds(
        with_categories, CATEGORIES, children.map(lambda item: {"type": "array", "items": item})
    )
    return objects | arrays


SUBSCHEMAS = st.recursive(LEAF, extend, max_leaves=8)


@st.composite
def instances(draw: Any, node: dict[str, Any], counter: itertools.count[int]) -> Any:
    """An instance of ``node`` whose every leaf is a unique sentinel string."""
    if node["type"] == "object":
        return {
            name: draw(instances(sub, counter))
            for name, sub in node["properties"].items()
            if draw(st.integers(0, 4))  # mostly present
        }
    if node["type"] == "array":
        return [
            draw(instances(node["items"], counter)) for _ in range(draw(st.sampled_from([1, 2, 0])))
        ]
    return f"SENTINEL{next(counter):04d}"


def paths(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted property path in ``node`` (array items transparent)."""
    if node["type"] == "array":
        return paths(node["items"], prefix)
    found = []
    for name, sub in node.get("properties", {}).items():
        found += [prefix + name, *paths(sub, f"{prefix}{name}.")]
    return found


def reference(
    node: dict[str, Any] | None,
    value: Any,
    path: str,
    parent: str,
    allowed: set[str],
    named: set[str],
) -> Any:
    """The rules, applied per event and naively: the oracle for the compiled plan."""
    if path in named:
        return value
    categories = (node or {}).get("categories")
    if parent == "withheld":
        state = "withheld"
    elif categories is None:
        state = "recorded" if parent == "recorded" else "withheld"
    else:
        state = "recorded" if set(categories) <= allowed else "withheld"
    if state == "withheld" and not any(n.startswith(path + ".") for n in named):
        return None
    if isinstance(value, dict):
        props = (node or {}).get("properties", {})
        return {
            k: reference(props.get(k), v, f"{path}.{k}", state, allowed, named)
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = (node or {}).get("items")
        return [reference(items, v, path, state, allowed, named) for v in value]
    return value if state == "recorded" else None


def sentinels(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*map(sentinels, value.values()))
    if isinstance(value, list):
        return set().union(*map(sentinels, value))
    return {value} if isinstance(value, str) and value.startswith("SENTINEL") else set()


POLICY_FORMS = ["categories", "properties", "both", "empty"]


@st.composite
def scenarios(draw: Any) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """A categorised schema, an event of it, and the list form plus five dict policies."""
    props = draw(st.dictionaries(NAMES, extend(SUBSCHEMAS), min_size=1, max_size=3))
    props["a"] = {"type": "string", "categories": [draw(st.sampled_from(CATEGORY_POOL))]}
    root = {"type": "object", "properties": props}
    counter = itertools.count()
    event = draw(instances(root, counter))
    event["a"] = "SENTINEL-a"
    if draw(st.booleans()):
        event["undeclared"] = f"SENTINEL{next(counter):04d}"
    names = [*paths(root), "undeclared", "nothing.here"]
    policies: list[Any] = [[SID]]
    for form in draw(st.lists(st.sampled_from(POLICY_FORMS), min_size=5, max_size=5)):
        options: dict[str, list[str]] = {}
        if form in ("categories", "both"):
            options["allowed_categories"] = draw(
                st.lists(st.sampled_from(CATEGORY_POOL), unique=True)
            )
        if form in ("properties", "both"):
            nested = [n for n in names if "." in n] or names
            options["allowed_properties"] = draw(
                st.lists(st.sampled_from(names) | st.sampled_from(nested), min_size=1, max_size=3)
            )
        policies.append({SID: options})
    return schema(props), event, policies


def expected_for(document: dict[str, Any], event: dict[str, Any], allowed: Any) -> Any:
    options = allowed[SID] if isinstance(allowed, dict) else {}
    categories = {"unrestricted", *options.get("allowed_categories", [])}
    named = set(options.get("allowed_properties", []))
    props = document["properties"]
    return {k: reference(props.get(k), v, k, "root", categories, named) for k, v in event.items()}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_withheld_value_reaches_any_sink(scenario: Any) -> None:
    document, event, policies = scenario
    before = copy.deepcopy((event, policies))
    stream = io.StringIO()
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = EventLog(handlers=[logging.StreamHandler(stream)])
    # Assigned, not passed to the constructor: one OTel worker per example, stopped below.
    log.logger_provider = provider
    log.register_schema(document)
    try:
        for allowed in policies:
            log.allowed_schemas = allowed
            stream.seek(0)
            stream.truncate()
            exporter.clear()
            log.record_event(SID, 1, event)
            assert log.flush(5)

            expected = expected_for(document, event, allowed)
            withheld = sentinels(event) - sentinels(expected)
            line = stream.getvalue()
            (record,) = exporter.get_finished_logs()
            body = json.dumps(record.log_record.body)
            assert payload(json.loads(line)) == expected, allowed
            assert record.log_record.body == expected, allowed
            assert not [s for s in withheld if s in line or s in body], allowed
    finally:
        log.shutdown(5)
    assert (event, policies) == before
