"""Training data from ``../shared/mocap``: canonical clips per split, pose-prior samples, caching.

The subject split is `backend.train.mocap.split_of` (test: CMU 7 and HDM05 ``mm``; validation: CMU 2,
HDM05 ``tr``, the Indian dancer, the Rokoko performer; train: the rest). Every set built here takes
the clips of exactly one split, so test subjects never reach training data.

Loaded clips are cached per split as one ``.npz`` (`ClipSet`), named by a data hash of the clip
list (relative paths and file sizes) and the loader settings; the lifter's synthetic pairs
(``synth.py``) add their own configuration to that hash.

Attribution needed for anything trained on this data: `ATTRIBUTION` (also in ``backend/weights/NOTICE``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from backend.train.mocap import CanonicalClip, ClipRef, iter_clips, load_clip, mirror
from backend.train.mocap.dataset import DEFAULT_MOCAP_ROOT, TARGET_FPS, TEST_SUBJECTS

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
CLIPSET_VERSION = 1
ATTRIBUTION = """\
Weights in this folder were trained on motion-capture data from:

- CMU Graphics Lab Motion Capture Database: "The data used in this project was obtained from
  mocap.cs.cmu.edu. The database was created with funding from NSF EIA-0196217."
  CMU's terms: free for all uses, including in commercially sold products; the data itself may
  not be resold, even converted.
- HDM05: M. Müller, T. Röder, M. Clausen, B. Eberhardt, B. Krüger, A. Weber,
  "Documentation Mocap Database HDM05", Universität Bonn, 2007. Licensed CC BY-SA 3.0
  (https://creativecommons.org/licenses/by-sa/3.0/): attribute, and share adapted material
  under the same licence.
- Animated Drawings examples: MIT licence, Copyright (c) Meta Platforms, Inc. and affiliates.
"""


def default_cache_dir() -> Path:
    """``$VIDEO2ANIM_CACHE/train`` or ``~/.cache/video2anim/train`` (outside the repository)."""
    base = os.environ.get("VIDEO2ANIM_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "video2anim") / "train"


@dataclass(frozen=True)
class DataConfig:
    """Where the mocap lives, where caches go, and the frame rate clips are resampled to."""

    mocap_root: Path = DEFAULT_MOCAP_ROOT
    cache_dir: Path | None = None
    fps: float = TARGET_FPS

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()


@dataclass(frozen=True)
class ClipSet:
    """Clips of one split, concatenated.

    rotations: (N,22,3,3) float32 canonical local rotations (pelvis: global orientation);
    transl: (N,3) float32 pelvis positions (canonical world axes, y up, metres);
    starts: (C+1,) int64 frame offsets of the C clips; names, subjects: (C,) per clip;
    data_hash: hash of the clip list and loader settings.
    """

    split: str
    rotations: np.ndarray
    transl: np.ndarray
    starts: np.ndarray
    names: tuple[str, ...]
    subjects: tuple[str, ...]
    data_hash: str

    @property
    def n_clips(self) -> int:
        return len(self.names)

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """((T,22,3,3), (T,3)) of clip i."""
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        return self.rotations[a:b], self.transl[a:b]


def split_refs(split: str, root: Path = DEFAULT_MOCAP_ROOT) -> list[ClipRef]:
    """The clip files of one split (sorted); raises ValueError for an unknown split name."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [r for r in iter_clips(root) if r.split == split]


def hash_of(*parts: object) -> str:
    """A short stable hash (16 hex) of JSON-serialisable parts (paths become strings)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def refs_hash(refs: Sequence[ClipRef], root: Path, extra: object = None) -> str:
    """Data hash of a clip list: relative paths, file sizes and `extra` settings."""
    listing = [(str(r.path.relative_to(root)), r.path.stat().st_size, r.subject) for r in refs]
    return hash_of(CLIPSET_VERSION, listing, extra)


def clipset_from_clips(
    clips: Sequence[CanonicalClip], split: str, data_hash: str, min_frames: int = 8
) -> ClipSet:
    """Concatenate canonical clips (shorter than `min_frames` are skipped) into a `ClipSet`."""
    keep = [c for c in clips if c.n_frames >= min_frames]
    lengths = np.array([c.n_frames for c in keep], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return ClipSet(
        split=split,
        rotations=np.concatenate([c.rotations for c in keep]).astype(np.float32)
        if keep
        else np.zeros((0, 22, 3, 3), np.float32),
        transl=np.concatenate([c.transl for c in keep]).astype(np.float32) if keep else np.zeros((0, 3)),
        starts=starts,
        names=tuple(c.name for c in keep),
        subjects=tuple(c.subject for c in keep),
        data_hash=data_hash,
    )


def load_clipset(split: str, config: DataConfig = DataConfig()) -> ClipSet:
    """All clips of `split`, loaded with `load_clip` (cached as ``clips_<split>_<hash>.npz``)."""
    root = Path(config.mocap_root)
    refs = split_refs(split, root)
    if not refs:
        raise FileNotFoundError(f"no mocap clips of split {split!r} under {root}")
    data_hash = refs_hash(refs, root, {"fps": config.fps})
    path = config.cache / f"clips_{split}_{data_hash}.npz"
    if path.is_file():
        with np.load(path) as z:
            return ClipSet(
                split=split,
                rotations=z["rotations"],
                transl=z["transl"],
                starts=z["starts"],
                names=tuple(str(s) for s in z["names"]),
                subjects=tuple(str(s) for s in z["subjects"]),
                data_hash=data_hash,
            )
    log.info("loading %d %s clips from %s (cached afterwards in %s)", len(refs), split, root, path)
    clips = []
    for ref in refs:
        try:
            clips.append(load_clip(ref.path, fps=config.fps))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop training
            log.warning("skipping %s: %s", ref.path, exc)
    clipset = clipset_from_clips(clips, split, data_hash)
    if split != "test":
        assert not set(clipset.subjects) & TEST_SUBJECTS, "test subjects in a non-test split"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(
        tmp,
        rotations=clipset.rotations,
        transl=clipset.transl,
        starts=clipset.starts,
        names=np.array(clipset.names),
        subjects=np.array(clipset.subjects),
    )
    tmp.replace(path)
    return clipset


def mirrored_clipset(clips: ClipSet) -> ClipSet:
    """Left/right mirror image of every clip (`backend.train.mocap.mirror`), same layout."""
    out_rot = np.empty_like(clips.rotations)
    out_tr = np.empty_like(clips.transl)
    zeros = np.zeros((1, 22, 3), np.float32)
    for i in range(clips.n_clips):
        rot, tr = clips.clip(i)
        a, b = int(clips.starts[i]), int(clips.starts[i + 1])
        clip = CanonicalClip("", "", "", TARGET_FPS, rot, tr, zeros.repeat(len(rot), 0), zeros[0])
        m = mirror(clip)
        out_rot[a:b], out_tr[a:b] = m.rotations, m.transl
    return ClipSet(
        clips.split, out_rot, out_tr, clips.starts, clips.names, clips.subjects, clips.data_hash + "m"
    )


def body_poses_aa(clips: ClipSet, with_mirror: bool = False, stride: int = 1) -> np.ndarray:
    """Pose-prior samples: the 21 body joint rotations as axis-angle, (N, 63) float32.

    stride: keep every `stride`-th frame; with_mirror: append the mirrored poses.
    """
    sets = [clips, mirrored_clipset(clips)] if with_mirror else [clips]
    rots = np.concatenate([s.rotations[::stride, 1:] for s in sets])
    aa = roma.rotmat_to_rotvec(torch.as_tensor(rots, dtype=torch.float64))
    return aa.reshape(len(rots), 63).float().numpy()
