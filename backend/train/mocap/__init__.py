"""Motion-capture loaders (BVH, ASF/AMC, DeepMimic) and retargeting to the canonical skeleton.

Entry points: `load_clip` (any file of ``../shared/mocap`` -> `CanonicalClip` at 30 fps),
`iter_clips` (all clips with their subject and split), `split_of`, `mirror`, `resample`; the
format readers `load_bvh`, `load_amc`, `load_deepmimic`; `retarget` and `bone_direction_errors`.
"""

from backend.train.mocap.amc import load_amc
from backend.train.mocap.bvh import load_bvh
from backend.train.mocap.common import MocapFormatError, Motion, Skeleton
from backend.train.mocap.dataset import (
    CanonicalClip,
    ClipRef,
    iter_clips,
    load_clip,
    load_source,
    mirror,
    resample,
    split_of,
    subject_of,
)
from backend.train.mocap.deepmimic import load_deepmimic
from backend.train.mocap.retarget import Retargeted, RetargetSpec, bone_direction_errors, retarget

__all__ = [
    "CanonicalClip",
    "ClipRef",
    "MocapFormatError",
    "Motion",
    "RetargetSpec",
    "Retargeted",
    "Skeleton",
    "bone_direction_errors",
    "iter_clips",
    "load_amc",
    "load_bvh",
    "load_clip",
    "load_deepmimic",
    "load_source",
    "mirror",
    "resample",
    "retarget",
    "split_of",
    "subject_of",
]
