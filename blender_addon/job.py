"""Run ``python -m backend estimate ... --events`` and follow it (bpy-free, stdlib only).

:class:`BackendJob` starts the backend in its own Python, parses its JSON-lines events in a reader
thread (``process.ChildProcess``), and turns them into a :class:`JobSnapshot` each time the UI calls
:meth:`BackendJob.poll`. Every line the backend writes is kept and saved to a log file next to the
output. Nothing here raises into the caller: failures end as a ``failed`` snapshot with a message
that says what happened and where the full log is.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from . import protocol
from .job_options import JobOptions, log_path_for
from .process import STDERR, STDOUT, ChildProcess

log = logging.getLogger(__name__)

Status = Literal["starting", "running", "cancelling", "done", "failed", "cancelled"]
FINISHED: tuple[Status, ...] = ("done", "failed", "cancelled")
EVENT = "event"
GARBAGE = "garbage"
_TAIL = 8
"""Log lines quoted in an error message."""


@dataclass(frozen=True)
class JobSnapshot:
    """What the UI shows; a new immutable value after every :meth:`BackendJob.poll`."""

    status: Status = "starting"
    stage: str = ""
    stage_index: int = 0
    stage_count: int = 0
    done: int = 0
    total: int = 0
    fps: float | None = None
    percent: float = 0.0
    """Whole run, 0..100 (stages weigh the same; a rough guide)."""
    eta_s: float | None = None
    """Rough time left for the whole run, from the elapsed time and the percentage."""
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = ()
    error: str = ""
    error_kind: str = ""
    result: Path | None = None
    returncode: int | None = None
    log_path: Path | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def summary(self) -> str:
        """One line for a status bar."""
        if self.status == "failed":
            return f"Failed: {self.error}"
        if self.status in ("done", "cancelled"):
            return self.status.capitalize()
        text = f"{self.stage or 'starting'}"
        if self.stage_count:
            text = f"{self.stage_index}/{self.stage_count} {text}"
        text += f" {self.percent:.0f}%"
        if self.fps:
            text += f", {self.fps:.1f} frames/s"
        if self.eta_s is not None:
            text += f", about {format_duration(self.eta_s)} left"
        return text + (" (cancelling)" if self.status == "cancelling" else "")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _parse(line: str) -> tuple[str, object]:
    """A backend stdout line: an event, or garbage (anything else that is not blank)."""
    event = protocol.decode(line)
    if event is not None:
        return EVENT, event
    return (GARBAGE, line) if line.strip() else (STDOUT, line)


@dataclass
class _Progress:
    """The mutable state behind the snapshots (touched only in the polling thread)."""

    snapshot: JobSnapshot = field(default_factory=JobSnapshot)
    garbage: list[str] = field(default_factory=list)
    error_event: dict | None = None


class BackendJob:
    """One backend run. ``start()``, then ``poll()`` from a timer until ``snapshot.finished``.

    Args:
        options: what to run.
        python: the backend's Python executable (with torch etc. installed).
        backend_root: the folder holding the ``backend`` package (put on PYTHONPATH).
        module: the package to run with ``-m`` (tests point it at a fake backend).
        env: extra environment variables for the child.
    """

    def __init__(
        self,
        options: JobOptions,
        python: Path,
        backend_root: Path | None,
        module: str = "backend",
        env: dict[str, str] | None = None,
    ) -> None:
        self.options = options
        self.python = Path(python)
        self.backend_root = backend_root
        self.module = module
        self.log_lines: list[str] = []
        self.log_path = log_path_for(options.out)
        self._extra_env = dict(env or {})
        self._state = _Progress(JobSnapshot(log_path=self.log_path))
        self._child: ChildProcess | None = None
        self._log_file = None
        self._started = 0.0
        self._cancel_requested = False

    # ------------------------------------------------------------------ control
    def start(self) -> JobSnapshot:
        """Start the backend; the snapshot is ``failed`` (with the reason) if it cannot start."""
        problems = self.options.problems()
        if problems:
            return self._fail(" ".join(problems), "bad_input")
        try:
            self.options.out.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in _finish
        except OSError as exc:
            return self._fail(f"Cannot write to {self.options.out.parent}: {exc}", "bad_input")
        argv = self.options.argv(self.python, self.module)
        self._log(f"$ {' '.join(argv)}")
        self._child = ChildProcess(argv, cwd=self.backend_root, env=self._child_env(), parse_stdout=_parse)
        self._started = time.monotonic()
        why = self._child.start()
        if why is not None:
            return self._fail(
                f"Cannot start the backend ({why}). Set the backend's Python in the add-on preferences "
                "or press 'Install Backend' there.",
                "setup",
            )
        self._set(status="running")
        return self._state.snapshot

    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        if self.backend_root is not None:
            env["PYTHONPATH"] = str(self.backend_root)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self._extra_env)
        return env

    def cancel(self) -> None:
        """Ask the backend to stop (``cancel`` on stdin; SIGTERM after 2 s, SIGKILL after 5 s)."""
        if self._child is None or self._state.snapshot.finished:
            return
        self._cancel_requested = True
        self._log("add-on: cancel requested")
        self._child.stop(protocol.CANCEL_LINE, term_after_s=2.0, kill_after_s=5.0)
        self._set(status="cancelling")

    @property
    def snapshot(self) -> JobSnapshot:
        return self._state.snapshot

    def poll(self) -> JobSnapshot:
        """Apply what the backend said since the last call; never blocks, never raises."""
        try:
            return self._poll()
        except Exception as exc:  # noqa: BLE001 - the UI's timer must survive anything
            log.exception("unexpected error while following the backend")
            self.cancel()
            return self._fail(
                f"Unexpected error in the add-on while following the backend: {exc}", "internal"
            )

    def wait(
        self,
        timeout_s: float | None = None,
        interval_s: float = 0.1,
        on_update: Callable[[JobSnapshot], None] | None = None,
    ) -> JobSnapshot:
        """Poll until finished (blocking; for scripts). ``on_update(snapshot)`` is called after each poll.

        After ``timeout_s`` the job is cancelled and waited for.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            snap = self.poll()
            if on_update is not None:
                on_update(snap)
            if snap.finished:
                return snap
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                deadline = None
            time.sleep(interval_s)

    # ------------------------------------------------------------------ events
    def _poll(self) -> JobSnapshot:
        if self._child is None or self._state.snapshot.finished:
            return self._state.snapshot
        ended = self._child.finished()  # check first: then every line it wrote is in the queue
        while True:
            try:
                kind, payload = self._child.items.get_nowait()
            except queue.Empty:
                break
            self._take(kind, payload)
        elapsed = time.monotonic() - self._started
        self._set(elapsed_s=elapsed, eta_s=self._eta(elapsed))
        if ended:
            self._end(self._child.returncode())
        return self._state.snapshot

    def _take(self, kind: str, payload: object) -> None:
        if kind == EVENT:
            assert isinstance(payload, dict)
            self._log(f"event: {protocol.encode(payload)}")
            self._event(payload)
        elif kind == GARBAGE:
            self._log(f"stdout: {payload}")
            self._state.garbage.append(str(payload))
        elif kind == STDERR:
            self._log(str(payload))
        elif kind == STDOUT:
            self._log(f"stdout: {payload}")

    def _event(self, event: dict) -> None:
        snap = self._state.snapshot
        name = event.get("event")
        if name == "stage":
            self._set(
                stage=str(event.get("name", "")),
                stage_index=_int(event.get("index")),
                stage_count=_int(event.get("count")),
                done=0,
                total=0,
                fps=None,
            )
        elif name == "progress":
            fps = event.get("fps")
            self._set(
                done=_int(event.get("done")),
                total=_int(event.get("total")),
                fps=float(fps) if isinstance(fps, int | float) else snap.fps,
            )
        elif name == "warning":
            self._set(warnings=snap.warnings + (str(event.get("message", "")),))
        elif name == "result":
            self._set(result=Path(str(event.get("path", ""))))
        elif name == "error":
            self._state.error_event = event
        snap = self._state.snapshot
        self._set(percent=_percent(snap))

    def _eta(self, elapsed: float) -> float | None:
        percent = self._state.snapshot.percent
        if percent < 2.0 or percent >= 100.0:
            return None
        return elapsed * (100.0 - percent) / percent

    def _end(self, code: int | None) -> None:
        """Decide how the run ended, from its exit status and what it said."""
        state, snap = self._state, self._state.snapshot
        error = state.error_event
        garbage = ""
        if state.garbage:
            garbage = (
                f" It also wrote {len(state.garbage)} line(s) that are not the backend's event protocol "
                f"on stdout (first: {state.garbage[0][:120]!r}): is the backend's Python right?"
            )
        if code == protocol.EXIT_OK and snap.result is not None:
            if snap.result.is_file():
                self._finish("done", returncode=code, percent=100.0, eta_s=None)
                return
            self._finish(
                "failed", returncode=code, error=f"The backend reported {snap.result}, which does not exist."
            )
            return
        if code == protocol.EXIT_CANCELLED or (self._cancel_requested and code != protocol.EXIT_OK):
            self._finish("cancelled", returncode=code, eta_s=None)
            return
        if error is not None:
            self._finish(
                "failed",
                returncode=code,
                error=str(error.get("message") or "The backend failed.") + garbage,
                error_kind=str(error.get("kind", "")),
            )
            return
        if code == protocol.EXIT_OK:
            message = "The backend exited without reporting a result." + garbage
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            message = f"The backend stopped unexpectedly ({how}) without an error message.{garbage}"
        tail = [line for line in self.log_lines[1:] if not line.startswith("event:")][-_TAIL:]
        if tail:
            message += " Last lines of its log: " + " | ".join(tail)
        message += f" (full log: {self.log_path})"
        self._finish("failed", returncode=code, error=message, error_kind="crash")

    # ------------------------------------------------------------------ state
    def _set(self, **changes: object) -> None:
        self._state.snapshot = replace(self._state.snapshot, **changes)

    def _finish(self, status: Status, **changes: object) -> None:
        self._set(status=status, **changes)
        snap = self._state.snapshot
        self._log(f"add-on: {status} (exit {snap.returncode}){': ' + snap.error if snap.error else ''}")
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._child is not None:
            self._child.close()
        log.info("backend job %s: %s", status, snap.error or snap.result)

    def _fail(self, message: str, kind: str) -> JobSnapshot:
        self._finish("failed", error=message, error_kind=kind)
        return self._state.snapshot

    def _log(self, line: str) -> None:
        self.log_lines.append(line)
        if self._log_file is not None:
            try:
                self._log_file.write(line + "\n")
                self._log_file.flush()
            except OSError:
                self._log_file = None


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _percent(snap: JobSnapshot) -> float:
    if snap.stage_count <= 0:
        return 0.0
    within = min(1.0, snap.done / snap.total) if snap.total > 0 else 0.0
    return max(0.0, min(100.0, 100.0 * (snap.stage_index - 1 + within) / snap.stage_count))
