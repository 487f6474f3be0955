"""Cancellation: a token the pipeline polls, and the watch that turns user requests into it.

:class:`CancelToken` is the ``is_cancelled`` callable the stages poll between frames and iterations.
:class:`CancelWatch` (the CLI's) requests it on a ``cancel`` line on stdin, SIGINT or SIGTERM, and:

- raises :class:`~backend.errors.Cancelled` in the main thread as soon as Python code runs there,
  except inside :meth:`CancelToken.shielded` sections (renaming finished outputs into place);
- sees signals at once even while the main thread is inside a long native call (a MediaPipe graph
  starting, a model loading), through ``signal.set_wakeup_fd``; if the main thread has not finished
  ``grace_s`` after the request, it calls ``on_deadline`` (report, remove temporary files) and ends
  the process with exit code 3. That bounds the exit after a cancel (DESIGN.md: one second).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from backend import protocol
from backend.errors import Cancelled

log = logging.getLogger(__name__)

GRACE_S = 0.6
"""Time the main thread gets to stop by itself after a cancel request."""
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CancelToken:
    """``token()`` is True once cancellation was requested; thread-safe."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._shields = 0

    def __call__(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self._event.set()

    @property
    def is_shielded(self) -> bool:
        with self._lock:
            return self._shields > 0

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """A section a cancel request must not interrupt (it is short: renames of finished files)."""
        with self._lock:
            self._shields += 1
        try:
            yield
        finally:
            with self._lock:
                self._shields -= 1


def shielded(is_cancelled: protocol.CancelCheck) -> contextlib.AbstractContextManager[None]:
    """The token's shielded section, or nothing for a plain callable (tests, library callers)."""
    return is_cancelled.shielded() if isinstance(is_cancelled, CancelToken) else contextlib.nullcontext()


class CancelWatch:
    """Stdin, signal and deadline watching for one command run (see the module doc)."""

    def __init__(self, token: CancelToken, on_deadline: Callable[[], None], grace_s: float = GRACE_S) -> None:
        self.token = token
        self._on_deadline = on_deadline
        self._grace_s = grace_s
        self._finished = threading.Event()
        self._timer_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._previous: dict[int, object] = {}
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._previous_fd = -1
        self._raised = False

    def install(self) -> None:
        """Main thread only: signal handlers, the wake-up socket, and the stdin watcher."""
        self._previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        for sig in _SIGNALS:
            signal.signal(sig, self._on_signal)
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self._wakeup = (reader, writer)
        self._previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch_wakeup, name="cancel-signals", daemon=True).start()
        if sys.stdin is not None and not sys.stdin.closed:
            threading.Thread(target=self._watch_stdin, name="cancel-stdin", daemon=True).start()

    def finish(self) -> None:
        """The main thread is done: no deadline may end the process any more."""
        self._finished.set()
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()

    def uninstall(self) -> None:
        self.finish()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_fd)
            for end in self._wakeup:
                end.close()
            self._wakeup = None

    def request(self) -> None:
        """Cancel: set the token and start the deadline (idempotent, any thread)."""
        self.token.request()
        with self._timer_lock:
            if self._timer is None and not self._finished.is_set():
                self._timer = threading.Timer(self._grace_s, self._deadline)
                self._timer.daemon = True
                self._timer.start()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request()
        if not self._raised and not self.token.is_shielded:
            self._raised = True
            raise Cancelled()

    def _watch_wakeup(self) -> None:
        assert self._wakeup is not None
        reader = self._wakeup[0]
        with contextlib.suppress(OSError):
            while data := reader.recv(64):
                if any(byte in (int(signal.SIGINT), int(signal.SIGTERM)) for byte in data):
                    self.request()

    def _watch_stdin(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in sys.stdin:
                if line.strip().lower() == protocol.CANCEL_LINE:
                    os.kill(os.getpid(), signal.SIGTERM)  # the handler requests and raises in the main thread
                    return

    def _deadline(self) -> None:
        """The main thread did not stop in time (a long native call): end the process here."""
        while self.token.is_shielded and not self._finished.wait(0.01):
            pass
        if self._finished.is_set():
            return
        log.warning("cancel: the current step did not stop within %.1f s; ending the process", self._grace_s)
        try:
            self._on_deadline()
        finally:
            os._exit(protocol.EXIT_CANCELLED)
