"""The write stage's content: one person's motion arrays, the file's meta, and the run's metrics.

Everything here is data assembly (numpy, no I/O); ``backend.io.motion`` validates and writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend import protocol
from backend.body.model import BodyModel
from backend.body.smpl_landmarks import MEDIAPIPE_FACE_FOR_LANDMARKS
from backend.config import EstimateConfig
from backend.detect.types import MP_BODY_NAMES, SubjectTrack
from backend.fit.data import FitInputs, FitResult
from backend.geometry import frames
from backend.geometry.kinematics import mean_acceleration_mm
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES
from backend.io import motion as motion_io
from backend.io.motion_schema import RIG_PREFIX
from backend.io.video import VideoInfo
from backend.lift.base import LiftResult

GOOD_CONFIDENCE = 0.5
"""Detections at least this confident count in the reprojection metrics."""
FRAME_CONVENTIONS = {
    "camera": "OpenCV: x right, y down, z forward; metres",
    "world": "Z up, ground at z=0, subject starts facing -Y; metres; world_from_camera maps camera to world",
    "canonical_pose": "SMPL-X body joint order, axis-angle, SMPL-X model axes (x left, y up, z front), identity = T-pose",
    "global_orient": "rotation from canonical model axes to the camera frame",
    "transl": "pelvis (root joint) position in the camera frame",
}  # fmt: skip


@dataclass(frozen=True)
class Camera:
    """The camera the run assumed: its intrinsics and where they came from."""

    intrinsics: np.ndarray
    """(3, 3) pixels."""
    source: str
    """``--focal-px`` or the default field of view used."""
    rotations: np.ndarray | None = None
    """(T, 3, 3) each frame's camera to the first frame's, from the background (a panning camera);
    None: the camera stands still."""


def fit_inputs(track: SubjectTrack, lift: LiftResult, camera: Camera, image_height: int) -> FitInputs:
    """The fit's observations of one subject: its carried keypoints, the lift, hands and face."""
    keypoints = track.body_keypoints()
    conf2d = keypoints.image[..., 2].copy()
    conf2d[:, ~keypoints.present] = 0.0
    conf2d[~track.valid] = 0.0
    hands = np.stack([track.left_hand2d, track.right_hand2d], axis=1).astype(np.float32)  # (T, 2, 21, 3)
    face = track.face2d[:, list(MEDIAPIPE_FACE_FOR_LANDMARKS)].astype(np.float32)  # (T, 51, 3)
    hands[~track.valid, ..., 2] = 0.0
    face[~track.valid, :, 2] = 0.0
    return FitInputs(
        kp2d=keypoints.image[..., :2], conf2d=conf2d, lifted=lift.keypoints3d, conf3d=lift.confidence,
        times=track.time_s, intrinsics=camera.intrinsics, image_height=image_height, hand2d=hands, face2d=face,
        camera_rotations=camera.rotations, valid=track.valid,
    )  # fmt: skip


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: metrics that cannot be computed (e.g. jitter of a 2-frame clip) are None."""
    return float(value) if np.isfinite(value) else None


def metrics(track: SubjectTrack, fit: FitResult, conf2d: np.ndarray) -> dict[str, float | None]:
    """Reprojection error against confident detections and jitter, fitted vs MediaPipe's world landmarks."""
    keypoints = track.body_keypoints()
    err = np.linalg.norm(fit.projected - keypoints.image[..., :2], axis=-1)
    good = conf2d > GOOD_CONFIDENCE
    has = keypoints.present
    return {
        "reprojection_median_px": _finite_or_none(np.median(err[good]) if good.any() else np.nan),
        "reprojection_mean_px": _finite_or_none(err[good].mean() if good.any() else np.nan),
        "accel_fitted_mm": _finite_or_none(mean_acceleration_mm(fit.keypoints3d[:, has], track.valid)),
        "accel_mediapipe_world_mm": _finite_or_none(
            mean_acceleration_mm(keypoints.world[:, has], track.valid)
        ),
        "valid_frames": int(track.valid.sum()),
    }


def person_arrays(
    track: SubjectTrack, fit: FitResult, lift: LiftResult, body: BodyModel, camera_rotations: np.ndarray | None = None,
    shared_world: np.ndarray | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One person's motion arrays (DESIGN.md, README), the body model's own ones and its rig included;
    ``camera_rotations`` (T, 3, 3) make ``world_from_camera`` per frame (a panning camera).
    ``shared_world``: the clip's ``world_from_camera`` when another person already fixed it (everyone of
    a clip lives in one world, so that one camera and one ground serve them all in Blender)."""
    t = len(track.frame_index)
    if shared_world is not None:
        world_from_camera = shared_world
    else:
        ground = fit.ground
        if ground is None:  # no contact stage: level with the torso, under the lowest feet
            ground = frames.ground_from_keypoints(fit.keypoints3d, track.valid, camera_rotations)
        world_from_camera = frames.world_from_ground(fit.keypoints3d, track.valid, *ground, camera_rotations)
    world_kp = frames.apply(world_from_camera, fit.keypoints3d)
    contacts = fit.contacts if fit.contacts is not None else frames.foot_contacts(world_kp, track.time_s)
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
        "transl": fit.transl.astype(np.float32),
        "world_from_camera": world_from_camera.astype(np.float64),
        "contacts": np.asarray(contacts, np.float32),
        "keypoints3d_lifted": lift.keypoints3d.astype(np.float32),
    }
    arrays.update(body.motion_arrays(fit.phenotypes, fit.global_orient, fit.native_pose, fit.parts))
    # The fitted body's rig travels with the motion, so Blender needs no torch to build it.
    arrays.update({f"{RIG_PREFIX}{k}": v for k, v in body.rig_arrays(fit.phenotypes).items()})
    return arrays


@dataclass(frozen=True)
class RunFacts:
    """What the meta records about the run besides the people."""

    video: Path
    info: VideoInfo
    camera: Camera
    body: BodyModel
    config: EstimateConfig
    lifter: str
    prior: str
    device: str
    tracks_found: int
    tracked: list[dict[str, Any]]
    """Every tracked person (``backend.detect.people_list``)."""


def motion_meta(
    facts: RunFacts,
    n_frames: int,
    timings: dict[str, float],
    run_metrics: dict,
    fit_stats: dict,
    warnings: list[str],
) -> dict[str, Any]:
    """The motion file's ``meta`` (DESIGN.md)."""
    info, dcfg = facts.info, facts.config.decode
    fps = {name: n_frames / max(timings[name], 1e-6) for name in ("detect", "lift", "fit") if name in timings}
    return {
        "format": motion_io.FORMAT_NAME,
        "version": motion_io.FORMAT_VERSION,
        "software_version": protocol.VERSION,
        "source_video": Path(facts.video).name,
        "body_model": facts.body.meta(),
        "fps": info.fps,
        "frame_count": n_frames,
        "frame_range": [int(dcfg.start), None if dcfg.end is None else int(dcfg.end)],
        "image_size": [info.width, info.height],
        "rotation_applied_deg": info.rotation,
        "intrinsics": facts.camera.intrinsics.tolist(),
        "focal_source": facts.camera.source,
        "frame_conventions": FRAME_CONVENTIONS,
        "keypoint_names": {"keypoints2d": list(MP_BODY_NAMES), "keypoints3d": list(KEYPOINT_NAMES)},
        "joint_names": list(BODY_JOINTS),
        "contact_names": ["left_heel", "left_toe", "right_heel", "right_toe"],
        "lifter": facts.lifter,
        "pose_prior": facts.prior,
        "device": facts.device,
        "config": facts.config.to_dict(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "fps_per_stage": {k: round(v, 2) for k, v in fps.items()},
        "metrics": run_metrics,
        "fit_stats": fit_stats,
        "tracks_found": facts.tracks_found,
        "tracked": facts.tracked,
        "warnings": warnings,
    }
