"""A child process whose output lines arrive on a thread-safe queue (bpy-free, stdlib only).

Reader threads turn stdout and stderr into ``(stream, line)`` items so that the caller (Blender's
UI thread, through a timer) never blocks on a pipe. ``stop()`` asks politely first: the caller's
stop line on stdin, then SIGTERM after ``term_after_s``, then SIGKILL after ``kill_after_s``.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)

STDOUT = "stdout"
STDERR = "stderr"
Parser = Callable[[str], tuple[str, object]]
"""Turns one stdout line into a queue item ``(kind, payload)`` (runs in the reader thread)."""


def _raw_line(line: str) -> tuple[str, object]:
    return STDOUT, line


class ChildProcess:
    """One subprocess with piped stdin/stdout/stderr, read by two daemon threads.

    Args:
        argv: the command.
        cwd: working directory.
        env: the complete environment of the child.
        parse_stdout: maps each stdout line to a queue item; stderr lines arrive as
            ``(STDERR, line)``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        parse_stdout: Parser = _raw_line,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.items: queue.Queue[tuple[str, object]] = queue.Queue()
        self._parse_stdout = parse_stdout
        self._popen: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._stdin_lock = threading.Lock()
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ life cycle
    def start(self) -> str | None:
        """Start the process; return None, or a message saying why it could not start."""
        try:
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                start_new_session=os.name == "posix",  # a Ctrl+C in Blender's terminal is not ours
            )
        except (OSError, ValueError) as exc:
            return f"cannot run {self.argv[0]}: {exc}"
        assert self._popen.stdout is not None and self._popen.stderr is not None
        for stream, name, parse in (
            (self._popen.stdout, STDOUT, self._parse_stdout),
            (self._popen.stderr, STDERR, lambda line: (STDERR, line)),
        ):
            reader = threading.Thread(
                target=self._read, args=(stream, parse), name=f"child-{name}", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        log.debug("started %s (pid %d)", self.argv, self._popen.pid)
        return None

    def _read(self, stream: TextIO, parse: Parser) -> None:
        try:
            for line in stream:
                self.items.put(parse(line.rstrip("\r\n")))
        except (OSError, ValueError) as exc:  # the pipe closed under us
            log.debug("reader stopped: %s", exc)

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def returncode(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal), else None."""
        return None if self._popen is None else self._popen.poll()

    def finished(self) -> bool:
        """True when the process has exited and both pipes are fully read (nothing more will come)."""
        if self.returncode() is None:
            return False
        for reader in self._readers:
            reader.join(timeout=0.5)  # a grandchild holding a pipe open must not hang the caller
        return True

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the process exits (or the timeout passes); its exit status or None."""
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # ------------------------------------------------------------------ control
    def send_line(self, text: str) -> bool:
        """Write one line to the child's stdin; False if it is no longer listening."""
        if self._popen is None or self._popen.stdin is None:
            return False
        with self._stdin_lock:
            try:
                self._popen.stdin.write(text + "\n")
                self._popen.stdin.flush()
                return True
            except (OSError, ValueError):
                return False

    def stop(self, line: str | None = None, term_after_s: float = 2.0, kill_after_s: float = 5.0) -> None:
        """Ask the child to stop (``line`` on stdin), then terminate, then kill; returns at once."""
        if self._popen is None or self._stopping.is_set():
            return
        self._stopping.set()
        if line is not None:
            self.send_line(line)
        threading.Thread(
            target=self._escalate, args=(term_after_s, kill_after_s), name="child-stop", daemon=True
        ).start()

    def _escalate(self, term_after_s: float, kill_after_s: float) -> None:
        popen = self._popen
        assert popen is not None
        if self.wait(term_after_s) is not None:
            return
        log.warning("pid %d ignored the stop request; terminating it", popen.pid)
        try:
            popen.terminate()
        except OSError:
            return
        if self.wait(max(0.0, kill_after_s - term_after_s)) is not None:
            return
        log.warning("pid %d ignored SIGTERM; killing it", popen.pid)
        try:
            popen.kill()
        except OSError:
            return

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def close(self) -> None:
        """Release the pipes (after the process has ended)."""
        if self._popen is None:
            return
        for pipe in (self._popen.stdin, self._popen.stdout, self._popen.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
