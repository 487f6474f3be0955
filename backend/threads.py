"""How many CPU threads torch uses: as many as there are cores nobody else is using, re-checked while
the fit runs.

Why: the fit's tensors are small, so a second thread helps only a little on an idle machine (a 460-frame
fit: 11.4 s with two threads, 15.1 s with one, on two cores), but when another process keeps a core
busy (Blender drawing, a render, a second job) the two threads wait on each other at every operation
and the fit runs three to four times slower (37 s) where one thread runs at full speed (14 s):
``bench/busy_fit.py``. Sleeping instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) avoids the collapse but
also loses the second thread's gain. So the backend measures what the *other* processes use (the
machine's busy time from ``/proc/stat`` minus this process's own CPU time) and sets torch's thread
count to the cores left over, at start and every ``CHECK_EVERY_S`` during the fit. Where ``/proc/stat``
is missing (not Linux) the count stays at torch's default. ``VIDEO2ANIM_THREADS=N`` fixes it at N.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)
CHECK_EVERY_S = 1.0
"""How often the fit re-checks the other processes' load."""
_SPARE = 0.5
"""A core counts as ours when others use less than half of it."""


ENV = "VIDEO2ANIM_THREADS"


def fixed_threads() -> int | None:
    """The thread count fixed by ``VIDEO2ANIM_THREADS`` (a positive integer), else None."""
    value = os.environ.get(ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class CpuSample:
    """Machine-wide busy and total CPU seconds, and this process's own CPU seconds, at one moment."""

    busy: float
    total: float
    own: float
    wall: float

    @staticmethod
    def take() -> CpuSample | None:
        """Now, or None where ``/proc/stat`` cannot be read."""
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [float(v) for v in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        times = os.times()
        return CpuSample((sum(fields) - idle) / hz, sum(fields) / hz, times.user + times.system, time.monotonic())


def free_cores(before: CpuSample, after: CpuSample, cores: int) -> float:
    """Cores not used by other processes between two samples (this process's own use counts as free)."""
    wall = after.wall - before.wall
    if wall <= 0.0:
        return float(cores)
    others = ((after.busy - before.busy) - (after.own - before.own)) / wall
    return max(0.0, cores - max(0.0, others))


def threads_for(free: float, cores: int) -> int:
    """Threads for ``free`` spare cores: at least one, at most ``cores``."""
    return max(1, min(cores, int(free + _SPARE)))


class Governor:
    """Keeps torch's thread count at the cores other processes leave free; ``poll()`` often (cheap)."""

    def __init__(self, cores: int | None = None, every_s: float = CHECK_EVERY_S) -> None:
        self.cores = cores or available_cores()
        self.every_s = every_s
        self.sample = None if fixed_threads() else CpuSample.take()  # fixed: never changes
        self.threads = torch.get_num_threads()

    def poll(self) -> int:
        """Re-check the load if ``every_s`` has passed; returns the thread count in use."""
        if self.sample is None or time.monotonic() - self.sample.wall < self.every_s:
            return self.threads
        now = CpuSample.take()
        if now is None:
            return self.threads
        wanted = threads_for(free_cores(self.sample, now, self.cores), self.cores)
        self.sample = now
        if wanted != self.threads:
            log.info("torch threads %d -> %d (other processes are using %s)", self.threads, wanted,
                     "cores" if wanted < self.threads else "fewer cores")  # fmt: skip
            torch.set_num_threads(wanted)
            self.threads = wanted
        return self.threads


def configure(probe_s: float = 0.2) -> int:
    """Set torch's thread count from the load seen over ``probe_s`` seconds now; returns it."""
    cores, fixed = available_cores(), fixed_threads()
    if fixed is not None:
        torch.set_num_threads(fixed)
        return fixed
    before = CpuSample.take()
    if before is None:
        return torch.get_num_threads()
    time.sleep(probe_s)
    after = CpuSample.take()
    threads = threads_for(free_cores(before, after, cores), cores) if after is not None else cores
    torch.set_num_threads(threads)
    log.info("torch threads: %d of %d cores", threads, cores)
    return threads
