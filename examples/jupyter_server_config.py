# jupyter_server_config.py for Jupyter Server 2: send the server's own events
# (contents_service, kernel_actions, gateway_client, and those of extensions)
# to OpenTelemetry, as the log records EventLog.record_event writes.
#
#   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_SERVICE_NAME=jupyter-server \
#       jupyter server --config=examples/jupyter_server_config.py
#
# The one line that matters is the last. Without c.EventLog.allowed_schemas
# every event of every schema is forwarded unchanged, file paths included.
from jupyter_telemetry import JupyterEventsHandler

c = get_config()  # noqa: F821 - defined by traitlets when it loads this file

# Set c.EventLog.* above the handler line: the handler reads them when it is built.
# A dict policy: only these schemas leave the process, and of each event only
# the properties listed (these schemas declare no personal-data categories);
# every other property arrives as null. gateway_client events are not listed,
# so they are not forwarded.
c.EventLog.allowed_schemas = {
    "https://events.jupyter.org/jupyter_server/contents_service/v1": {
        "allowed_properties": ["action"],
    },
    "https://events.jupyter.org/jupyter_server/kernel_actions/v1": {
        "allowed_properties": ["action", "kernel_name", "kernel_id", "status", "status_code", "msg"],
    },
}

c.EventLogger.handlers = [JupyterEventsHandler(config=c)]
