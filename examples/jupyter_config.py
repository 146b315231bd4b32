# A traitlets config file for the EventLog of a Jupyter application: save it as
# (or merge it into) jupyter_server_config.py or jupyterhub_config.py.
#
# Events go to a JSON-lines file and, as OpenTelemetry log records, to an OTLP
# collector. The application registers its own schemas; this file only decides
# where events go and which ones are recorded.
import logging
import os

c = get_config()  # noqa: F821 - defined by traitlets when it loads this file

# A callable is built when the EventLog is, not when the config is read.
c.EventLog.handlers = lambda: [
    logging.FileHandler(os.environ.get("JUPYTER_EVENTS_LOG", "events.log"), encoding="utf-8")
]

# Only events of these schemas are recorded. The dict form also says which
# personal-data categories of each schema may be recorded; properties of
# other categories are left out of the event.
c.EventLog.allowed_schemas = {
    "https://events.example.org/jupyter/file-opened": {
        "allowed_categories": ["category.jupyter.org/user-identifier"],
    },
}

# OpenTelemetry: every recorded event is also exported over OTLP.
c.EventLog.otlp_endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
c.EventLog.otlp_protocol = "grpc"  # or "http/protobuf" (port 4318)
c.EventLog.service_name = "jupyter-server"  # resource service.name in the collector
