"""The stage runner: Adam with warm-up and cosine decay, early stopping, NaN rollback, progress, cancel.

One stage optimises a group of parameters against a loss closure. Every ``SNAPSHOT_EVERY`` steps the
losses are read back at once: a non-finite loss or parameter rolls the parameters back to the last
snapshot, resets Adam's moments and halves the step size for the rest of the stage; otherwise a new
snapshot is taken and early stopping is checked. A stage with no finite stretch keeps the parameters
it started from, with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from backend import protocol
from backend.errors import Cancelled

WARMUP_STEPS = 10
"""Steps of linear warm-up, at most (and at most a fifth of the stage)."""
FINAL_LR_FRACTION = 0.1
"""The cosine decay ends at this fraction of the stage's step size."""
SNAPSHOT_EVERY = 10
"""Steps between snapshots of the parameters (NaN rollback) and early-stopping checks."""
PLATEAU_WINDOW = 10
"""Early stopping compares the loss with the one this many steps earlier..."""
MIN_STEPS_BEFORE_STOP = 30
"""...once at least this many steps were taken."""
NAN_STEP_FACTOR = 0.5
"""After a non-finite loss, the step size is multiplied by this."""

LossFn = Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class StageOutcome:
    """What one stage did."""

    evaluations: int = 0
    losses: list[float] = field(default_factory=list)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    unstable: bool = False
    """The stage ended non-finite and its parameters were rolled back."""

    @property
    def loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def _lr_lambda(iters: int) -> Callable[[int], float]:
    warmup = max(1, min(WARMUP_STEPS, iters // 5))

    def factor(i: int) -> float:
        decay = (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * i / iters))
        return min(1.0, (i + 1) / warmup) * (FINAL_LR_FRACTION + decay)

    return factor


def _restore(group: list[torch.nn.Parameter], snapshot: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, s in zip(group, snapshot, strict=True):
            p.copy_(s)


def _finite(group: list[torch.nn.Parameter]) -> torch.Tensor:
    """A device bool: every parameter of ``group`` is finite (no host transfer)."""
    return torch.stack([torch.isfinite(p).all() for p in group]).all()


def run_stage(
    group: list[torch.nn.Parameter],
    iters: int,
    lr: float,
    loss_fn: LossFn,
    rel_tol: float,
    on_step: Callable[[int], None],
    is_cancelled: protocol.CancelCheck,
) -> StageOutcome:
    """Optimise ``group`` for up to ``iters`` steps of ``loss_fn``; ``on_step(i)`` after each step.

    The losses stay on the device and are read back once every ``SNAPSHOT_EVERY`` steps (one transfer
    for the lot, not one per step: on a GPU each read waits for the device), when the snapshot, the
    NaN rollback and early stopping are decided.
    """
    outcome = StageOutcome()
    optim = torch.optim.Adam(group, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, _lr_lambda(iters))
    snapshot = [p.detach().clone() for p in group]
    pending: list[torch.Tensor] = []
    for it in range(iters):
        if is_cancelled():
            raise Cancelled()
        optim.zero_grad(set_to_none=True)
        loss, outcome.terms = loss_fn()
        outcome.evaluations += 1
        loss.backward()
        optim.step()
        sched.step()
        pending.append(loss.detach())
        on_step(it)
        if len(pending) < SNAPSHOT_EVERY and it < iters - 1:
            continue
        values = torch.cat([torch.stack(pending), _finite(group)[None].to(pending[0].dtype)]).tolist()
        pending.clear()
        if not all(math.isfinite(v) for v in values) or values[-1] != 1.0:  # roll back, smaller steps
            _restore(group, snapshot)
            optim.state.clear()
            sched.base_lrs = [base * NAN_STEP_FACTOR for base in sched.base_lrs]
            continue
        outcome.losses.extend(values[:-1])
        snapshot = [p.detach().clone() for p in group]
        history = outcome.losses
        before = history[-PLATEAU_WINDOW - 1] if len(history) > PLATEAU_WINDOW else math.inf
        if len(history) > MIN_STEPS_BEFORE_STOP and before - history[-1] < rel_tol * abs(before):
            break
    if not outcome.losses or not bool(_finite(group)):
        _restore(group, snapshot)
        outcome.unstable = True
    return outcome
