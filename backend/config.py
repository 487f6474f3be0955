"""Typed, frozen configuration: one dataclass per stage, grouped into presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from backend.errors import BadInput
from backend.protocol import PRESETS

Preset = Literal["fast", "balanced", "accurate"]
__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True)
class DecodeConfig:
    start: int = 0
    """First frame to process (inclusive, in source frame numbers)."""
    end: int | None = None
    """Last frame to process (exclusive); None for the end of the clip."""
    default_fov_deg: float = 60.0
    """Field of view across the image's long side assumed when no focal length is given (a phone's
    main camera, landscape or portrait: a 1080x1920 clip gets f = 1663 px)."""
    focal_px: float | None = None
    """Focal length in pixels; overrides metadata and the default field of view."""


@dataclass(frozen=True)
class DetectConfig:
    max_people: int = 4
    """How many people the multi-person detector looks for in each frame."""
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    holistic: bool = True
    """Run MediaPipe Holistic on the subject for hands, face and silhouette."""
    hands: bool = True
    """Keep hand landmarks (``--no-hands`` drops them)."""
    face: bool = True
    """Keep face landmarks (``--no-face`` drops them)."""
    model_complexity: int = 1
    silhouette_size: int = 64
    """Side of the square silhouette kept per frame (inside the subject's box)."""
    workers: int = 0
    """Threads that detect stretches of the clip side by side; 0: one per core other processes leave free."""
    camera_motion: bool = True
    """Estimate a panning or tilting camera's rotation from the background (``--still-camera``: off,
    the camera is taken to stand still)."""


@dataclass(frozen=True)
class TrackConfig:
    person: str = "auto"
    """'auto' (most prominent), 'all', or a track id as printed in the warnings."""
    max_gap_frames: int = 15
    """A track is continued across at most this many frames without a match."""
    min_track_frames: int = 5


@dataclass(frozen=True)
class LiftConfig:
    method: Literal["fused", "videopose", "mediapipe"] = "fused"
    """"fused" (default, the best on real footage: README "Real footage"): the confidence-weighted mean
    of the learned lifter (``fusion_weight``) and MediaPipe's world landmarks; "videopose": the learned
    temporal lifter alone; "mediapipe": MediaPipe's world landmarks alone."""
    fusion_weight: float = 0.5
    """Share of the learned lifter in the "fused" 3D evidence (MediaPipe's world landmarks get the rest).
    Chosen on real footage of two people (README "A second real capture"): 0.7 was better on the rendered
    bench, in the learned lifter's own domain, but worse for the first real person who was not the man."""
    agreement_m: float = 0.0
    """Above 0 ("fused" only): each keypoint's 3D confidence in the fit scaled by how well the two sources
    agree there (`lift.fused.agreement`: 1 where they coincide, down to 0.25 where they differ by much more
    than this many metres); 0: off."""
    weights: str | None = None
    """Lifter checkpoint (ours or official VideoPose3D format); None: the shipped weights."""
    prior: Literal["vposer", "none"] = "vposer"
    """Pose prior of the fit: our VPoser-architecture prior (default) or none (L2 only)."""
    prior_weights: str | None = None
    """Prior checkpoint (ours or the official VPoser v2 one); None: the shipped weights."""


@dataclass(frozen=True)
class FitWeights:
    """Weights and robust scales of the fit's terms (``fit/objective.py``)."""

    w_2d: float = 1.0
    gm_sigma_px: float = 40.0
    """Geman-McClure scale for 2D residuals, in pixels at a 1000-pixel image height."""
    w_3d: float = 5000.0
    sigma_3d: float = 0.3
    """Geman-McClure scale of the 3D term, metres."""
    align_3d: bool = True
    """After the ``pose3d`` stage, the 3D evidence is turned by one rotation per clip onto the body fitted
    so far (``losses.rotated_onto``): a lifter cannot see the camera's tilt, so on real footage its whole
    body can lean wrong, and matched as it came it bent the body against the 2D."""
    pose3d_boost: float = 10.0
    """The ``pose3d`` stage multiplies the 3D weight by this (and drops 2D and smoothness)."""
    w_pose: float = 2.0
    w_prior: float = 2.0
    """Weight of the VPoser latent-norm pose prior (used when the fitter is given a prior)."""
    w_limits: float = 200.0
    w_shape: float = 1.0
    w_smooth_joints: float = 5.0e3
    w_smooth_rot: float = 3.0
    w_smooth_transl: float = 5.0e3
    min_confidence: float = 0.02
    """2D keypoints below this confidence are dropped; the rest count by their confidence. MediaPipe's
    confidence is the landmark's visibility: an occluded limb's landmarks (the far side of a body seen from
    the side) come at 0.05-0.2 and still lie near the limb (README "Faint keypoints"; 0.2 until 2026-12-03)."""
    w_hand_2d: float = 1.0
    """Weight of the robust 2D term on MediaPipe's 21 landmarks per hand (Anny, SMPL-H, SMPL-X)."""
    w_face_2d: float = 1.0
    """Weight of the robust 2D term on the 51 face landmarks (SMPL-X)."""
    gm_sigma_parts_px: float = 10.0
    """Geman-McClure scale of the hand and face 2D terms, pixels at a 1000-pixel image height."""
    w_hand_pose: float = 1.0
    """L2 prior pulling each finger rotation towards the model file's mean (relaxed) hand."""
    w_jaw: float = 10.0
    """L2 prior on the jaw rotation (axis-angle, radians)."""
    w_expression: float = 1.0
    """L2 prior on the expression coefficients."""
    w_smooth_parts: float = 3.0
    """Temporal smoothness of the hand, jaw and expression parameters."""
    w_contact_still: float = 3.0e5
    """A foot point in contact does not move (mean squared displacement over 1, 4 and 8 frames in contact, m^2)."""
    w_contact_height: float = 1.0e4
    """A foot point in contact stands on the ground (mean squared height above its rest height, m^2)."""
    w_below_ground: float = 1.0e5
    """No foot point below its rest height over the ground (mean squared depth, m^2)."""


@dataclass(frozen=True)
class FitSchedule:
    """The annealed stages (``fit/schedule.py``): iterations and Adam steps."""

    iters_global: int = 40
    iters_pose3d: int = 300
    """Body pose led by the 3D evidence (2D down-weighted), to settle depth ambiguities. Joints may
    have to turn by 2 rad from the start pose here (a squat's knees): enough steps to get there."""
    lr_pose3d: float = 0.09
    """Adam step of the pose3d stage (each frame on its own: no smoothness to keep it steady)."""
    iters_body: int = 150
    iters_all: int = 100
    lr: float = 0.03
    iters_hands: int = 60
    """Anny, SMPL-H, SMPL-X: the hands stage (after the body): fingers and wrists on the hand keypoints."""
    iters_face: int = 40
    """SMPL-X: the face stage (after the hands): jaw and expression on the face landmarks."""
    iters_contact: int = 80
    """The contact stage (after ``all``): feet planted where they touch the ground, one ground plane."""
    fit_shape: bool = True
    rel_tol: float = 1.0e-3
    """Stop a stage when the loss improves by less than this fraction over 10 iterations."""


@dataclass(frozen=True)
class CollisionConfig:
    """Self-collision: the capsule proxy and the SMPLify-X mesh term (``fit/collision.py``)."""

    mode: Literal["auto", "on", "off", "mesh"] = "auto"
    """"on" = the capsule proxy in every stage after the first; "mesh" = that plus a last stage with the
    mesh term (``mesh_term``); "auto" = the body model's default (capsules for the SMPL family, off for
    Anny). The "accurate" preset uses "mesh"."""
    w_capsules: float = 1.0e4
    """Weight of the capsule penalty (squared capsule overlaps, metres^2, summed over pairs)."""
    w_mesh: float = 3.0e4
    """Weight of the mesh term (cone-field penalties, metres^2, summed over pairs, mean over frames)."""
    iters_mesh: int = 60
    """Iterations of the mesh collision stage."""
    lr_mesh: float = 0.01
    """Adam step of the mesh collision stage (small moves: limbs slide out of the body)."""
    min_hops: int = 3
    """Capsules whose bones are fewer than this many steps apart in the bone graph never collide."""
    radius_quantile: float = 0.5
    """Capsule radius = this quantile of the rest vertices' distances to their nearest bone."""
    radius_scale: float = 0.9
    """Shrinks capsules so that resting contact (arm against side) is not penalised."""
    search_every: int = 5
    """Evaluations of the mesh term between two searches for colliding triangle pairs."""
    cone: float = 2.0
    """Cone radius of the mesh term's distance field, in receiving-triangle radii."""
    chunk: int = 32
    """Frames skinned at once (all vertices, no gradients) during a search."""


@dataclass(frozen=True)
class WindowConfig:
    """Long clips are fitted in overlapping windows with one shape (``fit/windows.py``)."""

    frames: int = 900
    """Frames per window (30 s at 30 fps); a clip up to this long is fitted whole."""
    overlap: int = 30
    """Frames shared by neighbouring windows, blended across (at least 2, at most half a window)."""


@dataclass(frozen=True)
class FitConfig:
    """Everything the fit takes, grouped: term weights, the stage schedule, self-collision, windows."""

    weights: FitWeights = field(default_factory=FitWeights)
    schedule: FitSchedule = field(default_factory=FitSchedule)
    collision: CollisionConfig = field(default_factory=CollisionConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)


@dataclass(frozen=True)
class EstimateConfig:
    preset: Preset = "balanced"
    device: str = "auto"
    body: Literal["anny", "smpl", "smplh", "smplx"] = "anny"
    """Body model: Anny (shipped) or the user's own SMPL / SMPL-H / SMPL-X files (``model_path``)."""
    model_path: str | None = None
    """Folder (or file) holding the SMPL-family model files; required unless ``body`` is "anny"."""
    gender: Literal["neutral", "male", "female"] = "neutral"
    """Which SMPL-family model file to use (Anny's shape covers every gender)."""
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    fit: FitConfig = field(default_factory=FitConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def preset_fit(preset: Preset) -> FitConfig:
    """The fitting schedule of a preset."""
    if preset == "fast":
        schedule = FitSchedule(
            iters_global=25, iters_pose3d=100, iters_body=50, iters_all=25, iters_hands=30, iters_face=20,
            iters_contact=40,
        )
        return FitConfig(schedule=schedule)
    if preset == "accurate":
        schedule = FitSchedule(
            iters_global=60, iters_pose3d=400, iters_body=300, iters_all=200, iters_hands=120, iters_face=80,
            iters_contact=120,
        )
        return FitConfig(schedule=schedule, collision=CollisionConfig(mode="mesh", iters_mesh=100))
    return FitConfig()


def preset_detect(preset: Preset) -> DetectConfig:
    """The detector settings of a preset ('fast' skips hands, face and silhouette)."""
    if preset == "fast":
        return DetectConfig(holistic=False)
    return DetectConfig()


def with_setting(config: FitConfig, assignment: str) -> FitConfig:
    """``config`` with one field changed by ``SECTION.FIELD=VALUE`` (``weights.w_3d=3000``,
    ``schedule.iters_body=200``, ``collision.mode=mesh``); BadInput names an unknown field or a bad value."""
    target, _, text = assignment.partition("=")
    section, _, name = target.strip().partition(".")
    groups = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if section not in groups or name not in {f.name for f in dataclasses.fields(groups[section])} or not text:
        known = ", ".join(f"{g}.{f.name}" for g, v in groups.items() for f in dataclasses.fields(v))
        raise BadInput(f"--fit-set {assignment!r}: expected SECTION.FIELD=VALUE with one of: {known}.")
    current = getattr(groups[section], name)
    try:
        value: Any = (text.lower() in ("1", "true", "yes", "on")) if isinstance(current, bool) else type(current)(text)
    except ValueError as exc:
        raise BadInput(f"--fit-set {assignment!r}: {text!r} is not a {type(current).__name__}.") from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise BadInput(f"--fit-set {assignment!r}: the value must be finite.")
    if section == "collision" and name == "mode" and value not in ("auto", "on", "off", "mesh"):
        raise BadInput(f"--fit-set {assignment!r}: collision.mode is auto, on, off or mesh.")
    changed = dataclasses.replace(config, **{section: dataclasses.replace(groups[section], **{name: value})})
    win = changed.windows
    if not 2 <= win.overlap <= win.frames // 2:
        raise BadInput(f"--fit-set {assignment!r}: windows.overlap must be at least 2 and at most half of windows.frames.")
    return changed
