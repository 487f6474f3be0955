"""Run the installation steps one after the other without blocking (bpy-free, stdlib only).

The preferences' *Install Backend* button polls :class:`InstallJob` from a timer and shows the
last lines of output; the whole output goes to a log file too.
"""

from __future__ import annotations

import logging
import os
import queue
from dataclasses import dataclass
from pathlib import Path

from .backend_env import Step
from .process import ChildProcess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstallSnapshot:
    status: str
    """``running``, ``done``, ``failed`` or ``cancelled``."""
    step: str
    step_index: int
    step_count: int
    tail: tuple[str, ...]
    """The last output lines."""
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


class InstallJob:
    """Runs ``steps`` in order; stops at the first failing one.

    Args:
        steps: from :func:`backend_env.install_steps`.
        log_path: where the full output goes.
        tail_lines: how many lines the snapshot keeps for display.
    """

    def __init__(self, steps: list[Step], log_path: Path, tail_lines: int = 12) -> None:
        self.steps = steps
        self.log_path = log_path
        self.lines: list[str] = []
        self._tail_lines = tail_lines
        self._index = -1
        self._child: ChildProcess | None = None
        self._status = "running"
        self._error = ""
        self._cancelled = False

    def start(self) -> InstallSnapshot:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("", encoding="utf-8")
        except OSError as exc:
            self._stop("failed", f"Cannot write the log {self.log_path}: {exc}")
            return self.snapshot()
        self._next()
        return self.snapshot()

    def cancel(self) -> None:
        self._cancelled = True
        if self._child is not None:
            self._child.stop(None, term_after_s=0.0, kill_after_s=5.0)

    def poll(self) -> InstallSnapshot:
        """Collect output; move to the next step when one ends. Never raises."""
        try:
            if self._status == "running" and self._child is not None:
                ended = self._child.finished()
                self._drain()
                if ended:
                    code = self._child.returncode()
                    self._child.close()
                    if self._cancelled:
                        self._stop("cancelled", "Cancelled.")
                    elif code != 0:
                        step = self.steps[self._index]
                        self._stop("failed", f"'{step.title}' failed (exit code {code}); see {self.log_path}")
                    else:
                        self._next()
        except Exception as exc:  # noqa: BLE001 - the UI's timer must survive anything
            log.exception("installer")
            self._stop("failed", f"Unexpected error: {exc}")
        return self.snapshot()

    def snapshot(self) -> InstallSnapshot:
        step = self.steps[self._index].title if 0 <= self._index < len(self.steps) else ""
        return InstallSnapshot(
            self._status,
            step,
            self._index + 1,
            len(self.steps),
            tuple(self.lines[-self._tail_lines :]),
            self._error,
        )

    def _next(self) -> None:
        self._index += 1
        if self._index >= len(self.steps):
            self._stop("done", "")
            return
        step = self.steps[self._index]
        self._write(f"== {step.title}: {' '.join(step.argv)}")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")} | step.env
        self._child = ChildProcess(step.argv, env=env)
        why = self._child.start()
        if why is not None:
            self._stop("failed", f"'{step.title}' could not start: {why}")

    def _drain(self) -> None:
        assert self._child is not None
        while True:
            try:
                _, line = self._child.items.get_nowait()
            except queue.Empty:
                return
            self._write(str(line))

    def _stop(self, status: str, error: str) -> None:
        self._status, self._error = status, error
        self._write(f"== {status}{': ' + error if error else ''}")

    def _write(self, line: str) -> None:
        self.lines.append(line)
        try:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError:
            pass
