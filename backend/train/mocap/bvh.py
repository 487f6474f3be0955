"""BVH (Biovision hierarchy) parser.

Supports ROOT/JOINT/End Site hierarchies with OFFSET and CHANNELS (3 rotation channels, or 6
with position channels, on any joint), any Euler channel order (channels listed ``Zrotation
Yrotation Xrotation`` mean ``R = Rz @ Ry @ Rx``, angles in degrees), and the MOTION block with
``Frames:`` and ``Frame Time:``. Position channels replace the joint's OFFSET (the usual
reading; roots of most files have a zero OFFSET anyway). End sites become joints named
``<parent>_end`` with identity rotation, so leaf bone directions (head top, toe tip) are known.

Units and frame rates are not stored reliably in BVH files, so `load_bvh` takes them from the
caller (`sources.py` holds the per-source table) or guesses the length unit from the
skeleton's rest height (`guess_scale`):

- ``cmu_iclone_bvh``: centimetres; 60 fps: the header's 1/60 s is right for these files even
  though the CMU originals are 120 fps (they keep every other frame; evidence in `sources.py`).
- ``cmu_dance_martial_bvh``: centimetres; salsa 60 fps (its headers wrongly say 120), Indian
  dance and martial arts 120 fps (from the folder's readme.txt).
- ``animated_drawings_bvh``: ``cmu1`` uses CMU ASF units (inches / 0.45), ``rokoko`` centimetres,
  ``fair1`` has no documented unit (a fixed 3.75 cm per unit is assumed, see `sources.py`);
  header frame times are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.train.mocap.common import MocapFormatError, Motion, Skeleton, euler_to_rotmat, rest_height

log = logging.getLogger(__name__)

# Metres per file unit for the units a BVH file may use, tried by `guess_scale` in this order.
CANDIDATE_SCALES: tuple[tuple[str, float], ...] = (
    ("m", 1.0),
    ("cm", 0.01),
    ("mm", 0.001),
    ("inch", 0.0254),
    ("cmu_asf", 0.0254 / 0.45),
)
PLAUSIBLE_HEIGHT_M: tuple[float, float] = (1.2, 2.1)  # rest extent range accepted by guess_scale


@dataclass(frozen=True)
class BvhHeader:
    """The raw parse of a BVH file, before units are applied.

    names, parents: (J,) including end sites; offsets: (J,3) file units;
    channels: per joint the channel names (empty for end sites);
    frames: (T,C) the motion block; frame_time: seconds per frame as written in the file.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    frames: np.ndarray
    frame_time: float


def _tokens(text: str) -> list[str]:
    return text.replace("{", " { ").replace("}", " } ").split()


def parse_bvh_text(text: str, source: str = "<string>") -> BvhHeader:
    """Parse BVH text into a `BvhHeader` (no unit conversion); raises MocapFormatError."""
    head, sep, body = text.partition("MOTION")
    if not sep:
        raise MocapFormatError(f"{source}: no MOTION section")
    tok = _tokens(head)
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    stack: list[int] = []
    i = 0
    try:
        while i < len(tok):
            t = tok[i]
            if t in ("ROOT", "JOINT") or (t == "End" and tok[i + 1] == "Site"):
                if t == "End":
                    parent = stack[-1]
                    names.append(f"{names[parent]}_end")
                    i += 2
                else:
                    names.append(tok[i + 1])
                    i += 2
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append(())
                if tok[i] != "{":
                    raise MocapFormatError(f"{source}: expected '{{' after {names[-1]}")
                stack.append(len(names) - 1)
                i += 1
            elif t == "OFFSET":
                offsets[stack[-1]] = [float(v) for v in tok[i + 1 : i + 4]]
                i += 4
            elif t == "CHANNELS":
                n = int(tok[i + 1])
                channels[stack[-1]] = tuple(tok[i + 2 : i + 2 + n])
                i += 2 + n
            elif t == "}":
                stack.pop()
                i += 1
            elif t == "HIERARCHY":
                i += 1
            else:
                raise MocapFormatError(f"{source}: unexpected token {t!r} in HIERARCHY")
    except (IndexError, ValueError) as exc:
        raise MocapFormatError(f"{source}: malformed HIERARCHY ({exc})") from exc
    if not names or stack:
        raise MocapFormatError(f"{source}: empty or unbalanced HIERARCHY")
    if len(set(names)) != len(names):
        raise MocapFormatError(f"{source}: duplicate joint names")

    lines = body.strip().splitlines()
    try:
        n_frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
        values = np.array(" ".join(lines[2:]).split(), dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise MocapFormatError(f"{source}: malformed MOTION header ({exc})") from exc
    n_ch = sum(len(c) for c in channels)
    if n_ch == 0 or values.size < n_frames * n_ch:
        raise MocapFormatError(f"{source}: {values.size} numbers for {n_frames} frames x {n_ch} channels")
    if values.size != n_frames * n_ch:
        log.warning(
            "%s: %d extra numbers after %d frames ignored", source, values.size - n_frames * n_ch, n_frames
        )
    frames = values[: n_frames * n_ch].reshape(n_frames, n_ch)
    return BvhHeader(tuple(names), tuple(parents), np.array(offsets), tuple(channels), frames, frame_time)


def _raw_skeleton(header: BvhHeader, scale: float) -> Skeleton:
    return Skeleton(header.names, header.parents, header.offsets * scale)


def guess_scale(header: BvhHeader) -> float:
    """Metres per file unit: the first of `CANDIDATE_SCALES` giving a plausible rest height.

    The up axis is taken as the rest pose's largest extent. Falls back to scaling the rest
    extent to 1.7 m (with a warning) when no common unit fits.
    """
    rest = _raw_skeleton(header, 1.0).rest_positions()
    extent = rest.max(axis=0) - rest.min(axis=0)
    height = float(extent.max())
    if height <= 0:
        raise MocapFormatError("degenerate BVH skeleton (zero extent)")
    for unit, scale in CANDIDATE_SCALES:
        if PLAUSIBLE_HEIGHT_M[0] <= height * scale <= PLAUSIBLE_HEIGHT_M[1]:
            log.debug("BVH unit guessed as %s (rest extent %.3f)", unit, height)
            return scale
    log.warning("BVH unit unknown (rest extent %.3f units): scaling the skeleton to 1.7 m", height)
    return 1.7 / height


def bvh_motion(header: BvhHeader, scale: float, fps: float | None = None) -> tuple[Skeleton, Motion]:
    """Build (Skeleton, Motion) from a parsed header.

    scale: metres per file unit; fps: frame rate to use (None: 1 / header frame time).
    """
    n_t = header.frames.shape[0]
    n_j = len(header.names)
    rot = np.broadcast_to(np.eye(3), (n_t, n_j, 3, 3)).copy()
    trans = np.broadcast_to(header.offsets * scale, (n_t, n_j, 3)).copy()
    animated_trans = False
    col = 0
    for j, chans in enumerate(header.channels):
        block = header.frames[:, col : col + len(chans)]
        col += len(chans)
        rot_idx = [k for k, c in enumerate(chans) if c.lower().endswith("rotation")]
        pos_idx = [k for k, c in enumerate(chans) if c.lower().endswith("position")]
        if rot_idx:
            order = "".join(chans[k][0].upper() for k in rot_idx)
            if len(order) != 3 or set(order) != {"X", "Y", "Z"}:
                raise MocapFormatError(f"joint {header.names[j]}: unsupported rotation channels {chans}")
            rot[:, j] = euler_to_rotmat(order, block[:, rot_idx])
        if pos_idx:
            for k in pos_idx:
                axis = "XYZ".index(chans[k][0].upper())
                trans[:, j, axis] = block[:, k] * scale
            animated_trans = animated_trans or header.parents[j] >= 0
    if fps is None:
        if header.frame_time <= 0:
            raise MocapFormatError("non-positive Frame Time and no fps given")
        fps = 1.0 / header.frame_time
    skeleton = _raw_skeleton(header, scale)
    motion = Motion(
        root_positions=trans[:, 0].copy(),
        rotations=rot,
        fps=float(fps),
        local_translations=trans if animated_trans else None,
    )
    return skeleton, motion


def load_bvh(
    path: str | Path, scale: float | None = None, fps: float | None = None
) -> tuple[Skeleton, Motion]:
    """Load a BVH file.

    scale: metres per file unit (None: `guess_scale`); fps: overrides the header's frame time
    (None: 1 / Frame Time). Returns the source skeleton (offsets in metres, end sites included)
    and motion (root positions (T,3) m, local rotations (T,J,3,3), fps).
    """
    path = Path(path)
    header = parse_bvh_text(path.read_text(encoding="utf-8", errors="replace"), str(path))
    if scale is None:
        scale = guess_scale(header)
    skeleton, motion = bvh_motion(header, scale, fps)
    height = max(rest_height(skeleton, a) for a in range(3))
    if not PLAUSIBLE_HEIGHT_M[0] <= height <= PLAUSIBLE_HEIGHT_M[1]:
        log.warning("%s: rest extent %.2f m is outside the plausible human range", path, height)
    return skeleton, motion
