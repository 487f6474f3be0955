"""The batch across machines on Ray (an optional extra: ``pip install -e .[ray]``).

Same clips, names, skipping, retry and summary as ``pipeline/batch.py``; one Ray task per clip instead
of a local worker process. Ray's worker processes are reused from task to task, so each keeps its
loaded models (``batch._loaded``) as the local workers do. Every machine of the cluster must see the
clips and the output folder at the same paths (a shared disk) and have this project installed.
``address``: ``local`` starts a Ray instance on this machine for the batch; anything else is passed to
``ray.init`` (``auto``: the cluster this machine belongs to, or ``ray://host:10001``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from backend.config import EstimateConfig
from backend.errors import BadInput
from backend.pipeline.batch import SUMMARY, ClipOutcome, finished, plan, run_clip, write_summary

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BadInput("--ray needs Ray: install it with `pip install -e .[ray]` (or `pip install ray`).") from exc
    return ray


def _result(ray: Any, ref: Any) -> Any:
    """``ray.get(ref)``, raising the task's own exception (BadInput stays BadInput)."""

    def get() -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None

    return get


def run_batch_ray(
    folder: Path, out_folder: Path, config: EstimateConfig, address: str = "local", force: bool = False
) -> list[ClipOutcome]:
    """Convert every clip of ``folder`` into ``out_folder`` with one Ray task per clip; returns one outcome
    per clip and writes the summary (see the module doc)."""
    ray = _ray()
    outcomes, todo = plan(folder, out_folder, force)
    started = False
    if todo and not ray.is_initialized():
        ray.init(address=None if address == "local" else address, logging_level=logging.WARNING)
        started = True
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_clip)  # retried here, once, for internal errors only
        pending = {task.remote(o.video, o.motion, config): o for o in todo}
        log.info("%d clip(s), %d to convert on Ray (%s)", len(outcomes), len(todo),
                 ray.cluster_resources() if todo else "")  # fmt: skip
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            outcome = pending.pop(ref)
            if finished(outcome, _result(ray, ref)):
                pending[task.remote(outcome.video, outcome.motion, config)] = outcome
    finally:
        if started:
            ray.shutdown()
    write_summary(out_folder / SUMMARY, outcomes)
    return outcomes
