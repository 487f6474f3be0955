"""Acclaim ASF/AMC parser (HDM05, CMU).

ASF: ``:units`` (``length`` L: file lengths are inches times L, so metres = value / L * 0.0254;
``angle deg|rad``), ``:root`` (``order`` of the AMC root values, ``axis`` rotation order,
``position``, ``orientation``), ``:bonedata`` (per bone: ``direction`` unit vector in the world
rest frame, ``length``, ``axis ax ay az ORDER`` giving the bone's local frame C, ``dof``) and
``:hierarchy``. AMC: a frame number line followed by one ``bone values...`` line per animated
bone, values in the bone's dof order (root: the ``order`` list), angles in degrees unless the
ASF says rad. HDM05 and CMU record at 120 fps (not stored in the files).

Rotations follow the usual Acclaim reading: an Euler triple with order ``XYZ`` is
``Rz @ Ry @ Rx`` (extrinsic, first listed applied first); a bone's world rotation is
``G_parent @ C @ M @ C^T`` with M from its dof values, so rest frames are world aligned.
Joints: ``root``, one joint per bone at the bone's start (its parent bone's tip) and an
``<bone>_end`` joint at each leaf bone's tip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from backend.train.mocap.common import MocapFormatError, Motion, Skeleton

log = logging.getLogger(__name__)

AMC_FPS = 120.0
INCH_M = 0.0254


@dataclass(frozen=True)
class AsfBone:
    """One ASF bone: direction (3,) unit, world rest frame; length in metres; axis C (3,3); dofs."""

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    dofs: tuple[str, ...]


@dataclass(frozen=True)
class AsfSkeleton:
    """A parsed ASF file.

    skeleton: joints root, bones, end sites (offsets in metres); bones: per skeleton joint the
    bone whose rotation it carries (None for root and end sites); root_order: AMC root value
    order (e.g. TX TY TZ RX RY RZ); root_axis: (3,3) root frame C; root_rot_order: e.g. "XYZ";
    length_scale: metres per file length unit; degrees: angle unit flag.
    """

    skeleton: Skeleton
    bones: tuple[AsfBone | None, ...]
    root_order: tuple[str, ...]
    root_axis: np.ndarray
    root_rot_order: str
    length_scale: float
    degrees: bool


def _euler(order: str, angles: np.ndarray, degrees: bool) -> np.ndarray:
    """Extrinsic Euler (first listed axis applied first) to (...,3,3) via roma."""
    a = torch.as_tensor(np.asarray(angles, dtype=np.float64))
    return roma.euler_to_rotmat(order.lower(), a, degrees=degrees).numpy()


def _sections(text: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            key, *rest = line.split()
            current = key[1:].lower()
            out.setdefault(current, [])
            if rest:
                out[current].append(rest)
        elif current:
            out[current].append(line.split())
    return out


def parse_asf(text: str, source: str = "<asf>") -> AsfSkeleton:
    """Parse ASF text (see the module docstring); raises MocapFormatError."""
    sec = _sections(text)
    units = {r[0].lower(): r[1] for r in sec.get("units", []) if len(r) >= 2}
    length_unit = float(units.get("length", 1.0))
    scale = INCH_M / length_unit
    degrees = units.get("angle", "deg").lower().startswith("deg")
    root = {r[0].lower(): r[1:] for r in sec.get("root", [])}
    root_order = tuple(v.upper() for v in root.get("order", ["TX", "TY", "TZ", "RX", "RY", "RZ"]))
    root_rot_order = "".join(root.get("axis", ["XYZ"])).upper()
    root_pos = np.array([float(v) for v in root.get("position", [0, 0, 0])]) * scale
    root_c = _euler(root_rot_order, np.array([float(v) for v in root.get("orientation", [0, 0, 0])]), degrees)

    bones: dict[str, AsfBone] = {}
    cur: dict[str, list[str]] = {}
    try:
        for row in sec.get("bonedata", []):
            key = row[0].lower()
            if key == "begin":
                cur = {}
            elif key == "end":
                name = cur["name"][0]
                direction = np.array([float(v) for v in cur["direction"][:3]])
                axis_vals = cur.get("axis", ["0", "0", "0", "XYZ"])
                axis = _euler(axis_vals[3], np.array([float(v) for v in axis_vals[:3]]), degrees)
                dofs = tuple(d.lower() for d in cur.get("dof", []))
                if any(d not in ("rx", "ry", "rz") for d in dofs):
                    raise MocapFormatError(f"{source}: bone {name} has unsupported dof {dofs}")
                bones[name] = AsfBone(name, direction, float(cur["length"][0]) * scale, axis, dofs)
            elif key in ("name", "direction", "length", "axis", "dof", "id"):
                cur[key] = row[1:]
    except (KeyError, IndexError, ValueError) as exc:
        raise MocapFormatError(f"{source}: malformed bonedata ({exc})") from exc

    children: dict[str, list[str]] = {}
    for row in sec.get("hierarchy", []):
        if row[0].lower() in ("begin", "end"):
            continue
        children.setdefault(row[0], []).extend(row[1:])
    names, parents, offsets, carried = ["root"], [-1], [root_pos], [None]
    stack = [(c, 0) for c in reversed(children.get("root", []))]
    while stack:
        name, parent = stack.pop()
        if name not in bones:
            raise MocapFormatError(f"{source}: hierarchy names unknown bone {name}")
        pbone = carried[parent]
        offsets.append(pbone.direction * pbone.length if pbone is not None else np.zeros(3))
        names.append(name)
        parents.append(parent)
        carried.append(bones[name])
        idx = len(names) - 1
        kids = children.get(name, [])
        if not kids:
            names.append(f"{name}_end")
            parents.append(idx)
            offsets.append(bones[name].direction * bones[name].length)
            carried.append(None)
        stack.extend((c, idx) for c in reversed(kids))
    skeleton = Skeleton(tuple(names), tuple(parents), np.array(offsets))
    return AsfSkeleton(skeleton, tuple(carried), root_order, root_c, root_rot_order, scale, degrees)


def parse_amc(text: str, asf: AsfSkeleton, fps: float = AMC_FPS, source: str = "<amc>") -> Motion:
    """Parse AMC text against its ASF skeleton into a Motion (metres, fps as given)."""
    rows: list[list[str]] = []
    frame_starts: list[int] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#:":
            continue
        parts = line.split()
        if len(parts) == 1 and parts[0].isdigit():
            frame_starts.append(len(rows))
        else:
            rows.append(parts)
    n_t = len(frame_starts)
    if n_t == 0:
        raise MocapFormatError(f"{source}: no frames")
    names = asf.skeleton.names
    index = {n: i for i, n in enumerate(names)}
    values: dict[str, np.ndarray] = {}
    widths = {n: len(b.dofs) for n, b in zip(names, asf.bones, strict=True) if b is not None}
    widths["root"] = len(asf.root_order)
    bounds = frame_starts + [len(rows)]
    try:
        for t in range(n_t):
            for parts in rows[bounds[t] : bounds[t + 1]]:
                name = parts[0]
                if name not in widths:
                    raise MocapFormatError(f"{source}: frame {t + 1} names unknown bone {name}")
                arr = values.get(name)
                if arr is None:
                    arr = values[name] = np.zeros((n_t, widths[name]))
                arr[t] = [float(v) for v in parts[1 : 1 + widths[name]]]
    except ValueError as exc:
        raise MocapFormatError(f"{source}: bad number ({exc})") from exc

    rot = np.broadcast_to(np.eye(3), (n_t, len(names), 3, 3)).copy()
    root_vals = values.get("root", np.zeros((n_t, len(asf.root_order))))
    root_pos = np.zeros((n_t, 3))
    root_ang = np.zeros((n_t, 3))
    for k, ch in enumerate(asf.root_order):
        if ch.startswith("T"):
            root_pos[:, "XYZ".index(ch[1])] = root_vals[:, k] * asf.length_scale
        else:
            root_ang[:, "XYZ".index(ch[1])] = root_vals[:, k]
    ordered = root_ang[:, ["XYZ".index(c) for c in asf.root_rot_order]]
    m = _euler(asf.root_rot_order, ordered, asf.degrees)
    rot[:, 0] = asf.root_axis @ m @ asf.root_axis.T
    for name, vals in values.items():
        bone = asf.bones[index[name]] if name != "root" else None
        if bone is None or not bone.dofs:
            continue
        order = "".join(d[1] for d in bone.dofs)
        m = _euler(order, vals, asf.degrees)
        rot[:, index[name]] = bone.axis @ m @ bone.axis.T
    return Motion(root_positions=root_pos, rotations=rot, fps=fps)


def load_asf(path: str | Path) -> AsfSkeleton:
    """Load an ASF skeleton file."""
    path = Path(path)
    return parse_asf(path.read_text(encoding="latin-1"), str(path))


def load_amc(
    amc_path: str | Path, asf_path: str | Path | None = None, fps: float = AMC_FPS
) -> tuple[Skeleton, Motion]:
    """Load an AMC motion with its ASF skeleton.

    asf_path: None looks for ``HDM_<actor>.asf`` (HDM05 naming) next to the AMC file, then for
    the only ``*.asf`` there. Returns (skeleton in metres, motion at `fps`, default 120).
    """
    amc_path = Path(amc_path)
    if asf_path is None:
        asf_path = find_asf(amc_path)
    asf = load_asf(asf_path)
    motion = parse_amc(amc_path.read_text(encoding="latin-1"), asf, fps, str(amc_path))
    return asf.skeleton, motion


def find_asf(amc_path: Path) -> Path:
    """The ASF file belonging to an AMC file (HDM05: HDM_<actor>.asf in the same folder)."""
    parts = amc_path.stem.split("_")
    if len(parts) > 1:
        cand = amc_path.with_name(f"{parts[0]}_{parts[1]}.asf")
        if cand.exists():
            return cand
    asfs = sorted(amc_path.parent.glob("*.asf"))
    if len(asfs) == 1:
        return asfs[0]
    raise MocapFormatError(f"{amc_path}: cannot find its ASF skeleton")
