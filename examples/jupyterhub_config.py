# jupyterhub_config.py for JupyterHub 5/6: send the Hub's events (server-action:
# a user's server started or stopped) to OpenTelemetry.
#
#   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_SERVICE_NAME=jupyterhub \
#       jupyterhub -f examples/jupyterhub_config.py
#
# Every event is forwarded unchanged (server-action holds the user name); set
# c.EventLog.allowed_schemas above the handler line to restrict them.
from jupyter_telemetry import JupyterEventsHandler

c = get_config()  # noqa: F821 - defined by traitlets when it loads this file

c.EventLogger.handlers = [JupyterEventsHandler(config=c)]
