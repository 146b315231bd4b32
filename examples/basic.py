"""Record a few events into events.log: the 0.1.0 README's example, files only.

Run it from anywhere: ``python examples/basic.py``. No server is needed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jsonschema

from jupyter_telemetry import EventLog

HERE = Path(__file__).resolve().parent
SCHEMA_ID = "https://events.example.org/jupyter/file-opened"


def main(log_path: Path = Path("events.log")) -> Path:
    already = len(log_path.read_text(encoding="utf-8").splitlines()) if log_path.exists() else 0
    handler = logging.FileHandler(log_path, encoding="utf-8")  # appends
    eventlog = EventLog(handlers=[handler], allowed_schemas=[SCHEMA_ID])
    eventlog.register_schema_file(HERE / "schemas" / "file-opened.yaml")

    eventlog.record_event(SCHEMA_ID, 1, {"path": "/home/ada/analysis.ipynb", "kind": "notebook"})
    eventlog.record_event(SCHEMA_ID, 1, {"path": "/home/ada/data.csv", "kind": "file", "size": 2048})
    try:
        eventlog.record_event(SCHEMA_ID, 1, {"path": "relative.txt", "kind": "file"})
    except jsonschema.ValidationError as error:
        print(f"rejected, nothing written: {error}")

    eventlog.shutdown()
    handler.close()
    lines = log_path.read_text(encoding="utf-8").splitlines()[already:]
    print(f"recorded {len(lines)} events, appended to {log_path.resolve()}:")
    for line in lines:
        print("  " + json.dumps(json.loads(line)))
    return log_path.resolve()


if __name__ == "__main__":
    main()
