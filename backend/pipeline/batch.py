"""A folder of clips -> one motion file per clip, on every core, resumable: ``python -m backend batch``.

Worker processes (``jobs`` of them, started once) keep torch, the learned models and the body model
loaded between clips (``models.Loaded``), so a clip pays its own work only. Each clip is one task: a
clip whose motion file is already there and newer than the video is skipped (rerun the batch after an
interruption and only the rest run; ``force`` redoes all); a clip that fails with an internal error is
tried once more (a clip the pipeline refuses, ``BadInput``, is not: its message says what to fix). The
results, per clip, are written to ``OUT/batch_summary.json`` (atomically) and logged.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backend.config import EstimateConfig
from backend.errors import BadInput
from backend.io.atomic import atomic_path
from backend.pipeline.models import Loaded

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
SUMMARY = "batch_summary.json"


@dataclass
class ClipOutcome:
    """What happened to one clip."""

    video: str
    motion: str
    status: str = "pending"
    """``done``, ``skipped`` (already converted), ``failed`` or ``refused`` (bad input: not retried)."""
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    worker: int = 0
    """The id of the worker process that ran it (workers are reused from clip to clip)."""


def find_clips(folder: Path) -> list[Path]:
    """The video files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def motion_paths(clips: Sequence[Path], out_folder: Path) -> dict[Path, Path]:
    """``OUT/<stem>.motion.npz`` per clip, or ``<stem>_<ext>`` where two clips share a stem (any case)."""
    stems = [c.stem.lower() for c in clips]
    return {
        c: out_folder / (f"{c.stem}.motion.npz" if stems.count(c.stem.lower()) == 1 else
                         f"{c.stem}_{c.suffix.lstrip('.').lower()}.motion.npz")
        for c in clips
    }  # fmt: skip


def is_done(video: Path, motion: Path) -> bool:
    """The clip's motion file exists and is newer than the clip."""
    return motion.is_file() and motion.stat().st_mtime >= video.stat().st_mtime


@functools.cache
def _loaded() -> Loaded:
    """This worker process's models, loaded by its first clip and kept for the next ones."""
    return Loaded()


def run_clip(video: str, motion: str, config: EstimateConfig) -> tuple[float, list[str], int]:
    """One clip in a worker process: (seconds, warnings, the worker's process id)."""
    from backend.pipeline import estimate

    clock = time.perf_counter()
    summary = estimate(Path(video), Path(motion), config, None, lambda e: None, lambda: False, _loaded())
    return time.perf_counter() - clock, summary.warnings, os.getpid()


def record_outcome(outcome: ClipOutcome, future_result: Callable[[], tuple[float, list[str], int]]) -> bool:
    """Fill ``outcome`` from a finished task; True when it should be tried again."""
    outcome.attempts += 1
    try:
        outcome.seconds, outcome.warnings, outcome.worker = future_result()
        outcome.status, outcome.error = "done", ""
        return False
    except BadInput as exc:
        outcome.status, outcome.error = "refused", str(exc)
        return False
    except Exception as exc:  # noqa: BLE001 - one clip's failure must not stop the batch
        outcome.status, outcome.error = "failed", f"{type(exc).__name__}: {exc}"
        return outcome.attempts < 2


def plan(folder: Path, out_folder: Path, force: bool) -> tuple[list[ClipOutcome], list[ClipOutcome]]:
    """Every clip's outcome (already converted ones marked ``skipped`` unless ``force``) and those to run."""
    out_folder.mkdir(parents=True, exist_ok=True)
    outcomes = [ClipOutcome(str(v), str(m)) for v, m in motion_paths(find_clips(folder), out_folder).items()]
    todo = []
    for outcome in outcomes:
        if not force and is_done(Path(outcome.video), Path(outcome.motion)):
            outcome.status = "skipped"
        else:
            todo.append(outcome)
    return outcomes, todo


def finished(outcome: ClipOutcome, future_result: Callable[[], tuple[float, list[str], int]]) -> bool:
    """Record a finished task (:func:`record_outcome`) and log it; True when it should run once more."""
    again = record_outcome(outcome, future_result)
    if again:
        log.warning("%s failed (%s); trying once more", Path(outcome.video).name, outcome.error)
    else:
        log.info("%s: %s%s", Path(outcome.video).name, outcome.status,
                 f" ({outcome.error})" if outcome.error else f" in {outcome.seconds:.1f} s")  # fmt: skip
    return again


def run_batch(
    folder: Path, out_folder: Path, config: EstimateConfig, jobs: int = 0, force: bool = False
) -> list[ClipOutcome]:
    """Convert every clip of ``folder`` into ``out_folder`` with ``jobs`` worker processes (0: one per
    core); returns one outcome per clip and writes the summary."""
    outcomes, todo = plan(folder, out_folder, force)
    jobs = min(jobs or (os.cpu_count() or 1), max(len(todo), 1))
    log.info("%d clip(s), %d to convert with %d worker(s)", len(outcomes), len(todo), jobs)
    if config.detect.workers == 0 and jobs > 1:  # the clips share the cores: no detection threads on top
        share = max(1, (os.cpu_count() or 1) // jobs)
        config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, workers=share))
    if todo:
        context = multiprocessing.get_context("spawn")  # MediaPipe and torch do not survive fork
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            pending = {pool.submit(run_clip, o.video, o.motion, config): o for o in todo}
            while pending:
                future = next(as_completed(pending))
                outcome = pending.pop(future)
                if finished(outcome, future.result):
                    pending[pool.submit(run_clip, outcome.video, outcome.motion, config)] = outcome
    write_summary(out_folder / SUMMARY, outcomes)
    return outcomes


def write_summary(path: Path, outcomes: Sequence[ClipOutcome]) -> None:
    """The outcomes as JSON, written atomically."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "refused")}
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps({"counts": counts, "clips": [asdict(o) for o in outcomes]}, indent=2))
    log.info("batch: %s (details: %s)", ", ".join(f"{n} {s}" for s, n in counts.items() if n), path)
