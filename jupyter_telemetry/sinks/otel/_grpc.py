"""The SDK's OTLP/gRPC log exporter, taking requests our encoder built."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class Encoded:
    """A request our encoder built, travelling through the exporter's public ``export``."""

    def __init__(self, payload: bytes, count: int) -> None:
        self.payload = payload
        self.count = count

    def __len__(self) -> int:  # the exporter's own metrics count records with len()
        return self.count


class _BytesStub:
    """``LogsService.Export`` on grpc's public API, sending a request that is already bytes."""

    def __init__(self, channel: Any) -> None:
        # No request serialiser: grpc sends bytes as they are.
        self.Export = channel.unary_unary(
            _EXPORT,
            request_serializer=None,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )


class GRPCExporter(OTLPLogExporter):
    """``export(Encoded(...))`` sends the bytes as they are.

    ``_translate_data`` is the SDK's private seam; :attr:`seam_used` tells the
    caller whether this SDK release still went through it. Where the exporter
    still builds its stub from ``_stub`` and ``_channel`` (its channel, TLS,
    headers, compression, retries and reconnects unchanged), the stub is one
    that takes bytes; otherwise the request is parsed once for the SDK's stub.
    """

    seam_used = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if hasattr(self, "_stub") and getattr(self, "_channel", None) is not None:
            self._stub = _BytesStub  # the SDK's own reconnect builds it again
            client: Any = _BytesStub(self._channel)
            self._client = client

    def _translate_data(self, data: Any) -> Any:
        as_bytes = isinstance(getattr(self, "_client", None), _BytesStub)
        if isinstance(data, Encoded):
            self.seam_used = True
            return data.payload if as_bytes else ExportLogsServiceRequest.FromString(data.payload)
        request: ExportLogsServiceRequest = super()._translate_data(data)  # SDK records
        return request.SerializeToString() if as_bytes else request
