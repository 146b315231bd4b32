"""The SDK's OTLP/gRPC log exporter, taking requests our encoder built."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


class Encoded:
    """A request our encoder built, travelling through the exporter's public ``export``."""

    def __init__(self, payload: bytes, count: int) -> None:
        self.payload = payload
        self.count = count

    def __len__(self) -> int:  # the exporter's own metrics count records with len()
        return self.count


class GRPCExporter(OTLPLogExporter):
    """``export(Encoded(...))`` sends the bytes as they are (parsed once for grpc's serialiser).

    ``_translate_data`` is the SDK's private seam; :attr:`seam_used` tells the
    caller whether this SDK release still went through it.
    """

    seam_used = False

    def _translate_data(self, data: Any) -> ExportLogsServiceRequest:
        if isinstance(data, Encoded):
            self.seam_used = True
            parsed: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(data.payload)
            return parsed
        request: ExportLogsServiceRequest = super()._translate_data(data)
        return request
