"""A program written against jupyter-telemetry 0.1.0 runs unchanged.

The program below is the 0.1.0 README's example plus what JupyterHub's own
tests do (a StreamHandler into a StringIO set through config, allowed_schemas
assigned later, ``jsonschema.ValidationError`` caught). It runs in a fresh
interpreter, as a user's program would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAM = r"""
import io, json, logging
import jsonschema
from traitlets.config import Config
from jupyter_telemetry import EventLog
from jupyter_telemetry.eventlog import EventLog as SameEventLog
assert EventLog is SameEventLog

eventlog = EventLog(
    handlers=[logging.FileHandler('events.log')],
    allowed_schemas=['url.to.event.schema'],
)
with open('schema.json', 'w') as f:
    json.dump({
        "$id": "url.to.event.schema",
        "title": "My Event",
        "description": "All events must have a name property.",
        "type": "object",
        "properties": {"name": {"title": "Name", "description": "Name of event", "type": "string"}},
        "required": ["name"],
        "version": 1,
    }, f)
eventlog.register_schema_file('schema.json')
event = {'name': 'example event'}
eventlog.record_event(schema_name='url.to.event.schema', version=1, event=event)
eventlog.record_event(schema_id='url.to.event.schema', version=1, event=event)

# JupyterHub's test pattern
sink = io.StringIO()
cfg = Config()
cfg.EventLog.handlers = [logging.StreamHandler(sink)]
hub = EventLog(config=cfg)
hub.register_schema_file('schema.json')
hub.allowed_schemas = ['url.to.event.schema']
hub.record_event('url.to.event.schema', 1, {'name': 'hub'})
assert json.loads(sink.getvalue())['name'] == 'hub'
try:
    hub.record_event('url.to.event.schema', 1, {'name': 42})
except jsonschema.ValidationError as e:
    print('caught ValidationError')
try:
    hub.record_event('url.to.event.schema', 9, {'name': 'x'})
except ValueError:
    print('caught ValueError')
"""


def test_a_0_1_0_program_runs_unchanged(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["caught ValidationError", "caught ValueError"]
    lines = (tmp_path / "events.log").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        record = json.loads(line)
        # exactly the keys 0.1.0 wrote, in its order, and nothing else
        assert list(record) == [
            "__timestamp__",
            "__schema__",
            "__schema_version__",
            "__metadata_version__",
            "name",
        ]
        assert record["__schema__"] == "url.to.event.schema"
        assert record["__schema_version__"] == 1 and record["__metadata_version__"] == 1
        assert record["__timestamp__"].endswith("Z") and "+00:00" not in record["__timestamp__"]
