"""Synthetic lifter pairs: Anny posed by mocap, seen by random virtual cameras.

Each clip of a `ClipSet` is cut into segments of at most ``segment_frames`` frames; each segment
gets a random plausible adult phenotype (from a pool of ``n_phenotypes`` rest states) and a random
camera: height ``cam_height`` m above the floor, ``cam_distance`` m from the segment's mean pelvis
position at a random azimuth (equivalent to a random subject yaw), aimed at the body with a random
pitch offset and roll, focal ``focal_px`` at ``image_height`` px and a random aspect ratio; the
camera drifts slowly (``drift_mps``) and pans after the subject by a random share ``follow``.
Anny's global orientation is the camera rotation composed with the clip's root rotation; its
keypoints (`AnnyBody.keypoints_fast`, camera frame, ``KEYPOINT_NAMES``) are projected with a
pinhole camera. Targets are root-relative (mid-hip) 3D keypoints in camera axes, metres.

The pairs (exact pixels, 3D, image size) are cached as ``lifter_<split>_<hash>.npz``; detector
noise is added at training time (``noise.py``), and once with a fixed seed for evaluation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.body.model import CanonicalPose
from backend.geometry.camera import project
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES
from backend.train.data import ClipSet, hash_of, mirrored_clipset
from backend.train.mocap.canonical import canonical_fk

log = logging.getLogger(__name__)

SYNTH_VERSION = 2
MID_HIP = (KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip"))
FOOT_JOINTS = [BODY_JOINTS.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
# Plausible adult phenotype ranges (gender, age, muscle, weight, height, proportions); Anny's age
# 0.5 is a teenager, 0.67 a young adult, 1.0 old.
PHENOTYPE_RANGES: dict[str, tuple[float, float]] = {
    "gender": (0.0, 1.0),
    "age": (0.5, 1.0),
    "muscle": (0.2, 0.8),
    "weight": (0.2, 0.8),
    "height": (0.1, 0.9),
    "proportions": (0.0, 0.6),
}


@dataclass(frozen=True)
class SynthConfig:
    """Random cameras and bodies for the synthetic pairs (see the module docstring)."""

    segment_frames: int = 300
    views: int = 4
    with_mirror: bool = True
    n_phenotypes: int = 32
    cam_height: tuple[float, float] = (0.2, 3.2)
    cam_distance: tuple[float, float] = (2.0, 8.0)
    focal_px: tuple[float, float] = (800.0, 2000.0)
    image_height: int = 1000
    aspects: tuple[float, ...] = (16 / 9, 4 / 3, 1.0, 9 / 16)
    aim_height: tuple[float, float] = (0.5, 1.4)
    roll_deg: float = 5.0
    drift_mps: float = 0.15
    follow: tuple[float, float] = (0.6, 1.0)
    min_depth: float = 1.5
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LifterPairs:
    """Synthetic sequences of one split, concatenated.

    xy: (N, K, 2) float32 exact pixels; kp3d: (N, K, 3) float32 camera-frame keypoints (metres);
    starts: (S+1,) int64 sequence offsets; image_wh: (S, 2) float32; focal: (S,) float32;
    data_hash: hash of the clip list and the synthesis config.
    """

    xy: np.ndarray
    kp3d: np.ndarray
    starts: np.ndarray
    image_wh: np.ndarray
    focal: np.ndarray
    data_hash: str

    @property
    def n_sequences(self) -> int:
        return len(self.starts) - 1

    def targets(self) -> np.ndarray:
        """(N, K, 3) root-relative (mid-hip) keypoints in camera axes, metres."""
        return root_relative(self.kp3d)


def root_relative(kp3d: np.ndarray) -> np.ndarray:
    """(..., K, 3) minus the mid-hip point (mean of left and right hip)."""
    return kp3d - kp3d[..., list(MID_HIP), :].mean(-2, keepdims=True)


def look_at_torch(eye: torch.Tensor, target: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Camera-from-world rotations (..., 3, 3), OpenCV axes, world y up.

    eye, target: (..., 3) world points; roll: (...) radians about the optical axis.
    """
    fwd = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype).expand_as(fwd)
    right = torch.nn.functional.normalize(torch.linalg.cross(fwd, up), dim=-1, eps=1e-9)
    down = torch.linalg.cross(fwd, right)
    rot = torch.stack([right, down, fwd], dim=-2)  # rows: camera x, y, z in world coordinates
    c, s = torch.cos(roll), torch.sin(roll)
    z, o = torch.zeros_like(roll), torch.ones_like(roll)
    r_roll = torch.stack([torch.stack([c, -s, z], -1), torch.stack([s, c, z], -1), torch.stack([z, z, o], -1)], -2)
    return r_roll @ rot


def look_at(eye: np.ndarray, target: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """`look_at_torch` on numpy arrays (float64): eye, target (T, 3), roll (T,) -> (T, 3, 3)."""
    as64 = (torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in (eye, target, roll))
    return look_at_torch(*as64).numpy()


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 with edge replication, (T, D) -> (T, D)."""
    half = max(width // 2, 0)
    pad = np.concatenate([x[:1].repeat(half, 0), x, x[-1:].repeat(half, 0)])
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), pad]), axis=0)
    return (c[2 * half + 1 :] - c[: -2 * half - 1]) / (2 * half + 1)


def random_camera(
    transl: np.ndarray, config: SynthConfig, rng: np.random.Generator, fps: float = 30.0
) -> tuple[np.ndarray, np.ndarray, float, tuple[float, float]]:
    """A random slowly moving camera for a pelvis trajectory (T, 3) in world axes (y up).

    Returns (camera-from-world rotations (T,3,3), camera centres (T,3), focal px, (width, height)).
    """
    n_t = len(transl)
    centre = transl.mean(0)
    azim = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(*config.cam_distance)
    eye0 = np.array(
        [centre[0] + dist * np.sin(azim), rng.uniform(*config.cam_height), centre[2] + dist * np.cos(azim)]
    )
    heading = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0, config.drift_mps)
    time = np.arange(n_t)[:, None] / fps
    vel = speed * np.array([np.cos(heading), rng.uniform(-0.2, 0.2), np.sin(heading)])
    eye = eye0 + vel * time
    fixed = np.array([centre[0], rng.uniform(*config.aim_height), centre[2]])
    follow = rng.uniform(*config.follow)
    smooth = _smooth(transl.astype(np.float64), int(fps))
    target = np.repeat(fixed[None], n_t, 0)
    target[:, [0, 2]] += follow * (smooth[:, [0, 2]] - fixed[[0, 2]])
    roll0 = np.deg2rad(rng.uniform(-config.roll_deg, config.roll_deg))
    roll = roll0 + np.deg2rad(0.5) * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * time[:, 0])
    rot = look_at(eye, target, roll)
    focal = float(rng.uniform(*config.focal_px))
    aspect = float(rng.choice(config.aspects))
    size = (float(round(config.image_height * aspect)), float(config.image_height))
    return rot, eye, focal, size


def floor_height(rotations: np.ndarray, transl: np.ndarray) -> float:
    """Floor height (world y) of a clip (T,22,3,3), (T,3): low percentile of the template ankles."""
    joints = canonical_fk(rotations, transl)[:, FOOT_JOINTS, 1]  # (T, 4)
    return float(np.percentile(joints.min(-1), 5)) - 0.06


def random_phenotypes(n: int, labels: list[str], rng: np.random.Generator) -> np.ndarray:
    """(n, P) phenotype values drawn uniformly within `PHENOTYPE_RANGES` (0.5 for unknown labels)."""
    out = np.full((n, len(labels)), 0.5)
    for i, label in enumerate(labels):
        lo, hi = PHENOTYPE_RANGES.get(label, (0.5, 0.5))
        out[:, i] = rng.uniform(lo, hi, n)
    return out


def rest_states(body, config: SynthConfig, rng: np.random.Generator) -> list:  # noqa: ANN001 - AnnyBody
    """Rest states of ``config.n_phenotypes`` random plausible adults (`random_phenotypes`)."""
    phen = random_phenotypes(config.n_phenotypes, list(body.phenotype_labels), rng)
    with torch.no_grad():
        return [body.rest_state(torch.as_tensor(p, dtype=torch.float32)) for p in phen]


def segments(clips: ClipSet, config: SynthConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Segments of at most ``config.segment_frames`` (at least 16) frames of every clip, and of its mirror
    image if configured: (rotations (T, 22, 3, 3), pelvis (T, 3)), the clip's floor at y = 0."""
    for cs in [clips, mirrored_clipset(clips)] if config.with_mirror else [clips]:
        for i in range(cs.n_clips):
            rot_c, tr_c = cs.clip(i)
            tr_c = tr_c - np.float32([0.0, floor_height(rot_c, tr_c), 0.0])
            for a in range(0, len(rot_c), config.segment_frames):
                rot, tr = rot_c[a : a + config.segment_frames], tr_c[a : a + config.segment_frames]
                if len(rot) >= 16:
                    yield rot, tr


def synthesize(clips: ClipSet, body, config: SynthConfig) -> LifterPairs:  # noqa: ANN001 - AnnyBody
    """Synthetic pairs for every segment of every clip (and its mirror image if configured).

    body: a `backend.body.anny_body.AnnyBody`. Deterministic for a given config.seed.
    """
    rng = np.random.default_rng(config.seed)
    rests = rest_states(body, config, rng)
    xy_all, kp_all, lengths, wh_all, focal_all = [], [], [], [], []
    for rot, tr in segments(clips, config):
        for _ in range(config.views):
            cam_rot, eye, focal, size = random_camera(tr.astype(np.float64), config, rng)
            go = cam_rot @ rot[:, 0].astype(np.float64)
            tcam = np.einsum("tij,tj->ti", cam_rot, tr - eye)
            # Keep the subject in front of the camera: slide it back along the optical axis.
            tcam[:, 2] += max(0.0, config.min_depth - float(tcam[:, 2].min()))
            rest = rests[int(rng.integers(len(rests)))]
            with torch.no_grad():
                posed = CanonicalPose(*(torch.as_tensor(x, dtype=torch.float32) for x in (go, rot[:, 1:], tcam)))
                kp = body.keypoints_fast(posed, rest)
            k_mat = torch.tensor(
                [[focal, 0.0, size[0] / 2], [0.0, focal, size[1] / 2], [0.0, 0.0, 1.0]]
            )
            xy_all.append(project(kp, k_mat).numpy())
            kp_all.append(kp.numpy())
            lengths.append(len(rot))
            wh_all.append(size)
            focal_all.append(focal)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    log.info("synthesised %d sequences, %d frames from %d clips", len(lengths), starts[-1], clips.n_clips)
    return LifterPairs(
        xy=np.concatenate(xy_all).astype(np.float32),
        kp3d=np.concatenate(kp_all).astype(np.float32),
        starts=starts,
        image_wh=np.array(wh_all, np.float32),
        focal=np.array(focal_all, np.float32),
        data_hash=pairs_hash(clips, config),
    )


def pairs_hash(clips: ClipSet, config: SynthConfig) -> str:
    """Data hash of synthetic pairs: the clip set's hash and the synthesis config."""
    return hash_of(SYNTH_VERSION, clips.data_hash, config.to_dict())


def default_body():  # noqa: ANN201 - AnnyBody, imported lazily
    """The Anny body model (loaded on first need only: cached data skips it)."""
    from backend.body.anny_body import AnnyBody

    return AnnyBody()


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at `path`; when it is missing, ``build()`` them and write it atomically."""
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return arrays


def load_or_synthesize(clips: ClipSet, config: SynthConfig, cache_dir: Path, body=None) -> LifterPairs:  # noqa: ANN001
    """`synthesize` with a ``.npz`` cache in `cache_dir` keyed by `pairs_hash`; body built if needed."""
    data_hash = pairs_hash(clips, config)
    fields = ("xy", "kp3d", "starts", "image_wh", "focal")

    def build() -> dict[str, np.ndarray]:
        pairs = synthesize(clips, body if body is not None else default_body(), config)
        return {f: getattr(pairs, f) for f in fields}

    arrays = cached_arrays(Path(cache_dir) / f"lifter_{clips.split}_{data_hash}.npz", build)
    return LifterPairs(*(arrays[f] for f in fields), data_hash)
