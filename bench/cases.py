"""The fixed accuracy-bench cases and their exact ground truth.

A case is a segment of a held-out test clip (`backend.train.data.load_clipset("test")`: CMU
subject 7, HDM05 ``mm``), a body shape (Anny phenotypes), a fixed camera (height above the floor,
horizontal distance from the segment's mean pelvis, azimuth relative to the subject's mean facing,
optionally panning after the pelvis) and an image size with a horizontal field of view.

`pose_case` poses Anny exactly as the lifter's synthetic data does (``backend/train/synth.py``):
the clip's canonical rotations and pelvis path drive `AnnyBody`; the body is then lifted so that
its lowest vertices touch the floor (y = 0) and everything is moved into the OpenCV camera frame.
Keypoints and vertices come from the same skinning transforms, so the rendered mesh and the
ground-truth keypoints agree exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from backend.body.model import CanonicalPose
from backend.train.data import ClipSet, hash_of
from backend.train.synth import look_at
from bench.metrics import project_points

RENDER_VERSION = 3
"""3: a floor of randomly shaded tiles, so that a panning camera can be tracked on the background."""
"""Bump when anything that changes the rendered clips or their ground truth changes."""

Phenotypes = tuple[tuple[str, float], ...]
AVERAGE: Phenotypes = (
    ("gender", 0.5), ("age", 0.67), ("muscle", 0.5), ("weight", 0.5), ("height", 0.5), ("proportions", 0.3),
)  # fmt: skip
TALL_THIN: Phenotypes = (
    ("gender", 0.85), ("age", 0.7), ("muscle", 0.45), ("weight", 0.25), ("height", 0.85), ("proportions", 0.4),
)  # fmt: skip
SHORT_HEAVY: Phenotypes = (
    ("gender", 0.2), ("age", 0.8), ("muscle", 0.4), ("weight", 0.8), ("height", 0.2), ("proportions", 0.2),
)  # fmt: skip


def focal_from_fov(width: int, hfov_deg: float) -> float:
    """Focal length in pixels of an image ``width`` pixels wide seeing ``hfov_deg`` across."""
    return 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)


def centred_intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """(3, 3) pinhole camera matrix with the principal point at the image centre."""
    f = focal_from_fov(width, hfov_deg)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class BenchCase:
    """One rendered clip: mocap segment, body shape, camera and image (see the module docstring)."""

    name: str
    clip: str
    """Name of a test clip (`ClipSet.names`)."""
    start: int
    frames: int
    phenotypes: Phenotypes
    cam_height: float
    """Camera height above the floor, metres."""
    cam_distance: float
    """Horizontal distance from the segment's mean pelvis position, metres."""
    azimuth_deg: float
    """0: in front of the subject's mean facing direction; 90: at its left; 180: behind."""
    width: int
    height: int
    hfov_deg: float = 60.0
    aim_height: float = 1.0
    """Height above the floor the camera looks at."""
    follow: float = 0.0
    """0: fixed aim; 1: the aim follows the (smoothed) pelvis horizontally."""

    @property
    def focal_px(self) -> float:
        return focal_from_fov(self.width, self.hfov_deg)

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) pinhole camera matrix, principal point at the image centre."""
        return centred_intrinsics(self.width, self.height, self.hfov_deg)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def key(self, data_hash: str) -> str:
        """Cache key: everything that changes the render (not the name) and the clip data's hash."""
        fields = {k: v for k, v in self.to_dict().items() if k != "name"}
        return hash_of(RENDER_VERSION, data_hash, fields)


@dataclass(frozen=True)
class PosedCase:
    """A case posed on Anny, camera frame (OpenCV), metres.

    vertices: (T, V, 3) float32 mesh; keypoints3d: (T, 23, 3) ``KEYPOINT_NAMES``;
    keypoints2d: (T, 23, 2) their projection, pixels; floor: (T, 4, 3) corners of a floor square;
    in_view: (T,) bool, every keypoint in front of the camera and inside the image; world_keypoints:
    (T, 23, 3) the keypoints in the world frame, z up, floor at z = 0 (the feet metrics' ground truth).
    """

    vertices: np.ndarray
    keypoints3d: np.ndarray
    keypoints2d: np.ndarray
    floor: np.ndarray
    in_view: np.ndarray
    world_keypoints: np.ndarray


CI_CASES: tuple[BenchCase, ...] = (
    BenchCase("ci_walk", "07_05", 30, 60, AVERAGE, 1.2, 4.5, 70.0, 360, 360, hfov_deg=50.0, follow=0.5),
)
FULL_CASES: tuple[BenchCase, ...] = (
    BenchCase("walk_side", "07_05", 0, 120, AVERAGE, 1.2, 5.0, 90.0, 640, 360, follow=0.5),
    BenchCase("walk_diagonal", "007_03", 0, 104, TALL_THIN, 1.7, 6.0, 40.0, 640, 360, follow=0.7),
    BenchCase(
        "throw",
        "HDM_mm_throwBasketball_011_120",
        0,
        141,
        SHORT_HEAVY,
        1.0,
        4.0,
        20.0,
        480,
        480,
        hfov_deg=55.0,
    ),
    BenchCase(
        "bend_deposit",
        "HDM_mm_depositFloorR_024_120",
        0,
        150,
        AVERAGE,
        1.5,
        3.5,
        -30.0,
        360,
        640,
        hfov_deg=50.0,
    ),  # fmt: skip
    BenchCase(
        "reach_high", "HDM_mm_grabHighR_018_120", 0, 115, TALL_THIN, 0.8, 4.0, 10.0, 360, 640, hfov_deg=55.0
    ),
    BenchCase("kick", "HDM_mm_kickLFront1Reps_020_120", 0, 65, SHORT_HEAVY, 1.2, 3.5, -60.0, 480, 480),
    BenchCase("squat", "HDM_mm_squat1Reps_038_120", 0, 52, TALL_THIN, 1.8, 3.0, 30.0, 480, 480),
    BenchCase(
        "jog_circle",
        "HDM_mm_jogLeftCircle4StepsRstart_011_120",
        0,
        56,
        AVERAGE,
        1.4,
        6.0,
        0.0,
        640,
        360,
        follow=0.8,
    ),  # fmt: skip
    BenchCase(
        "arm_circles",
        "HDM_mm_rotateArmsBothBackward1Reps_011_120",
        0,
        55,
        SHORT_HEAVY,
        1.5,
        3.5,
        0.0,
        640,
        360,
    ),
)


def cases_for(subset: str) -> tuple[BenchCase, ...]:
    """The cases of a subset: "ci" or "full"."""
    if subset == "ci":
        return CI_CASES
    if subset == "full":
        return FULL_CASES
    raise ValueError(f"subset must be 'ci' or 'full', got {subset!r}")


def segment(case: BenchCase, clips: ClipSet) -> tuple[np.ndarray, np.ndarray]:
    """The case's frames of its clip: ((T,22,3,3) canonical rotations, (T,3) pelvis, world y up)."""
    if case.clip not in clips.names:
        raise ValueError(f"bench case {case.name!r}: no test clip named {case.clip!r}")
    rot, tr = clips.clip(clips.names.index(case.clip))
    rot, tr = rot[case.start : case.start + case.frames], tr[case.start : case.start + case.frames]
    if len(rot) < 3:
        raise ValueError(f"bench case {case.name!r}: clip {case.clip!r} has no frames from {case.start}")
    return rot.astype(np.float64), tr.astype(np.float64)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 with edge replication, (T, D) -> (T, D)."""
    half = max(width // 2, 0)
    pad = np.concatenate([x[:1].repeat(half, 0), x, x[-1:].repeat(half, 0)])
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), pad]), axis=0)
    return (c[2 * half + 1 :] - c[: -2 * half - 1]) / (2 * half + 1)


def camera_path(case: BenchCase, rot: np.ndarray, transl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The case's camera for a segment ((T,22,3,3), (T,3)), world y up, floor at y = 0.

    Returns (camera-from-world rotations (T,3,3), OpenCV axes; camera centre (3,)).
    """
    facing = (rot[:, 0] @ np.array([0.0, 0.0, 1.0]))[:, [0, 2]].mean(0)  # canonical z = front
    facing = facing / max(float(np.linalg.norm(facing)), 1e-9)
    left = np.array([facing[1], -facing[0]])  # up x front, in (x, z)
    az = math.radians(case.azimuth_deg)
    direction = math.cos(az) * facing + math.sin(az) * left
    centre = transl[:, [0, 2]].mean(0)
    eye = np.array([centre[0] + case.cam_distance * direction[0], case.cam_height,
                    centre[1] + case.cam_distance * direction[1]])  # fmt: skip
    n_t = len(transl)
    target = np.tile([centre[0], case.aim_height, centre[1]], (n_t, 1))
    target[:, [0, 2]] += case.follow * (_smooth(transl[:, [0, 2]], 31) - centre)
    eyes = np.repeat(eye[None], n_t, 0)
    return look_at(eyes, target, np.zeros(n_t)), eye


def _floor_square(centre: np.ndarray, half: float = 15.0) -> np.ndarray:
    """(4, 3) corners of a horizontal square at y = 0 around `centre` (3,), counter-clockwise from above."""
    cx, cz = float(centre[0]), float(centre[2])
    return np.array([[cx - half, 0, cz - half], [cx - half, 0, cz + half], [cx + half, 0, cz + half],
                     [cx + half, 0, cz - half]])  # fmt: skip


def world_body(body, phenotypes: np.ndarray, rot: np.ndarray, transl: np.ndarray, chunk: int = 32):  # noqa: ANN001, ANN201
    """Anny posed in the clip's world (y up): ((T,V,3) vertices, (T,23,3) keypoints), float64.

    body: a `backend.body.anny_body.AnnyBody`; phenotypes: (P,) in its label order.
    """
    device = body.kp_weights.device
    verts, kps = [], []
    with torch.no_grad():
        rest = body.rest_state(torch.as_tensor(phenotypes, dtype=torch.float32, device=device))
        for a in range(0, len(rot), chunk):
            part = [torch.as_tensor(x[a : a + chunk], dtype=torch.float32, device=device)
                    for x in (rot[:, 0], rot[:, 1:], transl)]  # fmt: skip
            out = body.forward(CanonicalPose(*part), rest, vertices=True)
            verts.append(out.vertices.cpu().numpy())
            kps.append(out.keypoints.cpu().numpy())
    return np.concatenate(verts).astype(np.float64), np.concatenate(kps).astype(np.float64)


def phenotype_vector(case: BenchCase, labels: list[str]) -> np.ndarray:
    """(P,) phenotypes in `labels` order (0.5 for labels the case does not name)."""
    values = dict(case.phenotypes)
    return np.array([values.get(label, 0.5) for label in labels])


def pose_case(case: BenchCase, clips: ClipSet, body) -> PosedCase:  # noqa: ANN001 - AnnyBody
    """Pose the case on Anny and move it into the camera frame (see `PosedCase`)."""
    rot, transl = segment(case, clips)
    verts, kps = world_body(body, phenotype_vector(case, list(body.phenotype_labels)), rot, transl)
    floor_y = float(np.percentile(verts[..., 1].min(-1), 5))  # lowest vertex, robust to a few jumps
    lift = np.array([0.0, floor_y, 0.0])
    verts, kps, transl = verts - lift, kps - lift, transl - lift
    cam_rot, eye = camera_path(case, rot, transl)
    to_cam = lambda x: np.einsum("tij,t...j->t...i", cam_rot, x - eye)  # noqa: E731
    floor = to_cam(np.repeat(_floor_square(transl.mean(0))[None], len(rot), 0))
    kp_cam = to_cam(kps)
    kp2d = project_points(kp_cam, case.intrinsics)
    inside = (
        (kp2d[..., 0] >= 0) & (kp2d[..., 0] < case.width) & (kp2d[..., 1] >= 0) & (kp2d[..., 1] < case.height)
    )
    in_view = (inside & (kp_cam[..., 2] > 0.1)).all(-1)
    z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # world y up -> z up
    return PosedCase(to_cam(verts).astype(np.float32), kp_cam, kp2d, floor, in_view, kps @ z_up.T)
