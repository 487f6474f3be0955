"""The estimate pipeline: decode -> detect -> track -> lift -> fit -> write (+ preview).

Takes ``report(event)`` and ``is_cancelled()``; raises BadInput or Cancelled. Every output is
staged under temporary names and renamed into place only when the whole run succeeds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import backend
from backend import protocol
from backend.body.anny_body import AnnyBody
from backend.body.factory import open_smpl_body
from backend.body.skeleton import BODY_JOINTS, KEYPOINT_NAMES, MEDIAPIPE_INDEX
from backend.body.smplx_body import MEDIAPIPE_FACE_FOR_LANDMARKS, SmplxBody
from backend.cancel import shielded
from backend.config import EstimateConfig
from backend.detect.run import detect_subjects
from backend.detect.types import MP_BODY_NAMES, SubjectTrack
from backend.errors import BadInput, Cancelled
from backend.export_rig import anny_rig_arrays
from backend.export_rig_smpl import rig_pose, smpl_rig_arrays
from backend.fit.optimize import FitInputs, FitResult, TemporalFitter
from backend.geometry import frames
from backend.io import motion as motion_io
from backend.io.outputs import StagedOutputs, check_output_paths
from backend.io.video import VideoInfo, probe
from backend.lift.mediapipe_baseline import mediapipe_to_keypoints
from backend.models import load_models, make_lifter
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


PREVIEW_SUFFIXES = (".mp4",)


def output_targets(video: Path, out: Path, preview: Path | None) -> list[Path]:
    """The run's output files (motion file, then the preview MP4 and its PNG contact sheet), checked
    before any work: BadInput for a path that is the input, another output, a folder, or of the
    wrong kind (the motion file is an ``.npz``, the preview an ``.mp4``)."""
    targets = [out] + ([Path(preview), Path(preview).with_suffix(".png")] if preview is not None else [])
    labels = ["--out", "--preview", "the preview's contact sheet"][: len(targets)]
    check_output_paths(targets, [video], labels)
    if out.suffix.lower() != ".npz":
        raise BadInput(f"--out {out} must end with .npz (e.g. {out.with_suffix('').name}.motion.npz).")
    if preview is not None and Path(preview).suffix.lower() not in PREVIEW_SUFFIXES:
        raise BadInput(f"--preview {preview} must end with .mp4 (the preview is an MP4 video).")
    return targets


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
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
    hands = np.stack([track.left_hand2d, track.right_hand2d], axis=1).astype(np.float32)  # (T, 2, 21, 3)
    face = track.face2d[:, list(MEDIAPIPE_FACE_FOR_LANDMARKS)].astype(np.float32)  # (T, 51, 3)
    hands[~track.valid, ..., 2] = 0.0
    face[~track.valid, :, 2] = 0.0
    return FitInputs(
        kp2d=kp2d[..., :2], conf2d=conf2d, lifted=lift_kp, conf3d=lift_conf,
        times=track.time_s, intrinsics=k, image_height=h, hand2d=hands, face2d=face,
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
    """One person's motion arrays (DESIGN.md). Anny: ``phenotypes`` and ``anny_pose``; the SMPL family
    (``fit.parts`` set): ``betas``, hands, jaw, ``expression``, ``native_pose`` and the rig's ``rig_pose``."""
    t = len(track.frame_index)
    world_kp = frames.apply(world_from_camera, fit.keypoints3d)
    arrays = {
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
    if fit.parts:  # SMPL family
        del arrays["phenotypes"], arrays["anny_pose"]
        parts = fit.parts
        arrays.update(
            betas=fit.phenotypes.astype(np.float32),
            left_hand_pose=parts["left_hand_pose"].reshape(t, 45).astype(np.float32),
            right_hand_pose=parts["right_hand_pose"].reshape(t, 45).astype(np.float32),
            jaw_pose=parts["jaw_pose"].astype(np.float32),
            expression=parts["expression"].astype(np.float32),
            native_pose=fit.native_pose.astype(np.float32),
            rig_pose=rig_pose(fit.global_orient, fit.native_pose).astype(np.float32),
        )
        for source, name in (
            ("hand_keypoints3d", "keypoints3d_hands"),
            ("face_keypoints3d", "keypoints3d_face"),
        ):
            if source in parts:  # (T, 2, 21, 3) MediaPipe Hands order; (T, 51, 3) iBUG 17..67
                arrays[name] = parts[source].astype(np.float32)
    return arrays


def estimate(
    video: Path,
    out: Path,
    config: EstimateConfig,
    preview: Path | None,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
) -> EstimateSummary:
    """Run the whole pipeline on ``video`` and write ``out`` (and the preview, if asked).

    Output paths are checked before decoding; every output is staged under a temporary name and
    renamed into place only when the whole run has succeeded (``backend.io.outputs``).
    """
    out = Path(out)
    targets = output_targets(Path(video), out, preview)
    timings: dict[str, float] = {}
    warnings: list[str] = []

    def stage(name: str) -> None:
        report(protocol.stage(name, STAGES.index(name) + 1, len(STAGES)))

    def warn(message: str) -> None:
        warnings.append(message)
        log.warning(message)
        report(protocol.warning(message))

    with StagedOutputs() as staged:
        stage("decode")
        clock = time.perf_counter()
        device = resolve_device(config.device)
        smpl_body = (  # the user's model file is checked before the long stages too
            None
            if config.body == "anny"
            else open_smpl_body(config.body, config.model_path, config.gender, device)
        )
        models = load_models(config.lift)  # before the long stages: a bad file fails at once
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
        lifter = make_lifter(models, (info.width, info.height))
        lifts = [lifter.lift(s) for s in detection.subjects]
        timings["lift"] = time.perf_counter() - clock

        stage("fit")
        clock = time.perf_counter()
        body = smpl_body if smpl_body is not None else AnnyBody(device=device)
        fitter = TemporalFitter(body, config.fit, device, models.prior)
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
        for subject, result, lift in zip(detection.subjects, fits, lifts, strict=False):
            wfc = frames.estimate_world_from_camera(result.keypoints3d, subject.valid)
            arrays = _person_arrays(subject, result, wfc)
            arrays["keypoints3d_lifted"] = lift.keypoints3d.astype(np.float32)
            # The fitted body's rig travels with the motion, so Blender needs no torch to build it.
            if isinstance(body, SmplxBody):
                rig = smpl_rig_arrays(body, result.phenotypes)
            else:
                rig = anny_rig_arrays(body, result.phenotypes)
            arrays.update({f"rig/{k}": v for k, v in rig.items()})
            people.append(motion_io.PersonMotion(subject.track_id, arrays))
        fps = {name: n_frames / max(timings[name], 1e-6) for name in ("detect", "lift", "fit")}
        meta = {
            "format": motion_io.FORMAT_NAME,
            "version": motion_io.FORMAT_VERSION,
            "software_version": backend.__version__,
            "source_video": Path(video).name,
            "body_model": _body_meta(body),
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
            "pose_prior": "vposer" if models.prior is not None else "none",
            "device": str(device),
            "config": config.to_dict(),
            "timings_s": {k2: round(v, 3) for k2, v in timings.items()},
            "fps_per_stage": {k2: round(v, 2) for k2, v in fps.items()},
            "metrics": metrics,
            "fit_stats": fits[0].stats,
            "tracks_found": detection.n_tracks,
            "warnings": warnings,
        }
        with staged.writing(out) as (tmp,):
            motion_io.write(tmp, motion_io.MotionFile(meta, people), str(out))
        timings["write"] = time.perf_counter() - clock

        if preview is not None:
            clock = time.perf_counter()
            with staged.writing(*targets[1:]) as (video_tmp, sheet_tmp):
                _write_preview(
                    info, detection.subjects[0], fits[0], body, k, (video_tmp, sheet_tmp), report, is_cancelled
                )
            timings["preview"] = time.perf_counter() - clock
        if is_cancelled():
            raise Cancelled()
        with shielded(is_cancelled):  # a cancel request now waits: the outputs are complete
            staged.commit()
    report(protocol.result(str(out)))
    return EstimateSummary(out, targets[1:], timings, fps, metrics, warnings)


def _body_meta(body: AnnyBody | SmplxBody) -> dict:
    """``meta.body_model``: which model, which file, and how its shape and native pose are stored."""
    if isinstance(body, AnnyBody):
        return {
            "name": body.name,
            "gender": "phenotype",
            "source_hash": body.source_hash(),
            "phenotype_labels": body.phenotype_labels,
            "native_pose": "anny_pose: per-bone local-ref delta rotations (axis-angle), bone order in bone_labels",
            "bone_labels": body.bone_labels,
        }
    return {
        "name": body.name,
        "gender": body.config.gender,
        "source_hash": body.source_hash(),
        "model_file": body.model_file.name,
        "num_betas": body.num_betas,
        "num_expression": body.num_expression,
        "shape": "betas (S,)",
        "native_pose": "native_pose: the model's own local joint rotations (axis-angle), joint order in bone_labels",
        "rig_pose": "rig_pose: the Blender rig's local-ref deltas (export_rig_smpl), joint order in bone_labels",
        "bone_labels": body.joint_names,
    }


def _write_preview(
    info: VideoInfo,
    subject: SubjectTrack,
    fit: FitResult,
    body: AnnyBody | SmplxBody,
    k: np.ndarray,
    paths: tuple[Path, Path],
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
) -> None:
    import roma

    device = body.faces.device
    rest = body.rest_state(torch.as_tensor(fit.phenotypes, device=device))

    def rot(values: np.ndarray) -> torch.Tensor:
        return roma.rotvec_to_rotmat(torch.as_tensor(values, device=device))

    @torch.no_grad()
    def vertices(a: int, b: int) -> np.ndarray:
        orient, pose = rot(fit.global_orient[a:b]), rot(fit.body_pose[a:b])
        transl = torch.as_tensor(fit.transl[a:b], device=device)
        if not isinstance(body, SmplxBody):
            deltas = body.native_deltas(orient, pose, transl)
            return body.vertices(body.bone_transforms(deltas, rest), rest).cpu().numpy()
        p = fit.parts
        deltas = body.native_deltas(
            orient, pose, transl, left_hand=rot(p["left_hand_pose"][a:b]),
            right_hand=rot(p["right_hand_pose"][a:b]), jaw=rot(p["jaw_pose"][a:b]),
        )  # fmt: skip
        expression = torch.as_tensor(p["expression"][a:b], device=device) if body.num_expression else None
        return body.vertices(body.bone_transforms(deltas, rest), rest, expression).cpu().numpy()

    source = PreviewSource(
        frame_index=subject.frame_index, valid=subject.valid, projected=fit.projected,
        vertices=vertices, faces=body.faces.cpu().numpy(), intrinsics=k,
    )  # fmt: skip
    write_preview(info, source, paths[0], paths[1], report, is_cancelled)
