"""Every example runs as a user would run it, and does what it says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_basic_example_records_into_events_log(tmp_path: Path) -> None:
    for run in (1, 2):  # a second run appends, and reports only its own events
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "basic.py")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert f"recorded 2 events, appended to {tmp_path / 'events.log'}" in result.stdout
        assert "rejected, nothing written" in result.stdout and "$.path" in result.stdout
        lines = [json.loads(x) for x in (tmp_path / "events.log").read_text().splitlines()]
        assert len(lines) == 2 * run
    assert [x["kind"] for x in lines] == ["notebook", "file"] * 2
    assert all(x["__schema__"].endswith("/file-opened") for x in lines)
