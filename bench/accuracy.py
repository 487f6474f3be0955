"""The accuracy bench: render (cached) -> estimate -> metrics, per case and over all cases.

Three methods are scored against the exact ground truth, on the 21 keypoints that have a
MediaPipe counterpart and on frames where the ground-truth person is fully in view and the
pipeline's ``valid`` is true:

- ``pipeline``: the fitted body's keypoints (motion file ``keypoints3d``, camera frame);
- ``detector``: MediaPipe's own world landmarks (``keypoints3d_detector``; its 2D error is that
  of ``keypoints2d``);
- ``lifter``: the lift stage's root-relative output (``keypoints3d_lifted``; no 2D error).

Per-frame errors are pooled over all evaluated frames of all cases for the overall numbers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import backend
from backend import protocol
from backend.config import (
    DecodeConfig,
    EstimateConfig,
    FitConfig,
    LiftConfig,
    Preset,
    preset_detect,
    preset_fit,
)
from backend.detect.keypoints import mediapipe_to_keypoints
from backend.geometry.skeleton import MEDIAPIPE_INDEX
from backend.io import motion as motion_io
from backend.io.atomic import atomic_path
from bench import metrics
from bench.cases import BenchCase, cases_for, pose_case
from bench.feet import foot_metrics
from bench.render import RenderedCase, rendered_case

log = logging.getLogger(__name__)

METHODS = ("pipeline", "detector", "lifter")
METRICS = ("pa_mpjpe_mm", "mpjpe_mm", "accel_mm", "reprojection_px")
EVAL_KEYPOINTS = np.flatnonzero(np.array(MEDIAPIPE_INDEX) >= 0)
"""The 21 keypoints with a MediaPipe counterpart."""


@dataclass(frozen=True)
class BenchConfig:
    """What to run: the case subset, how many of its cases, and the estimate settings."""

    subset: str = "ci"
    max_cases: int | None = None
    lifter: str = LiftConfig().method
    lifter_weights: str | None = None
    fusion_weight: float = LiftConfig().fusion_weight
    agreement_m: float = LiftConfig().agreement_m
    fit: FitConfig | None = None
    """None: the preset's."""
    preset: Preset = "balanced"
    device: str = "auto"
    cache_dir: Path | None = None
    """Rendered clips; None: ``default_cache_dir().parent / "bench"``."""
    motion_dir: Path | None = None
    """Where the motion files go; None: a temporary folder removed afterwards."""
    camera_motion: bool = True
    """False: estimate as if every camera stood still (the fit before camera motion was estimated)."""

    def cases(self) -> tuple[BenchCase, ...]:
        cases = cases_for(self.subset)
        return cases[: self.max_cases] if self.max_cases is not None else cases


@dataclass
class MethodErrors:
    """Per-frame errors of one method on one case (empty arrays when not available).

    pa_mpjpe_mm, mpjpe_mm, reprojection_px: (N,) over evaluated frames; accel_mm: (M,) over
    interior frames whose neighbours are evaluated too.
    """

    pa_mpjpe_mm: np.ndarray
    mpjpe_mm: np.ndarray
    accel_mm: np.ndarray
    reprojection_px: np.ndarray | None

    def summary(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {name: _mean(getattr(self, name)) for name in METRICS}
        out["frames"] = int(len(self.pa_mpjpe_mm))
        return out


def _mean(values: np.ndarray | None) -> float | None:
    if values is None or len(values) == 0:
        return None
    return round(float(np.mean(values)), 2)


def score(
    pred3d: np.ndarray, gt3d: np.ndarray, mask: np.ndarray, pred2d: np.ndarray | None, gt2d: np.ndarray
) -> MethodErrors:
    """Errors of one method: pred3d, gt3d (T, 21, 3) metres; mask (T,) bool; pred2d, gt2d (T, 21, 2) px."""
    reproj = None if pred2d is None else metrics.reprojection_error(pred2d[mask], gt2d[mask])
    root = _eval_root()
    if not mask.any():
        return MethodErrors(np.zeros(0), np.zeros(0), np.zeros(0), None if pred2d is None else np.zeros(0))
    accel = metrics.accel_error(pred3d, gt3d, mask, root) * 1000.0
    return MethodErrors(
        pa_mpjpe_mm=metrics.pa_mpjpe(pred3d[mask], gt3d[mask]) * 1000.0,
        mpjpe_mm=metrics.mpjpe_root_aligned(pred3d[mask], gt3d[mask], root) * 1000.0,
        accel_mm=accel[np.isfinite(accel)],
        reprojection_px=reproj,
    )


def _eval_root() -> tuple[int, int]:
    """Indices of the left and right hip among `EVAL_KEYPOINTS`."""
    keep = list(EVAL_KEYPOINTS)
    return keep.index(metrics.MID_HIP[0]), keep.index(metrics.MID_HIP[1])


def evaluate_person(
    person: motion_io.PersonMotion, intrinsics: np.ndarray, truth: RenderedCase
) -> tuple[dict[str, MethodErrors | None], dict[str, float | int]]:
    """Score the three methods of one person against the ground truth.

    Returns ({method: errors or None when the motion file lacks its array}, frame counts/shares).
    """
    index = person["frame_index"].astype(np.int64)
    valid = person["valid"].astype(bool)
    gt3d = truth.keypoints3d[index][:, EVAL_KEYPOINTS].astype(np.float64)
    gt2d = truth.keypoints2d[index][:, EVAL_KEYPOINTS].astype(np.float64)
    in_view = truth.in_view[index]
    mask = in_view & valid
    fitted = person["keypoints3d"][:, EVAL_KEYPOINTS].astype(np.float64)
    results: dict[str, MethodErrors | None] = {
        "pipeline": score(fitted, gt3d, mask, metrics.project_points(fitted, intrinsics), gt2d)
    }
    arrays = person.arrays
    if "keypoints3d_detector" in arrays:
        det3d, _ = mediapipe_to_keypoints(arrays["keypoints3d_detector"][..., :3])
        det2d, _ = mediapipe_to_keypoints(arrays["keypoints2d"][..., :2])
        results["detector"] = score(
            det3d[:, EVAL_KEYPOINTS].astype(np.float64), gt3d, mask, det2d[:, EVAL_KEYPOINTS], gt2d
        )
    else:
        results["detector"] = None
    lifted = arrays.get("keypoints3d_lifted")
    results["lifter"] = (
        None
        if lifted is None
        else score(lifted[:, EVAL_KEYPOINTS].astype(np.float64), gt3d, mask, None, gt2d)
    )
    counts = {
        "frames": int(len(index)),
        "in_view_share": round(float(in_view.mean()), 3),
        "valid_share": round(float(valid.mean()), 3),
        "evaluated_frames": int(mask.sum()),
    }
    return results, counts


def estimate_config(case: BenchCase, config: BenchConfig) -> EstimateConfig:
    """The estimate settings of a case: the preset, the lifter, and the case's true focal length."""
    return EstimateConfig(
        preset=config.preset,
        device=config.device,
        decode=DecodeConfig(focal_px=case.focal_px),
        detect=dataclasses.replace(preset_detect(config.preset), camera_motion=config.camera_motion),
        lift=LiftConfig(method=config.lifter, weights=config.lifter_weights, fusion_weight=config.fusion_weight,  # type: ignore[arg-type]
                        agreement_m=config.agreement_m),  # fmt: skip
        fit=config.fit or preset_fit(config.preset),
    )


def _log_events(event: protocol.Event) -> None:
    if event.get("event") == "stage":
        log.debug("  stage %s", event.get("name"))


def evaluate_feet(person: motion_io.PersonMotion, truth_world: np.ndarray, in_view: np.ndarray) -> dict:
    """Foot metrics (``bench/feet.py``) of one person in world space against the case's true world."""
    index = person["frame_index"].astype(np.int64)
    frames = in_view[index] & person["valid"].astype(bool)
    return foot_metrics(person["keypoints3d_world"].astype(np.float64), truth_world[index], frames)


def run_case(
    case: BenchCase, truth: RenderedCase, config: BenchConfig, motion_dir: Path, truth_world: np.ndarray
) -> dict[str, object]:
    """Estimate one rendered case and score it; returns its report entry."""
    from backend.pipeline import estimate

    out = motion_dir / f"{case.name}.motion.npz"
    clock = time.perf_counter()
    summary = estimate(truth.video, out, estimate_config(case, config), None, _log_events, lambda: False)
    seconds = time.perf_counter() - clock
    motion = motion_io.load(out)
    errors, counts = evaluate_person(motion.person(), np.array(motion.meta["intrinsics"]), truth)
    return {
        "case": case.to_dict(),
        "video": str(truth.video),
        "lifter": motion.meta.get("lifter"),
        "estimate_s": round(seconds, 2),
        **counts,
        "methods": {m: (None if e is None else e.summary()) for m, e in errors.items()},
        "pipeline_metrics": summary.metrics,
        "feet": evaluate_feet(motion.person(), truth_world, truth.in_view),
        "_errors": errors,
    }


def pooled(entries: list[dict[str, object]]) -> dict[str, dict[str, float | int | None] | None]:
    """Per method, the metrics over all evaluated frames of all cases (None if no case has it)."""
    out: dict[str, dict[str, float | int | None] | None] = {}
    for method in METHODS:
        errs = [e["_errors"][method] for e in entries if e["_errors"][method] is not None]  # type: ignore[index]
        if not errs:
            out[method] = None
            continue
        cat = {
            name: None
            if any(getattr(x, name) is None for x in errs)
            else np.concatenate([getattr(x, name) for x in errs])
            for name in METRICS
        }
        out[method] = MethodErrors(**cat).summary()
    return out


FEET = ("skating_mm", "truth_skating_mm", "penetration_mm", "floating_mm", "root_path_mm")


def pooled_feet(entries: list[dict[str, object]]) -> dict[str, float | None]:
    """Foot metrics over all cases, weighted by evaluated frames (None where no case has one)."""
    out: dict[str, float | None] = {}
    for name in FEET:
        pairs = [(e["feet"][name], e["evaluated_frames"]) for e in entries if e["feet"][name] is not None]  # type: ignore[index]
        out[name] = round(sum(v * w for v, w in pairs) / sum(w for _, w in pairs), 2) if pairs else None
    return out


def feet_table(entries: list[dict[str, object]], overall: dict[str, float | None]) -> str:
    """Per case and over all: skating, penetration, floating (mm/frame, mm, mm) and root path error (mm)."""
    lines = ["| case | foot skating (mm/frame) | truth's own (mm/frame) | penetration (mm) | floating (mm) | root path error (mm) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    rows = [(e["case"]["name"], e["feet"]) for e in entries] + [("**all**", overall)]  # type: ignore[index]
    for name, feet in rows:
        cells = ["n/a" if feet[k] is None else f"{feet[k]:.1f}" for k in FEET]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(overall: dict[str, dict[str, float | int | None] | None]) -> str:
    """A markdown table: one row per method, one column per metric."""
    head = "| method | PA-MPJPE (mm) | MPJPE, root-aligned (mm) | accel error (mm/frame²) | 2D error (px) | frames |"
    lines = [head, "|---|---|---|---|---|---|"]
    for method in METHODS:
        row = overall.get(method)
        if row is None:
            lines.append(f"| {method} | n/a | n/a | n/a | n/a | 0 |")
            continue
        cells = ["n/a" if row[k] is None else f"{row[k]:.1f}" for k in METRICS]
        lines.append(f"| {method} | {' | '.join(cells)} | {row['frames']} |")
    return "\n".join(lines)


def case_table(entries: list[dict[str, object]]) -> str:
    """A markdown table: one row per case, PA-MPJPE / root-aligned MPJPE (mm) of each method."""
    head = (
        "| case | evaluated / frames | valid | " + " | ".join(f"{m} PA / MPJPE (mm)" for m in METHODS) + " |"
    )
    lines = [head, "|---|---|---|" + "---|" * len(METHODS)]
    for e in entries:
        cells = []
        for method in METHODS:
            row = e["methods"][method]  # type: ignore[index]
            if row is None or row["pa_mpjpe_mm"] is None:
                cells.append("n/a")
            else:
                cells.append(f"{row['pa_mpjpe_mm']:.1f} / {row['mpjpe_mm']:.1f}")
        name = e["case"]["name"]  # type: ignore[index]
        lines.append(f"| {name} | {e['evaluated_frames']} / {e['frames']} | {100 * e['valid_share']:.0f}% | "  # type: ignore[operator]
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def _body_factory() -> Callable[[], object]:
    """A loader that builds the Anny body on first use and then returns the same one."""
    held: list[object] = []

    def get() -> object:
        if not held:
            from backend.body.anny_body import AnnyBody

            held.append(AnnyBody())
        return held[0]

    return get


def run_accuracy(config: BenchConfig, report_path: Path | None) -> dict[str, object]:
    """Run the bench; writes the JSON report atomically to `report_path` if given and returns it."""
    from backend.train.data import DataConfig, default_cache_dir, load_clipset

    cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir().parent / "bench"
    clock = time.perf_counter()
    clips = load_clipset("test", DataConfig())
    body = _body_factory()
    entries: list[dict[str, object]] = []
    render_s = 0.0
    with tempfile.TemporaryDirectory(prefix="bench_motion_") as tmp:
        motion_dir = Path(config.motion_dir) if config.motion_dir else Path(tmp)
        motion_dir.mkdir(parents=True, exist_ok=True)
        for case in config.cases():
            start = time.perf_counter()
            truth = rendered_case(case, clips, cache, body)
            render_s += time.perf_counter() - start
            log.info("case %s: estimating %s", case.name, truth.video)
            truth_world = pose_case(case, clips, body()).world_keypoints
            entry = run_case(case, truth, config, motion_dir, truth_world)
            log.info("case %s: %d/%d frames evaluated (valid %.0f%%, in view %.0f%%), estimate %.1f s",
                     case.name, entry["evaluated_frames"], entry["frames"], 100 * entry["valid_share"],
                     100 * entry["in_view_share"], entry["estimate_s"])  # fmt: skip
            entries.append(entry)
    overall = pooled(entries)
    overall_feet = pooled_feet(entries)
    table = markdown_table(overall)
    per_case = case_table(entries)
    report = {
        "bench": "accuracy",
        "software_version": backend.__version__,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()},
        "cache_dir": str(cache),
        "keypoints": "the 21 keypoints with a MediaPipe counterpart",
        "units": {
            "pa_mpjpe_mm": "mm",
            "mpjpe_mm": "mm (mid-hip aligned)",
            "accel_mm": "mm/frame^2",
            "reprojection_px": "px",
        },  # fmt: skip
        "overall": overall,
        "feet": overall_feet,
        "cases": [{k: v for k, v in e.items() if k != "_errors"} for e in entries],
        "timings_s": {"total": round(time.perf_counter() - clock, 1), "render": round(render_s, 1)},
        "table_markdown": table,
        "cases_table_markdown": per_case,
    }
    log.info("accuracy per case:\n%s", per_case)
    log.info("accuracy over %d case(s), subset %s:\n%s", len(entries), config.subset, table)
    log.info("feet per case:\n%s", feet_table(entries, overall_feet))
    if report_path is not None:
        with atomic_path(Path(report_path), suffix=".json") as tmp_path:
            tmp_path.write_text(json.dumps(report, indent=1, default=_json_default))
        log.info("wrote %s", report_path)
    return report


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
