"""The real-footage bench: ``python -m backend bench real`` on ``../shared/realbench/`` (read its README).

Each view of a real person filmed by calibrated cameras runs through the whole estimate pipeline as a
user's monocular clip (no intrinsics unless a row says so) and is scored against the ground truth
triangulated from the other cameras, on MediaPipe's 12 joints (shoulders, elbows, wrists, hips, knees,
ankles), over the frames where the pipeline saw the subject:

- PA-MPJPE: similarity Procrustes per frame (rotation, translation, scale);
- limbs: the same alignment, error over elbows, wrists, knees and ankles only;
- RA-MPJPE: rotation and translation only (body size counts);
- acceleration error: second differences of mid-hip-relative joints, mm/frame^2 at the clip's rate;
- foot skating: mean speed (mm/frame) of the predicted ankles, camera frame (the cameras stand still),
  over frames where the ground-truth ankle is still (below ``STILL_MM_PER_FRAME``); rows with absolute
  positions only (the fitted pipelines).

Rows: the default pipeline; each lifter alone (the learned lifter's output, MediaPipe's world landmarks
of the same run); ``--lifter mediapipe``; MediaPipe's world landmarks as the realbench computed them
(the reference); the pipeline with the calibrated intrinsics when asked; and two oracle rows, the default
with the truth's bone lengths and with the truth's depth order (``real_oracle``: what is left to gain from
proportions and from the monocular depth ambiguity).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend import protocol
from backend.config import (
    DecodeConfig,
    EstimateConfig,
    FitConfig,
    LiftConfig,
    Preset,
    TrackConfig,
    preset_detect,
    preset_fit,
)
from backend.detect.types import MP_BODY_NAMES
from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.io import motion as motion_io
from backend.io.atomic import atomic_path
from bench import metrics, real_oracle

log = logging.getLogger(__name__)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "realbench"
VIEWS = ("cam01", "cam03")
LIMBS = ("left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_knee", "right_knee", "left_ankle",
         "right_ankle")  # fmt: skip
STILL_MM_PER_FRAME = 2.0
"""A ground-truth ankle moving less than this between two frames stands still."""
METRICS = ("pa_mm", "pa_limbs_mm", "ra_mm", "accel_mm", "skate_mm", "on_person_pct")
FOLLOW_FRACTION = 0.15
"""A frame is scored where the fitted person's 2D keypoints lie within this share of the true person's
image height of the truth's projection (on average): a track that turned into someone else is not
scored as a 3D error there (``on_person_pct`` says how much of the truth it followed)."""
ROW_LIFTERS = {"default": LiftConfig().method, "fused": "fused", "videopose": "videopose", "mediapipe": "mediapipe"}


@dataclass(frozen=True)
class View:
    """One camera's clip and its ground truth (camera frame, metres)."""

    name: str
    video: Path
    joints: np.ndarray
    """(T, 12, 3) in ``names`` order."""
    names: tuple[str, ...]
    intrinsics: np.ndarray
    fps: float
    mediapipe_world: np.ndarray | None
    """(T, 12, 3) the realbench's own MediaPipe world landmarks (the reference row), if it has them."""
    people: int = 1
    """People in the clip: with more than one, every one is fitted and the one whose 2D keypoints lie
    nearest the truth's projection is scored (the person a user would pick)."""

    def known(self) -> np.ndarray:
        """(T,) frames where the truth is known (a bench built from fewer views has NaN frames)."""
        return np.isfinite(self.joints).all(axis=(1, 2))


def load_views(folder: Path, names: tuple[str, ...] | None = None) -> list[View]:
    """The views of a realbench folder (``gt.npz`` and the videos): ``names``, else the file's ``views``, else
    the realbench's two."""
    gt_path = folder / "gt.npz"
    if not gt_path.is_file():
        raise FileNotFoundError(f"no realbench at {folder} (expected gt.npz and the videos; see its README)")
    with np.load(gt_path, allow_pickle=False) as gt:
        if not names:
            names = tuple(str(v) for v in gt["views"]) if "views" in gt.files else VIEWS
        joint_names = tuple(str(n) for n in gt["names"])
        return [
            View(v, folder / (str(gt[f"video_{v}"]) if f"video_{v}" in gt.files else f"{v}.mp4"),
                 gt[f"joints_{v}"].astype(np.float64), joint_names, gt[f"K_{v}"].astype(np.float64), float(gt["fps"]),
                 gt[f"mediapipe_world_{v}"].astype(np.float64) if f"mediapipe_world_{v}" in gt.files else None,
                 int(gt[f"people_{v}"]) if f"people_{v}" in gt.files else 1)
            for v in names
        ]  # fmt: skip


def select(points: np.ndarray, source_names: tuple[str, ...] | list[str], names: tuple[str, ...]) -> np.ndarray:
    """(T, 12, 3) the ``names`` joints of (T, N, 3) points named ``source_names``."""
    order = [list(source_names).index(n) for n in names]
    return np.asarray(points, np.float64)[:, order, :3]


def score(pred: np.ndarray, view: View, frames: np.ndarray, absolute: bool) -> dict[str, float | None]:
    """The bench's metrics of predictions (T, 12, 3) on the ``frames`` (T,) mask."""
    gt, p = view.joints[frames], pred[frames]
    aligned = metrics.procrustes_align(p, gt)
    per_joint = np.linalg.norm(aligned - gt, axis=-1) * 1000.0
    limbs = [view.names.index(n) for n in LIMBS]
    hips = (view.names.index("left_hip"), view.names.index("right_hip"))
    accel = metrics.accel_error(pred, view.joints, frames, root=hips) * 1000.0
    out: dict[str, float | None] = {
        "pa_mm": float(per_joint.mean()),
        "pa_limbs_mm": float(per_joint[:, limbs].mean()),
        "ra_mm": float(metrics.ra_mpjpe(p, gt).mean() * 1000.0),
        "accel_mm": float(np.nanmean(accel)) if np.isfinite(accel).any() else None,
        "skate_mm": None,
        "frames": int(frames.sum()),
        "on_person_pct": 100.0 * float(frames.sum()) / max(int(view.known().sum()), 1),
        "per_joint_pa_mm": dict(zip(view.names, np.round(per_joint.mean(0), 1).tolist(), strict=True)),
    }
    if absolute:
        out["skate_mm"] = foot_skating_mm(pred, view, frames)
    return out


def foot_skating_mm(pred: np.ndarray, view: View, frames: np.ndarray) -> float | None:
    """Mean predicted ankle speed (mm/frame) where the ground-truth ankle stands still."""
    ankles = [view.names.index("left_ankle"), view.names.index("right_ankle")]
    gt_speed = np.linalg.norm(np.diff(view.joints[:, ankles], axis=0), axis=-1) * 1000.0  # (T-1, 2)
    speed = np.linalg.norm(np.diff(pred[:, ankles], axis=0), axis=-1) * 1000.0
    both = frames[1:] & frames[:-1]
    still = (gt_speed < STILL_MM_PER_FRAME) & both[:, None]
    return float(speed[still].mean()) if still.any() else None


@dataclass(frozen=True)
class RealBenchConfig:
    """What to run: views, the estimate settings, and whether to add runs with the true intrinsics."""

    data: Path = DEFAULT_DATA
    views: tuple[str, ...] | None = None
    """None: the folder's own (``views`` in its ``gt.npz``), else the realbench's two."""
    preset: Preset = "balanced"
    fit: FitConfig | None = None
    """None: the preset's."""
    lifter_weights: str | None = None
    fusion_weight: float = LiftConfig().fusion_weight
    """Share of the learned lifter in the fused lift."""
    agreement_m: float = LiftConfig().agreement_m
    """The fused lift's agreement scale (``LiftConfig.agreement_m``; 0: off)."""
    intrinsics: str = "both"
    """"none": only runs without intrinsics; "true": only with the calibrated ones; "both"."""
    rows: tuple[str, ...] = ("default", "fused", "videopose", "mediapipe")
    """Pipeline runs by lifter: the default's, and each lifter's (a lifter is run once)."""

    def intrinsics_runs(self) -> tuple[bool, ...]:
        """Whether each run of a row gets the calibrated intrinsics."""
        return {"none": (False,), "true": (True,), "both": (False, True)}[self.intrinsics]

    def estimate_config(self, view: View, lifter: str, true_k: bool) -> EstimateConfig:
        lift = LiftConfig(method=lifter, weights=self.lifter_weights, fusion_weight=self.fusion_weight,  # type: ignore[arg-type]
                          agreement_m=self.agreement_m)  # fmt: skip
        return EstimateConfig(
            preset=self.preset, device="cpu",
            decode=DecodeConfig(focal_px=float(view.intrinsics[0, 0]) if true_k else None),
            detect=preset_detect(self.preset), lift=lift, fit=self.fit or preset_fit(self.preset),
            track=TrackConfig(person="all" if view.people > 1 else "auto"),
        )  # fmt: skip


def _estimate(view: View, config: EstimateConfig, folder: Path) -> tuple[str, motion_io.PersonMotion]:
    """Run the whole pipeline on one view; (the lift method it used, the subject's motion)."""
    from backend.pipeline import estimate

    out = folder / f"{view.name}.motion.npz"
    estimate(view.video, out, config, None, protocol.null_reporter, protocol.never_cancelled)
    motion = motion_io.load(out)
    return str(motion.meta.get("lifter")), min(motion.people, key=lambda person: image_distance(person, view))


def image_errors(person: motion_io.PersonMotion, view: View) -> np.ndarray:
    """(T,) mean pixel distance of a fitted person's 2D keypoints from the truth's projection, per
    frame, as a share of the true person's image height (NaN where either is missing)."""
    take, seen = _on_truth_frames(person, len(view.joints))
    detected = select(person["keypoints2d"][take], MP_BODY_NAMES, view.names)[..., :2]
    truth = metrics.project_points(view.joints, view.intrinsics)
    height = truth[..., 1].max(axis=1) - truth[..., 1].min(axis=1)
    error = np.linalg.norm(detected - truth, axis=-1).mean(axis=1) / np.maximum(height, 1.0)
    return np.where(seen & view.known(), error, np.nan)


def image_distance(person: motion_io.PersonMotion, view: View) -> float:
    """Median of `image_errors` (inf where the person never meets the truth)."""
    errors = image_errors(person, view)
    return float(np.nanmedian(errors)) if np.isfinite(errors).any() else float("inf")


def _on_truth_frames(person: motion_io.PersonMotion, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(the person's row of each of the view's n frames, the (n,) frames where the subject was seen)."""
    index = {int(f): i for i, f in enumerate(person["frame_index"])}
    take = np.array([index.get(t, 0) for t in range(n)])
    seen = np.array([t in index and bool(person["valid"][index[t]]) for t in range(n)])
    return take, seen


def run_view(view: View, config: RealBenchConfig) -> dict[str, dict]:
    """Every row of one view: {row label: metrics}."""
    rows: dict[str, dict] = {}
    n = len(view.joints)
    seen_by_default = np.ones(n, bool)
    methods = dict.fromkeys(ROW_LIFTERS[row] for row in config.rows)  # runs with the same lifter: once
    with tempfile.TemporaryDirectory() as tmp:
        for lifter in methods:
            row = "default" if lifter == LiftConfig().method else f"--lifter {lifter}"
            for true_k in config.intrinsics_runs():
                method, person = _estimate(view, config.estimate_config(view, lifter, true_k), Path(tmp))
                take, _ = _on_truth_frames(person, n)
                seen = image_errors(person, view) < FOLLOW_FRACTION  # NaN (unseen, truth unknown): False
                label = f"pipeline, {row}" + (", true intrinsics" if true_k else "")
                fitted = select(person["keypoints3d"][take], KEYPOINT_NAMES, view.names)
                rows[label] = score(fitted, view, seen, True)
                if true_k:
                    continue
                if method != "mediapipe":
                    lifted = select(person["keypoints3d_lifted"][take], KEYPOINT_NAMES, view.names)
                    rows[f"{method} lift alone"] = score(lifted, view, seen, False)
                if row == "default":
                    seen_by_default = seen
                    rows.update(oracle_rows(fitted, view, seen))
                    detector = select(person["keypoints3d_detector"][take], MP_BODY_NAMES, view.names)
                    rows["MediaPipe world landmarks (this run)"] = score(detector, view, seen, False)
    if view.mediapipe_world is not None:
        reference = score(view.mediapipe_world, view, seen_by_default, False)
        rows["MediaPipe world landmarks (realbench reference)"] = reference
    return rows


def oracle_rows(pred: np.ndarray, view: View, seen: np.ndarray) -> dict[str, dict]:
    """The default prediction (T, 12, 3) with the truth's bone lengths, and with its depth order
    (``real_oracle``): what proportions and the depth ambiguity still cost."""
    truth = np.where(seen[:, None, None], view.joints, np.nan)  # the scored frames only
    order, share = real_oracle.truth_depth_order(pred, truth, view.names)
    mirrored = score(order, view, seen, False)
    mirrored["flipped_pct"] = 100.0 * share
    log.info("%s: the default's depth order differs from the truth's in %.1f%% of limb bones", view.name, 100 * share)
    return {
        "oracle: default with the truth's bone lengths": score(
            real_oracle.truth_lengths(pred, truth, view.names), view, seen, False
        ),
        "oracle: default with the truth's depth order": mirrored,
    }


def pooled(per_view: dict[str, dict[str, dict]]) -> dict[str, dict[str, float | None]]:
    """Mean of each metric over the views, per row (weighted by scored frames, the share of frames on the
    person unweighted; None where a view lacks it)."""
    out: dict[str, dict[str, float | None]] = {}
    labels = dict.fromkeys(label for rows in per_view.values() for label in rows)
    for label in labels:
        entries = [rows[label] for rows in per_view.values() if label in rows]
        out[label] = {}
        for m in METRICS:
            pairs = [(e[m], e["frames"] if m != "on_person_pct" else 1) for e in entries if e.get(m) is not None]
            out[label][m] = sum(v * w for v, w in pairs) / sum(w for _, w in pairs) if pairs else None
    return out


def markdown_table(per_view: dict[str, dict[str, dict]]) -> str:
    """Rows x (PA per view, mean PA, limbs, RA, accel, skating)."""
    views, total = list(per_view), pooled(per_view)

    def f(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    head = ["method", *[f"PA-MPJPE {v}" for v in views], "PA-MPJPE mean", "limbs PA", "RA-MPJPE",
            "accel (mm/frame²)", "foot skating (mm/frame)", "on the person (%)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, mean in total.items():
        cells = [f(per_view[v].get(label, {}).get("pa_mm")) for v in views]
        cells += [f(mean[m]) for m in METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_real(config: RealBenchConfig, report_path: Path | None) -> dict[str, dict]:
    """Run every view, log the table, write the JSON report; return {view: {row: metrics}}."""
    per_view = {}
    for view in load_views(config.data, config.views):
        log.info("realbench %s: %d frames", view.name, len(view.joints))
        per_view[view.name] = run_view(view, config)
    table = markdown_table(per_view)
    log.info("real-footage bench (mm; ground truth noise floor about 16 mm PA-MPJPE):\n%s", table)
    if report_path is not None:
        report = {"config": dataclasses.asdict(config), "views": per_view, "pooled": pooled(per_view), "table": table}
        with atomic_path(Path(report_path), suffix=".json") as tmp:
            tmp.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return per_view
