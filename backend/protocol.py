"""JSON-lines events between the backend and its callers (the Blender add-on imports this).

Standard library only. One JSON object per line on stdout when ``--events`` is given:

- ``{"event":"stage","name":"detect","index":2,"count":6}``
- ``{"event":"progress","stage":"detect","done":120,"total":300,"fps":48.1}``
- ``{"event":"warning","message":"..."}``
- ``{"event":"result","path":"..."}``
- ``{"event":"error","kind":"bad_input|internal","message":"...","detail":"..."}``
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
Reporter = Callable[[Event], None]
CancelCheck = Callable[[], bool]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 3

CANCEL_LINE = "cancel"

VERSION = "0.1.0"
"""The software version (backend, add-on and motion files); ``backend.__version__`` and the packaging
read it from here."""
PRESETS = ("fast", "balanced", "accurate")
"""The estimate's presets (``--preset``; the add-on's panel offers the same)."""


def stage(name: str, index: int, count: int) -> Event:
    return {"event": "stage", "name": name, "index": index, "count": count}


def progress(stage_name: str, done: int, total: int, fps: float | None = None) -> Event:
    event: Event = {"event": "progress", "stage": stage_name, "done": done, "total": total}
    if fps is not None:
        event["fps"] = round(float(fps), 2)
    return event


def warning(message: str) -> Event:
    return {"event": "warning", "message": message}


def result(path: str) -> Event:
    return {"event": "result", "path": path}


def error(kind: str, message: str, detail: str = "") -> Event:
    return {"event": "error", "kind": kind, "message": message, "detail": detail}


def encode(event: Event) -> str:
    """One event as a single JSON line (no trailing newline)."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False)


def decode(line: str) -> Event | None:
    """Parse one line; returns None for blank or non-JSON lines (e.g. stray library output)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or "event" not in value:
        return None
    return value


def null_reporter(event: Event) -> None:
    """A reporter that drops every event."""


def never_cancelled() -> bool:
    return False
