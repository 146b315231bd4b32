"""``python -m jupyter_telemetry``: the ``jupyter-telemetry`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
