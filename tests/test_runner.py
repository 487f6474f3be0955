"""The stage runner: converges, rolls back non-finite steps, and reads the device back only once every
``SNAPSHOT_EVERY`` steps (the fit's tensors stay on the device; a GPU is not waited on at every step)."""

from __future__ import annotations

import collections
import math
import traceback

import torch
from torch.overrides import TorchFunctionMode

from backend.config import FitConfig, FitSchedule
from backend.fit import runner
from backend.fit.optimize import TemporalFitter
from backend.fit.runner import SNAPSHOT_EVERY, run_stage
from tests.test_fit import _synthetic

_READS = {"__bool__", "__float__", "__int__", "__index__", "item", "cpu", "numpy", "tolist"}


class DeviceReads(TorchFunctionMode):
    """Counts the tensor -> host reads made by the project's code (not torch's own, e.g. Adam's step
    counters, which live on the CPU), by the line that made them."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if getattr(func, "__name__", "") in _READS:
            frames = [f for f in traceback.extract_stack()[:-1]
                      if not f.filename.endswith(("torch/_tensor.py", "torch/overrides.py"))]  # fmt: skip
            caller = frames[-1]  # who asked: our code, or torch's own (Adam's step counters)
            if "/backend/" in caller.filename:
                self.reads[f"{caller.filename.rsplit('/backend/', 1)[1]}:{caller.lineno}"] += 1
        return func(*args, **(kwargs or {}))


def _quadratic(target: torch.Tensor, nan_at: set[int] | None = None):
    x = torch.nn.Parameter(torch.zeros_like(target))
    calls = iter(range(10_000))

    def loss_fn():
        i = next(calls)
        value = ((x - target) ** 2).sum()
        return (value * math.nan if nan_at and i in nan_at else value), {}

    return x, loss_fn


def test_stage_converges_and_rolls_back_non_finite_steps() -> None:
    target = torch.tensor([1.0, -2.0, 0.5])
    x, loss_fn = _quadratic(target)
    outcome = run_stage([x], 300, 0.3, loss_fn, -1.0, lambda i: None, lambda: False)
    assert torch.allclose(x, target, atol=0.05) and not outcome.unstable
    y, bad = _quadratic(target, nan_at={15, 16})  # a bad stretch: rolled back to the step-10 snapshot
    outcome = run_stage([y], 300, 0.3, bad, -1.0, lambda i: None, lambda: False)
    assert torch.isfinite(y).all() and torch.allclose(y, target, atol=0.05) and not outcome.unstable
    assert all(math.isfinite(v) for v in outcome.losses)
    z, always = _quadratic(target, nan_at=set(range(10_000)))
    outcome = run_stage([z], 50, 0.1, always, 0.0, lambda i: None, lambda: False)
    assert outcome.unstable and torch.equal(z.detach(), torch.zeros(3))  # kept where it started


def test_the_fit_reads_the_device_once_every_snapshot_not_every_step(anny_body) -> None:
    inputs, *_ = _synthetic(anny_body, t=12)
    reads = []
    for iters in (20, 40):
        cfg = FitConfig(schedule=FitSchedule(iters_global=iters, iters_pose3d=iters, iters_body=iters,
                                             iters_all=iters, iters_contact=0, rel_tol=0.0))  # fmt: skip
        counter = DeviceReads()
        original = runner.run_stage

        def counted(*args, counter=counter, original=original, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            with counter:
                return original(*args, **kwargs)

        import backend.fit.optimize as optimize

        optimize.run_stage = counted
        try:
            TemporalFitter(anny_body, cfg, torch.device("cpu")).fit(inputs, lambda e: None, lambda: False)
        finally:
            optimize.run_stage = original
        reads.append(counter.reads)
    per_stage_snapshots = {20: 20 // SNAPSHOT_EVERY, 40: 40 // SNAPSHOT_EVERY}
    for (iters, count) in zip((20, 40), reads, strict=True):
        assert sum(count.values()) <= 4 * (per_stage_snapshots[iters] + 1), count  # 4 stages
    assert sum(reads[1].values()) < 2 * sum(reads[0].values())  # not proportional to the steps
