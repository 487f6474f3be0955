"""torch's thread count follows the cores other processes leave free (``backend/threads.py``)."""

from __future__ import annotations

import torch

from backend import threads
from backend.threads import CpuSample


def test_free_cores_leave_out_this_process_own_use() -> None:
    before = CpuSample(busy=100.0, total=400.0, own=10.0, wall=50.0)
    # 2 s: the machine was busy 3.8 core-seconds, 1.9 of them this process's: others used ~1 core
    after = CpuSample(busy=103.8, total=404.0, own=11.9, wall=52.0)
    assert abs(threads.free_cores(before, after, 2) - 1.05) < 1e-9
    assert threads.threads_for(1.05, 2) == 1 and threads.threads_for(1.6, 2) == 2 and threads.threads_for(0.0, 2) == 1
    idle = CpuSample(busy=103.9, total=408.0, own=15.7, wall=54.0)  # only this process ran
    assert threads.free_cores(after, idle, 2) == 2.0


def test_governor_drops_to_one_thread_under_load_and_comes_back(monkeypatch) -> None:
    samples = iter([
        CpuSample(0.0, 0.0, 0.0, 0.0),
        CpuSample(4.0, 4.0, 2.0, 2.0),  # others used 1 core
        CpuSample(8.0, 8.0, 6.0, 4.0),  # only us
    ])  # fmt: skip
    monkeypatch.setattr(CpuSample, "take", staticmethod(lambda: next(samples)))
    monkeypatch.setattr(threads.time, "monotonic", lambda: 1e9)  # every poll is due
    monkeypatch.delenv(threads.ENV, raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        governor = threads.Governor(cores=2)
        assert governor.poll() == 1 and torch.get_num_threads() == 1
        assert governor.poll() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_fixed_thread_count_is_kept(monkeypatch) -> None:
    monkeypatch.setenv(threads.ENV, "1")
    before = torch.get_num_threads()
    try:
        assert threads.configure(probe_s=0.0) == 1 and torch.get_num_threads() == 1
        governor = threads.Governor(cores=2)
        assert governor.poll() == 1 and governor.sample is None
    finally:
        torch.set_num_threads(before)
