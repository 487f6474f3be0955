"""Canonical clips from ``../shared/mocap``: loading, resampling, mirroring and the subject split.

`load_clip` reads any supported file (the format and per-source facts come from the folder, see
`sources.py`), retargets it to the canonical skeleton, drops leading reference-pose frames
(`leading_glitch_frames`) and resamples it to 30 fps. Joint positions
are forward kinematics of the canonical skeleton with the clip's own bone table (the source's
bone lengths along the canonical T-pose directions, see `retarget.py`), so they reproduce the
source's bone directions and its mapped joint positions (joints the source lacks are placed
with template proportions); `canonical.canonical_fk` with `TEMPLATE_OFFSETS` gives the same
motion on the fixed average adult (1.71 m) instead.

Split (by subject, so no test or validation subject is ever seen in training):

- test: CMU subject 7 (``cmu_iclone_bvh`` and ``cmu_deepmimic``) and HDM05 actor ``mm``.
- validation, one more subject per source family: CMU subject 2 (numbered CMU subjects in
  ``cmu_iclone_bvh`` and ``cmu_deepmimic``), HDM05 ``tr`` (the other actor of HDM05's own test
  folder, so our train stays inside theirs), the Indian dancer of ``cmu_dance_martial_bvh``, and
  the Rokoko performer of ``animated_drawings_bvh``.
- train: everything else (DeepMimic's ``extra`` clips count as one subject, in train).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import roma
import torch

from backend.train.mocap.amc import load_amc
from backend.train.mocap.bvh import load_bvh
from backend.train.mocap.canonical import MIRROR_INDEX, REFLECT_X, canonical_fk, stature_estimate
from backend.train.mocap.common import MocapFormatError, Motion, Skeleton
from backend.train.mocap.deepmimic import load_deepmimic
from backend.train.mocap.retarget import Retargeted, retarget
from backend.train.mocap.sources import FOLDERS, SourceInfo, source_by_name, source_of

log = logging.getLogger(__name__)

DEFAULT_MOCAP_ROOT = Path(__file__).resolve().parents[3].parent / "shared" / "mocap"  # ../shared/mocap
TARGET_FPS = 30.0
TEST_SUBJECTS = frozenset({"cmu007", "hdm05_mm"})
VAL_SUBJECTS = frozenset({"cmu002", "hdm05_tr", "cmu_indian", "ad_rokoko"})
NOT_CLIPS = frozenset({"standard.bvh", "humanoid3d_skeleton.txt"})  # reference files, not motions
PLAUSIBLE_STATURE_M = (1.5, 1.9)


@dataclass(frozen=True)
class CanonicalClip:
    """One motion on the canonical skeleton (SMPL-X body joints, canonical axes, metres).

    name: file stem; source: `SourceInfo.name`; subject: split identity (e.g. ``cmu007``,
    ``hdm05_mm``); fps: frame rate (30 after `load_clip`); rotations: (T,22,3,3) float32 local
    rotations (pelvis: global orientation); transl: (T,3) float32 pelvis position, floor as in
    the source (y = 0 for most); joints: (T,22,3) float32 forward kinematics with `offsets`;
    offsets: (22,3) float32 bone table; mirrored: True for a left/right mirrored copy.
    """

    name: str
    source: str
    subject: str
    fps: float
    rotations: np.ndarray
    transl: np.ndarray
    joints: np.ndarray
    offsets: np.ndarray
    mirrored: bool = False

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        """Seconds, (T-1)/fps."""
        return max(self.n_frames - 1, 0) / self.fps


@dataclass(frozen=True)
class ClipRef:
    """A clip file found by `iter_clips`: path, source name, subject, split."""

    path: Path
    source: str
    subject: str
    split: str


def _relative(path: Path) -> str:
    parts = path.resolve().parts
    for i, part in enumerate(parts):
        if part in FOLDERS:
            return "/".join(parts[i:])
    raise MocapFormatError(f"{path}: not inside a known mocap folder ({', '.join(FOLDERS)})")


def subject_of(path: str | Path) -> str:
    """Split identity of a clip file, from its path (see the module docstring for the names)."""
    rel = _relative(Path(path))
    stem = Path(rel).stem
    top = rel.split("/")[0]
    if top == "cmu_iclone_bvh":
        return f"cmu{int(rel.split('/')[2]):03d}"
    if top == "cmu_deepmimic":
        m = re.match(r"(\d+)_\d+$", stem)
        return f"cmu{int(m.group(1)):03d}" if m else "deepmimic_extra"
    if top == "hdm05_amc":
        return f"hdm05_{stem.split('_')[1].lower()}"
    if top == "cmu_dance_martial_bvh":
        style = rel.split("/")[1]
        if style == "salsa":  # 01-15 and 16-30 are the two partners of the same takes
            return "cmu_salsa_a" if int(stem) <= 15 else "cmu_salsa_b"
        return f"cmu_{style}"
    return f"ad_{rel.split('/')[1]}"


def split_of(clip: CanonicalClip | ClipRef | str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a clip (or a subject name)."""
    subject = clip if isinstance(clip, str) else clip.subject
    if subject in TEST_SUBJECTS:
        return "test"
    if subject in VAL_SUBJECTS:
        return "val"
    return "train"


def iter_clips(root: Path = DEFAULT_MOCAP_ROOT) -> Iterator[ClipRef]:
    """Every motion file under `root` (sorted), with its source, subject and split; loads nothing."""
    root = Path(root)
    for folder in FOLDERS:
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).rglob("*")):
            suffix = path.suffix.lower()
            if not path.is_file() or path.name in NOT_CLIPS:
                continue
            fmt = {".bvh": "bvh", ".amc": "amc", ".txt": "deepmimic"}.get(suffix)
            if fmt is None or (fmt == "deepmimic" and folder != "cmu_deepmimic"):
                continue
            subject = subject_of(path)
            yield ClipRef(path, source_of(_relative(path)).name, subject, split_of(subject))


def load_source(path: str | Path, source: str | None = None) -> tuple[SourceInfo, Skeleton, Motion]:
    """Read a mocap file with its source's units and fps (no retargeting).

    source: a `SourceInfo` name (e.g. ``"cmu_iclone_bvh"``) for files outside ``../shared/mocap``;
    None infers it from the path.
    """
    path = Path(path)
    info = source_by_name(source) if source is not None else source_of(_relative(path))
    if info.fmt == "bvh":
        skeleton, motion = load_bvh(path, scale=info.scale, fps=info.fps)
    elif info.fmt == "amc":
        skeleton, motion = load_amc(path)
    else:
        skeleton, motion = load_deepmimic(path)
    return info, skeleton, motion


def load_clip(path: str | Path, fps: float = TARGET_FPS, source: str | None = None) -> CanonicalClip:
    """Load, retarget and resample one clip (see the module docstring).

    source: as in `load_source`; files outside the known folders get subject ``"unknown"``.
    """
    path = Path(path)
    info, skeleton, motion = load_source(path, source)
    ret = retarget(skeleton, motion, info.spec)
    try:
        subject = subject_of(path)
    except (MocapFormatError, ValueError, AttributeError, IndexError):
        subject = "unknown"
    return clip_from_retargeted(ret, path.stem, info.name, subject, fps)


def leading_glitch_frames(ret: Retargeted, max_frames: int = 5) -> int:
    """How many leading frames jump away from the motion (reference T-pose or zero-pose frames).

    CMU conversions often start with the rig's reference pose (every ``cmu_dance_martial_bvh``
    clip, ten ``cmu_iclone_bvh`` clips). A leading step counts as a jump when some joint moves more
    than max(0.1 m, 10 x the clip's median per-frame step); at most `max_frames` are reported.
    """
    if ret.rotations.shape[0] < 4:
        return 0
    joints = canonical_fk(ret.rotations, ret.transl, ret.offsets)
    steps = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=-1)  # (T-1,)
    limit = max(0.1, 10.0 * float(np.median(steps)))
    n = 0
    while n < min(max_frames, len(steps) - 1) and steps[n] > limit:
        n += 1
    return n


def clip_from_retargeted(
    ret: Retargeted, name: str, source: str, subject: str, fps: float = TARGET_FPS
) -> CanonicalClip:
    """Drop leading glitch frames, resample a retargeted motion to `fps` and compute its joints."""
    drop = leading_glitch_frames(ret)
    if drop:
        log.info("%s/%s: dropping %d leading reference/glitch frame(s)", source, name, drop)
        ret = replace(
            ret,
            rotations=ret.rotations[drop:],
            transl=ret.transl[drop:],
            source_positions=ret.source_positions[drop:],
        )
    stature = stature_estimate(ret.offsets)
    if not PLAUSIBLE_STATURE_M[0] <= stature <= PLAUSIBLE_STATURE_M[1]:
        log.debug("%s/%s: estimated stature %.2f m outside %s", source, name, stature, PLAUSIBLE_STATURE_M)
    rot, transl = resample(ret.rotations, ret.transl, ret.fps, fps)
    joints = canonical_fk(rot, transl, ret.offsets)
    return CanonicalClip(
        name=name,
        source=source,
        subject=subject,
        fps=float(fps),
        rotations=rot.astype(np.float32),
        transl=transl.astype(np.float32),
        joints=joints.astype(np.float32),
        offsets=ret.offsets.astype(np.float32),
    )


def resample(
    rotations: np.ndarray, transl: np.ndarray, fps_in: float, fps_out: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resample to `fps_out` over the same time span, [0, (T-1)/fps_in].

    rotations: (T,J,3,3), slerp between neighbouring frames (roma); transl: (T,3), linear.
    Returns ((T',J,3,3), (T',3)) with T' = floor((T-1) * fps_out / fps_in) + 1.
    """
    n_t = rotations.shape[0]
    if n_t < 2 or abs(fps_in - fps_out) < 1e-9:
        return rotations.copy(), transl.copy()
    n_out = int(np.floor((n_t - 1) * fps_out / fps_in + 1e-6)) + 1
    pos = np.arange(n_out) * (fps_in / fps_out)
    i0 = np.minimum(np.floor(pos + 1e-9).astype(int), n_t - 2)
    s = np.clip(pos - i0, 0.0, 1.0)
    tr = transl[i0] * (1.0 - s)[:, None] + transl[i0 + 1] * s[:, None]
    q = roma.rotmat_to_unitquat(torch.as_tensor(rotations, dtype=torch.float64))
    q0, q1 = q[i0], q[i0 + 1]
    rel = roma.unitquat_to_rotvec(roma.quat_product(roma.quat_conjugation(q0), q1))
    step = torch.as_tensor(s, dtype=torch.float64)[:, None, None]
    qs = roma.quat_product(q0, roma.rotvec_to_unitquat(rel * step))
    return roma.unitquat_to_rotmat(qs).numpy(), tr


def mirror(clip: CanonicalClip) -> CanonicalClip:
    """Left/right mirror image (swap sides, reflect x); mirroring twice gives the clip back."""
    perm = list(MIRROR_INDEX)
    m = REFLECT_X.astype(np.float32)
    return replace(
        clip,
        rotations=(m @ clip.rotations[:, perm] @ m).astype(np.float32),
        transl=(clip.transl * np.float32([-1, 1, 1])).astype(np.float32),
        joints=(clip.joints[:, perm] * np.float32([-1, 1, 1])).astype(np.float32),
        offsets=(clip.offsets[perm] * np.float32([-1, 1, 1])).astype(np.float32),
        mirrored=not clip.mirrored,
    )
