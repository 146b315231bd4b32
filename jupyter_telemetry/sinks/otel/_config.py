"""Where OpenTelemetry output goes, decided from traits and ``OTEL_*`` variables.

This module imports nothing from OpenTelemetry, so ``EventLog`` can decide
that there is no OTel output without loading the SDK, grpc or protobuf.
Environment values that cannot be used never break start-up: each is
reported once through ``logging.getLogger("jupyter_telemetry")`` and either
replaced by its default or, where no default makes sense, turns the
EventLog-built exporter off. The JSON-lines file is never affected.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SCHEMA_ID = "jupyter.event.schema_id"
SCHEMA_VERSION = "jupyter.event.schema_version"
METADATA = "jupyter.event.metadata_version"
#: only on records whose ``__timestamp__`` a log record cannot hold (before 1970, after 2554)
TIMESTAMP = "jupyter.event.timestamp"
PAYLOAD = "jupyter.event.payload"  #: span events only: their attributes cannot hold a map
SCOPE = "jupyter_telemetry"
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_TIMEOUT = 10.0  #: seconds, when neither the trait nor OTEL_EXPORTER_OTLP_*TIMEOUT says

_diagnostics = logging.getLogger("jupyter_telemetry")
_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class OTLPSettings:
    """Where an EventLog-built exporter sends: traits first, then ``OTEL_*`` variables."""

    endpoint: str  #: full URL of the logs endpoint
    protocol: str  #: ``grpc`` or ``http/protobuf``
    headers: Mapping[str, str] | None  #: ``None``: the exporter reads OTEL_EXPORTER_OTLP_*HEADERS
    service_name: str | None  #: ``None``: left to OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    timeout: float  #: seconds one export, retries included, may take

    @classmethod
    def resolve(
        cls,
        endpoint: str | None,
        protocol: str | None,
        headers: Mapping[str, str] | None,
        service_name: str | None,
        default_service_name: str,
        timeout: float | None,
        env: Mapping[str, str] = os.environ,
    ) -> OTLPSettings | None:
        """Settings for an EventLog-built exporter, or ``None`` for no OTel output.

        Never raises: values that cannot be used are reported with one
        warning each (see the module docstring).
        """
        if _flag(env, "OTEL_SDK_DISABLED"):
            return None
        exporters = {
            name.strip().lower()
            for name in env.get("OTEL_LOGS_EXPORTER", "otlp").split(",")
            if name.strip()
        }
        if "none" in exporters:
            return None
        full = None if endpoint else env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        base = endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not (full or base):
            return None  # a protocol or timeout variable alone configures nothing
        if exporters and "otlp" not in exporters:
            _warn(
                f"OTEL_LOGS_EXPORTER={env['OTEL_LOGS_EXPORTER']!r} names no OTLP exporter: no OTel output"
            )
            return None
        protocol = _protocol(protocol, env)
        if protocol is None:
            return None
        if protocol == "grpc" and not _positive(env.get("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "1")):
            # The SDK's gRPC exporter parses this variable itself and refuses to start.
            _warn(
                f"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT={env['OTEL_EXPORTER_OTLP_LOGS_TIMEOUT']!r} is "
                "not a positive number of milliseconds: no OTel output over gRPC"
            )
            return None
        if not full:
            assert base is not None
            full = base if protocol == "grpc" else base.rstrip("/") + "/v1/logs"
        problem = _bad_url(full)
        if problem:
            _warn(f"the OTLP logs endpoint {full!r} {problem}: no OTel output")
            return None
        if (
            service_name is None
            and "OTEL_SERVICE_NAME" not in env
            and ("service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        ):
            service_name = default_service_name
        return cls(full, protocol, headers, service_name, _timeout(timeout, env))


def _protocol(given: str | None, env: Mapping[str, str]) -> str | None:
    if given:
        return given
    name = next(
        (
            n
            for n in ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
            if env.get(n)
        ),
        None,
    )
    if name is None:
        return "grpc"
    value = env[name].strip().lower()
    if value in PROTOCOLS:
        return value
    if value == "http/json":
        # Every OTLP/HTTP receiver takes protobuf on the same path as JSON.
        _warn(f"{name}=http/json is not supported: sending http/protobuf to the same endpoint")
        return "http/protobuf"
    _warn(f"{name}={env[name]!r} is not one of {PROTOCOLS}: no OTel output")
    return None


def _timeout(given: float | None, env: Mapping[str, str]) -> float:
    if given is not None:
        return given
    for name in ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        text = env.get(name)
        if text is None:
            continue
        if _positive(text):
            return float(text) / 1000  # the specification's unit
        _warn(
            f"{name}={text!r} is not a positive number of milliseconds: using {DEFAULT_TIMEOUT} s"
        )
        return DEFAULT_TIMEOUT
    return DEFAULT_TIMEOUT


def _positive(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def _bad_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http:// or https:// URL"
    return None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in _TRUE


def _warn(message: str) -> None:
    _diagnostics.warning("jupyter_telemetry: %s (the JSON-lines file is unaffected)", message)


def global_provider(env: Mapping[str, str] = os.environ) -> Any:
    """The application's global logger provider when it installed an SDK one, else ``None``.

    Looks without importing: an application that installed a provider has
    already imported the SDK.
    """
    if "opentelemetry.sdk._logs" not in sys.modules or _flag(env, "OTEL_SDK_DISABLED"):
        return None
    from ._records import installed_provider

    return installed_provider()
