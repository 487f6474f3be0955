"""The estimate pipeline: decode -> detect -> track -> lift -> fit -> write (+ preview).

Takes ``report(event)`` and ``is_cancelled()``; raises BadInput or Cancelled. Every output is
written atomically; outputs of a run that fails or is cancelled later are removed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import backend
from backend import protocol
from backend.body.anny_body import AnnyBody
from backend.body.skeleton import BODY_JOINTS, KEYPOINT_NAMES, MEDIAPIPE_INDEX
from backend.config import EstimateConfig
from backend.detect.run import detect_subjects
from backend.detect.types import MP_BODY_NAMES, SubjectTrack
from backend.export_rig import anny_rig_arrays
from backend.fit.optimize import FitInputs, FitResult, TemporalFitter
from backend.geometry import frames
from backend.io import motion as motion_io
from backend.io.atomic import check_writable_dir
from backend.io.video import VideoInfo, probe
from backend.lift.mediapipe_baseline import MediaPipeBaselineLifter, mediapipe_to_keypoints
from backend.preview import PreviewSource, write_preview

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "track", "lift", "fit", "write")


@dataclass
class EstimateSummary:
    motion_path: Path
    preview_paths: list[Path] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    fps: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from backend.errors import BadInput

        raise BadInput("--device cuda was asked for, but PyTorch sees no CUDA GPU: use --device cpu or auto.")
    return torch.device(name)


def mean_acceleration_mm(points: np.ndarray, valid: np.ndarray) -> float:
    """Mean norm of the second difference (mm/frame^2) of root-relative points (T, K, 3)
    over runs of three consecutive valid frames."""
    hips = [KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")]
    rel = points - points[:, hips].mean(1, keepdims=True)
    acc = rel[2:] - 2 * rel[1:-1] + rel[:-2]
    ok = valid[2:] & valid[1:-1] & valid[:-2]
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(acc[ok], axis=-1).mean() * 1000.0)


def _fit_inputs(
    track: SubjectTrack, lift_kp: np.ndarray, lift_conf: np.ndarray, k: np.ndarray, h: int
) -> FitInputs:
    kp2d, has = mediapipe_to_keypoints(track.body2d)
    conf2d = kp2d[..., 2].copy()
    conf2d[:, ~has] = 0.0
    conf2d[~track.valid] = 0.0
    return FitInputs(
        kp2d=kp2d[..., :2], conf2d=conf2d, lifted=lift_kp, conf3d=lift_conf,
        times=track.time_s, intrinsics=k, image_height=h,
    )  # fmt: skip


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: metrics that cannot be computed (e.g. jitter of a 2-frame clip) are None."""
    return float(value) if np.isfinite(value) else None


def _metrics(
    track: SubjectTrack, fit: FitResult, conf2d: np.ndarray, lifted_raw: np.ndarray
) -> dict[str, float]:
    kp2d, _ = mediapipe_to_keypoints(track.body2d)
    err = np.linalg.norm(fit.projected - kp2d[..., :2], axis=-1)
    good = conf2d > 0.5
    has = np.array(MEDIAPIPE_INDEX) >= 0
    return {
        "reprojection_median_px": _finite_or_none(np.median(err[good]) if good.any() else np.nan),
        "reprojection_mean_px": _finite_or_none(err[good].mean() if good.any() else np.nan),
        "accel_fitted_mm": _finite_or_none(mean_acceleration_mm(fit.keypoints3d[:, has], track.valid)),
        "accel_mediapipe_world_mm": _finite_or_none(mean_acceleration_mm(lifted_raw[:, has], track.valid)),
        "valid_frames": int(track.valid.sum()),
    }


def _person_arrays(
    track: SubjectTrack, fit: FitResult, world_from_camera: np.ndarray
) -> dict[str, np.ndarray]:
    t = len(track.frame_index)
    world_kp = frames.apply(world_from_camera, fit.keypoints3d)
    return {
        "frame_index": track.frame_index.astype(np.int64),
        "valid": track.valid.astype(bool),
        "time_s": track.time_s.astype(np.float64),
        "keypoints2d": track.body2d.astype(np.float32),
        "keypoints3d": fit.keypoints3d.astype(np.float32),
        "keypoints3d_world": world_kp.astype(np.float32),
        "keypoints3d_detector": track.body_world.astype(np.float32),
        "keypoints2d_left_hand": track.left_hand2d.astype(np.float32),
        "keypoints2d_right_hand": track.right_hand2d.astype(np.float32),
        "keypoints2d_face": track.face2d.astype(np.float16),
        "bbox": track.bbox.astype(np.float32),
        "silhouette": track.silhouette.astype(np.uint8),
        "global_orient": fit.global_orient.astype(np.float32),
        "body_pose": fit.body_pose.reshape(t, -1).astype(np.float32),
        "left_hand_pose": np.zeros((t, 45), np.float32),
        "right_hand_pose": np.zeros((t, 45), np.float32),
        "jaw_pose": np.zeros((t, 3), np.float32),
        "transl": fit.transl.astype(np.float32),
        "world_from_camera": world_from_camera.astype(np.float64),
        "phenotypes": fit.phenotypes.astype(np.float32),
        "anny_pose": fit.native_pose.astype(np.float32),
        "contacts": frames.foot_contacts(world_kp, track.time_s),
    }


def estimate(
    video: Path,
    out: Path,
    config: EstimateConfig,
    preview: Path | None,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
) -> EstimateSummary:
    """Run the whole pipeline on ``video`` and write ``out`` (and the preview, if asked)."""
    out = Path(out)
    check_writable_dir(out)
    if preview is not None:
        check_writable_dir(Path(preview))
    timings: dict[str, float] = {}
    warnings: list[str] = []
    written: list[Path] = []

    def stage(name: str) -> None:
        report(protocol.stage(name, STAGES.index(name) + 1, len(STAGES)))

    def warn(message: str) -> None:
        warnings.append(message)
        log.warning(message)
        report(protocol.warning(message))

    try:
        stage("decode")
        clock = time.perf_counter()
        info = probe(video)
        dcfg = config.decode
        k = info.intrinsics(dcfg.focal_px, dcfg.default_hfov_deg)
        focal_source = (
            "--focal-px"
            if dcfg.focal_px is not None
            else f"default {dcfg.default_hfov_deg:g} deg horizontal field of view"
        )
        timings["decode"] = time.perf_counter() - clock

        stage("detect")
        clock = time.perf_counter()
        detection = detect_subjects(
            info, dcfg.start, dcfg.end, config.detect, config.track, report, is_cancelled
        )
        timings["detect"] = time.perf_counter() - clock
        stage("track")
        for message in detection.warnings:
            warn(message)
        for subject in detection.subjects:
            if not config.detect.hands:
                subject.left_hand2d[:] = 0.0
                subject.right_hand2d[:] = 0.0
            if not config.detect.face:
                subject.face2d[:] = 0.0
        n_frames = len(detection.subjects[0].frame_index)

        stage("lift")
        clock = time.perf_counter()
        lifter = MediaPipeBaselineLifter()
        lifts = [lifter.lift(s) for s in detection.subjects]
        timings["lift"] = time.perf_counter() - clock

        stage("fit")
        clock = time.perf_counter()
        device = resolve_device(config.device)
        body = AnnyBody(device=device)
        fitter = TemporalFitter(body, config.fit, device)
        fits: list[FitResult] = []
        metrics: dict[str, float | None] = {}
        for subject, lift in zip(detection.subjects, lifts, strict=False):
            inputs = _fit_inputs(subject, lift.keypoints3d, lift.confidence, k, info.height)
            result = fitter.fit(inputs, report, is_cancelled)
            for message in result.warnings:
                warn(message)
            fits.append(result)
            raw, _ = mediapipe_to_keypoints(subject.body_world)
            if not metrics:
                metrics = _metrics(subject, result, inputs.conf2d, raw)
        timings["fit"] = time.perf_counter() - clock

        stage("write")
        clock = time.perf_counter()
        people = []
        for subject, result in zip(detection.subjects, fits, strict=False):
            wfc = frames.estimate_world_from_camera(result.keypoints3d, subject.valid)
            arrays = _person_arrays(subject, result, wfc)
            # The fitted body's rig travels with the motion, so Blender needs no torch to build it.
            arrays.update({f"rig/{k}": v for k, v in anny_rig_arrays(body, result.phenotypes).items()})
            people.append(motion_io.PersonMotion(subject.track_id, arrays))
        fps = {name: n_frames / max(timings[name], 1e-6) for name in ("detect", "lift", "fit")}
        meta = {
            "format": motion_io.FORMAT_NAME,
            "version": motion_io.FORMAT_VERSION,
            "software_version": backend.__version__,
            "source_video": Path(video).name,
            "body_model": {
                "name": body.name,
                "gender": "phenotype",
                "source_hash": body.source_hash(),
                "phenotype_labels": body.phenotype_labels,
                "native_pose": "anny_pose: per-bone local-ref delta rotations (axis-angle), bone order in bone_labels",
                "bone_labels": body.bone_labels,
            },
            "fps": info.fps,
            "frame_count": n_frames,
            "frame_range": [int(dcfg.start), None if dcfg.end is None else int(dcfg.end)],
            "image_size": [info.width, info.height],
            "rotation_applied_deg": info.rotation,
            "intrinsics": k.tolist(),
            "focal_source": focal_source,
            "frame_conventions": {
                "camera": "OpenCV: x right, y down, z forward; metres",
                "world": "Z up, ground at z=0, subject starts facing -Y; metres; world_from_camera maps camera to world",
                "canonical_pose": "SMPL-X body joint order, axis-angle, SMPL-X model axes (x left, y up, z front), identity = T-pose",
                "global_orient": "rotation from canonical model axes to the camera frame",
                "transl": "pelvis (root joint) position in the camera frame",
            },
            "keypoint_names": {"keypoints2d": list(MP_BODY_NAMES), "keypoints3d": list(KEYPOINT_NAMES)},
            "joint_names": list(BODY_JOINTS),
            "contact_names": ["left_heel", "left_toe", "right_heel", "right_toe"],
            "lifter": lifts[0].method,
            "device": str(device),
            "config": config.to_dict(),
            "timings_s": {k2: round(v, 3) for k2, v in timings.items()},
            "fps_per_stage": {k2: round(v, 2) for k2, v in fps.items()},
            "metrics": metrics,
            "fit_stats": fits[0].stats,
            "tracks_found": detection.n_tracks,
            "warnings": warnings,
        }
        motion_io.save(out, motion_io.MotionFile(meta, people))
        written.append(out)
        timings["write"] = time.perf_counter() - clock

        previews: list[Path] = []
        if preview is not None:
            clock = time.perf_counter()
            subject, result = detection.subjects[0], fits[0]
            previews = _write_preview(
                info, subject, result, body, k, Path(preview), report, is_cancelled, written
            )
            timings["preview"] = time.perf_counter() - clock
        report(protocol.result(str(out)))
        return EstimateSummary(out, previews, timings, fps, metrics, warnings)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def _write_preview(
    info: VideoInfo,
    subject: SubjectTrack,
    fit: FitResult,
    body: AnnyBody,
    k: np.ndarray,
    path: Path,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
    written: list[Path],
) -> list[Path]:
    import roma

    device = body.kp_weights.device
    rest = body.rest_state(torch.as_tensor(fit.phenotypes, device=device))

    @torch.no_grad()
    def vertices(a: int, b: int) -> np.ndarray:
        orient = roma.rotvec_to_rotmat(torch.as_tensor(fit.global_orient[a:b], device=device))
        pose = roma.rotvec_to_rotmat(torch.as_tensor(fit.body_pose[a:b], device=device))
        deltas = body.native_deltas(orient, pose, torch.as_tensor(fit.transl[a:b], device=device))
        return body.vertices(body.bone_transforms(deltas, rest), rest).cpu().numpy()

    source = PreviewSource(
        frame_index=subject.frame_index, valid=subject.valid, projected=fit.projected,
        vertices=vertices, faces=body.faces.cpu().numpy(), intrinsics=k,
    )  # fmt: skip
    video_path, sheet_path = write_preview(info, source, path, report, is_cancelled)
    written += [video_path, sheet_path]
    return [video_path, sheet_path]
