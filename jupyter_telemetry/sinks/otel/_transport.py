"""The SDK's OTLP exporters, fed our encoded requests where they allow it.

The exporters keep everything the transport needs — gRPC and HTTP, TLS,
headers, compression, timeouts and retries as the ``OTEL_*`` variables say.
Each has a private seam that takes an already-encoded request: gRPC's
``_translate_data`` and the HTTP exporter's ``_client.export(bytes)``. The
seams are optional: when an SDK release lacks or changes one,
:class:`Transport` notices (at construction, or because the seam was not
used or misbehaved) and sends through the public ``export()`` with SDK
records built by ``Logger.emit`` instead — slower, never lost. So no upper
bound on the SDK version is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HTTPExporter
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from ..._version import __version__
from ._config import SCOPE, OTLPSettings
from ._records import Item, emit

_diagnostics = logging.getLogger("jupyter_telemetry")

# grpc shares a connection (and its reconnect back-off: 1 s growing to 120 s)
# between every channel to one target unless each has its own pool; with it,
# a new exporter (the SDK's own re-connect, or Transport.renewed) connects now.
CHANNEL_OPTIONS: Any = (("grpc.use_local_subchannel_pool", 1),)

#: switched off by the test that proves the public path delivers on its own
PRIVATE_SEAMS = True


def make_exporter(settings: OTLPSettings) -> LogRecordExporter:
    """A new exporter (a connection of its own) for ``settings``; raises what the SDK raises."""
    headers = dict(settings.headers) if settings.headers else None
    if settings.protocol == "grpc":
        from ._grpc import GRPCExporter  # grpc loads only for a gRPC endpoint

        insecure = True if settings.endpoint.startswith("http://") else None
        return GRPCExporter(
            endpoint=settings.endpoint,
            insecure=insecure,
            headers=headers,
            timeout=settings.timeout,
            channel_options=CHANNEL_OPTIONS,
        )
    return HTTPExporter(endpoint=settings.endpoint, headers=headers, timeout=settings.timeout)


def resource(settings: OTLPSettings) -> Resource:
    """This service name, then ``OTEL_*`` variables and the SDK's defaults."""
    return Resource.create({"service.name": settings.service_name} if settings.service_name else {})


class Transport:
    """One exporter, its seam if usable, and the public path. One thread uses it."""

    def __init__(self, settings: OTLPSettings, resource: Resource) -> None:
        self.settings = settings
        self.exporter = make_exporter(settings)
        client = getattr(self.exporter, "_client", None)
        if hasattr(self.exporter, "seam_used"):
            self.seam = "grpc"
        elif isinstance(self.exporter, HTTPExporter) and callable(getattr(client, "export", None)):
            self.seam = "http"
        else:
            self.seam = ""
        if not PRIVATE_SEAMS:
            self.seam = ""
        self._resource = resource
        self._provider: LoggerProvider | None = None
        #: inside the exporter; written by the one thread using this transport, read after a fork
        self.in_call = False
        self._collect = _Collect()

    def renewed(self) -> Transport:
        """A new exporter for the same settings (a gRPC channel not backing off)."""
        fresh = Transport(self.settings, self._resource)
        if not self.seam:
            fresh.seam = ""  # this SDK was already found to lack it
        return fresh

    def send(self, payload: bytes, count: int) -> bool | None:
        """Send an encoded request; ``None`` when the seam failed and the batch is unsent."""
        self.in_call = True
        try:
            if self.seam == "grpc":
                from ._grpc import Encoded

                exporter: Any = self.exporter
                exporter.seam_used = False
                result = exporter.export(Encoded(payload, count))
                if exporter.seam_used:
                    return result is LogRecordExportResult.SUCCESS
            else:
                ok = getattr(self.exporter, "_client").export(payload).success  # noqa: B009
                if type(ok) is bool:
                    return ok
        except Exception:
            if self.seam == "grpc" and getattr(self.exporter, "seam_used", False):
                return False  # an exporter that raises after encoding: the batch is lost
        finally:
            self.in_call = False
        _diagnostics.warning(
            "jupyter_telemetry: this OpenTelemetry SDK does not take encoded requests "
            "(%s seam): exporting through its public API from now on",
            self.seam,
        )
        self.seam = ""
        return None

    def export(self, items: Sequence[Item]) -> tuple[int, int, int]:
        """Through the public API: ``(exported, failed, unencodable)``."""
        if self._provider is None:
            self._provider = LoggerProvider(resource=self._resource, shutdown_on_exit=False)
            self._provider.add_log_record_processor(self._collect)
        logger = self._provider.get_logger(SCOPE, __version__)
        bad = 0
        for item in items:
            try:
                emit(logger, item)
            except Exception:
                bad += 1
        records = self._collect.take()
        if not records:
            return 0, 0, bad
        self.in_call = True
        try:
            ok = self.exporter.export(records) is LogRecordExportResult.SUCCESS
        except Exception:  # an exporter must not raise; one that does loses its batch
            ok = False
        finally:
            self.in_call = False
        return (len(records), 0, bad) if ok else (0, len(records), bad)

    def shutdown(self) -> None:
        """Stop the exporter: interrupts a retry back-off under way."""
        try:
            self.exporter.shutdown()  # type: ignore[no-untyped-call]
        except Exception:
            _diagnostics.debug("jupyter_telemetry: exporter shutdown failed", exc_info=True)


class _Collect(LogRecordProcessor):
    """Gathers the records ``Logger.emit`` produced, for one export."""

    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def on_emit(self, log_record: Any) -> None:
        self.records.append(
            ReadableLogRecord(
                log_record=log_record.log_record,
                resource=log_record.resource,
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )

    def take(self) -> list[ReadableLogRecord]:
        records, self.records = self.records, []
        return records

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
