"""Stretches of a clip on worker threads: MediaPipe's graphs run their inference on one core each
(pinning the process to one core does not slow the multi-person pass: 70 against 72 ms a frame) and
release the GIL, so two graphs on two halves of a clip run side by side. What that saves depends on
where the first graph can hand over (:mod:`backend.detect.handover`): on the demo only at frame 174 of
230, so its multi-person pass took 23.1 s against 24.7 s with one thread.

A task is a callable that takes a ``tick`` (call it once per frame done) and a ``stopped`` check (True
once the user cancelled or another task failed: raise :class:`backend.errors.Cancelled`). The calling
thread only waits and reports progress, so the protocol's reporter is never called from a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from backend import protocol
from backend.errors import Cancelled

R = TypeVar("R")
Tick = Callable[[], None]
Task = Callable[[Tick, protocol.CancelCheck], R]

MIN_SPAN_FRAMES = 60
"""A clip is split only into stretches of at least this many frames (a graph's start-up is not free)."""
POLL_S = 0.2


def spans(start: int, stop: int, workers: int, min_frames: int = MIN_SPAN_FRAMES) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into at most ``workers`` consecutive stretches of near-equal length, none
    shorter than ``min_frames`` (one stretch when the range is short)."""
    n = max(stop - start, 0)
    parts = max(1, min(int(workers), n // max(min_frames, 1)))
    edges = [start + (n * k) // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a] or [(start, stop)]


class _Counter:
    """Frames done over all tasks (thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def tick(self) -> None:
        with self._lock:
            self.value += 1


def run_tasks(
    tasks: Sequence[Task[R]], on_progress: Callable[[int], None], is_cancelled: protocol.CancelCheck
) -> list[R]:
    """Run ``tasks`` on one thread each; their results in order.

    ``on_progress(frames_done)`` is called from this thread about every 0.2 s. The first task to raise
    stops the others (their ``stopped`` turns True) and its exception is raised here.
    """
    counter, failed = _Counter(), threading.Event()

    def stopped() -> bool:
        return failed.is_set() or is_cancelled()

    with ThreadPoolExecutor(max_workers=max(len(tasks), 1), thread_name_prefix="detect") as pool:
        futures = [pool.submit(task, counter.tick, stopped) for task in tasks]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION)
            on_progress(counter.value)
            if any(f.exception() is not None for f in done):
                failed.set()
        on_progress(counter.value)
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:  # the failure itself, not the other tasks' Cancelled that it caused
        raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
    return [f.result() for f in futures]
