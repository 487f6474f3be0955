"""Motion-capture loaders (BVH, ASF/AMC, DeepMimic) and retargeting to the canonical skeleton.

Entry points: `load_clip` (any file of ``../shared/mocap`` -> `CanonicalClip` at 30 fps),
`iter_clips` (all clips with their subject and split), `split_of`, `mirror`, `resample`; the
format readers `load_bvh`, `load_amc`, `load_deepmimic`; `retarget` and `bone_direction_errors`.
"""

from backend.io.mocap.amc import load_amc
from backend.io.mocap.bvh import load_bvh
from backend.io.mocap.common import MocapFormatError, Motion, Skeleton
from backend.io.mocap.dataset import (
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
from backend.io.mocap.deepmimic import load_deepmimic
from backend.io.mocap.retarget import Retargeted, RetargetSpec, bone_direction_errors, retarget

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
