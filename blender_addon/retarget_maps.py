"""Bone maps for retargeting (data, no ``bpy``): body slots -> bone names of a rig.

A *slot* is a body part every humanoid rig has (``hips``, ``thigh.L``, ``index2.R``...), listed in
``SLOTS`` with its parent slot; the parent order is the order in which a retarget poses the target.
A *source map* (the rigs video2anim imports: Anny, SMPL/SMPL-X) gives per slot the chain of bones that
makes up the part, first (its head is the joint) to last (its world rotation carries the part's twist).
A *target map* (Rigify, Mixamo, Unreal Mannequin, or the user's JSON) gives per slot the one bone that is
keyed. Unmapped target bones stay at rest; unmapped slots are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

SIDES = ("L", "R")
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def _side_slots() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for s in SIDES:
        out |= {f"shoulder.{s}": "chest", f"upper_arm.{s}": f"shoulder.{s}", f"forearm.{s}": f"upper_arm.{s}",
                f"hand.{s}": f"forearm.{s}", f"thigh.{s}": "hips", f"shin.{s}": f"thigh.{s}",
                f"foot.{s}": f"shin.{s}", f"toe.{s}": f"foot.{s}"}  # fmt: skip
        for finger in _FINGERS:
            out |= {f"{finger}1.{s}": f"hand.{s}", f"{finger}2.{s}": f"{finger}1.{s}", f"{finger}3.{s}": f"{finger}2.{s}"}
    return out


SLOTS: dict[str, str | None] = {"hips": None, "spine": "hips", "chest": "spine", "neck": "chest", "head": "neck"}
SLOTS |= _side_slots()
"""Every slot and its parent slot (``hips`` is the root and carries the motion's position)."""

NEXT: dict[str, str] = {
    "hips": "spine", "spine": "chest", "chest": "neck", "neck": "head", **{
        f"{a}.{s}": f"{b}.{s}" for s in SIDES for a, b in (
            ("shoulder", "upper_arm"), ("upper_arm", "forearm"), ("forearm", "hand"), ("hand", "middle1"), ("thigh", "shin"),
            ("shin", "foot"), ("foot", "toe"),
            *((f"{f}{i}", f"{f}{i + 1}") for f in _FINGERS for i in (1, 2)),
        )
    },
}  # fmt: skip
"""The slot whose joint ends a slot's segment (its direction: this joint -> the next one)."""


def _sided(pattern: Mapping[str, str], sides: Mapping[str, str]) -> dict[str, str]:
    """Expand ``{"thigh": "{s}UpLeg"}``-style patterns for both sides (``sides``: L/R -> the rig's tag)."""
    return {f"{slot}.{s}": name.format(s=tag) for slot, name in pattern.items() for s, tag in sides.items()}


def _fingers(pattern: str, sides: Mapping[str, str], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """Finger slots from one pattern with ``{s}`` (side), ``{f}`` (finger name) and ``{i}`` (1-3)."""
    names = names or {f: f for f in _FINGERS}
    return {
        f"{f}{i}.{s}": pattern.format(s=tag, f=names[f], i=i) for f in _FINGERS for i in (1, 2, 3) for s, tag in sides.items()
    }


# ---------------------------------------------------------------------- sources (what video2anim imports)
ANNY_SOURCE: dict[str, tuple[str, str]] = {
    "hips": ("root", "root"), "spine": ("spine05", "spine03"), "chest": ("spine02", "spine01"),
    "neck": ("neck01", "neck03"), "head": ("head", "head"),
    **{k: (v.split("|")[0], v.split("|")[-1]) for k, v in _sided({
        "shoulder": "clavicle.{s}|shoulder01.{s}", "upper_arm": "upperarm01.{s}|upperarm02.{s}",
        "forearm": "lowerarm01.{s}|lowerarm02.{s}", "hand": "wrist.{s}", "thigh": "upperleg01.{s}|upperleg02.{s}",
        "shin": "lowerleg01.{s}|lowerleg02.{s}", "foot": "foot.{s}", "toe": "toe1-1.{s}",
    }, {"L": "L", "R": "R"}).items()},
    **{k: (v, v) for k, v in _fingers("finger{f}-{i}.{s}", {"L": "L", "R": "R"},
                                       {"thumb": "1", "index": "2", "middle": "3", "ring": "4", "pinky": "5"}).items()},
}  # fmt: skip
"""Anny's rig (the default body) as imported by video2anim."""

SMPL_SOURCE: dict[str, tuple[str, str]] = {
    "hips": ("pelvis", "pelvis"), "spine": ("spine1", "spine2"), "chest": ("spine3", "spine3"),
    "neck": ("neck", "neck"), "head": ("head", "head"),
    **{k: (v, v) for k, v in _sided({
        "shoulder": "{s}_collar", "upper_arm": "{s}_shoulder", "forearm": "{s}_elbow", "hand": "{s}_wrist",
        "thigh": "{s}_hip", "shin": "{s}_knee", "foot": "{s}_ankle", "toe": "{s}_foot",
    }, {"L": "left", "R": "right"}).items()},
    **{k: (v, v) for k, v in _fingers("{s}_{f}{i}", {"L": "left", "R": "right"}).items()},
}  # fmt: skip
"""SMPL / SMPL-H / SMPL-X rigs (the ``smplx`` package's joint names)."""

SOURCES = {"anny": ANNY_SOURCE, "smpl": SMPL_SOURCE}

# ---------------------------------------------------------------------- targets (the user's rigs)
RIGIFY: dict[str, str] = {
    "hips": "torso", "chest": "chest", "neck": "neck", "head": "head",
    **_sided({"shoulder": "shoulder.{s}", "upper_arm": "upper_arm_fk.{s}", "forearm": "forearm_fk.{s}",
              "hand": "hand_fk.{s}", "thigh": "thigh_fk.{s}", "shin": "shin_fk.{s}", "foot": "foot_fk.{s}",
              "toe": "toe_fk.{s}"}, {"L": "L", "R": "R"}),
    **_fingers("{f}.0{i}.{s}", {"L": "L", "R": "R"},
               {"thumb": "thumb", "index": "f_index", "middle": "f_middle", "ring": "f_ring", "pinky": "f_pinky"}),
}  # fmt: skip
"""A rig generated by Rigify from the human metarig: its FK controls (the limbs are switched to FK)."""

RIGIFY_FK_SWITCHES = tuple(f"{limb}_parent.{s}" for limb in ("upper_arm", "thigh") for s in SIDES)
"""Rigify's limb property bones; their ``IK_FK`` is keyed to 1 (FK) so the FK controls drive the limbs."""

MIXAMO: dict[str, str] = {
    "hips": "Hips", "spine": "Spine", "chest": "Spine2", "neck": "Neck", "head": "Head",
    **_sided({"shoulder": "{s}Shoulder", "upper_arm": "{s}Arm", "forearm": "{s}ForeArm", "hand": "{s}Hand",
              "thigh": "{s}UpLeg", "shin": "{s}Leg", "foot": "{s}Foot", "toe": "{s}ToeBase"},
             {"L": "Left", "R": "Right"}),
    **_fingers("{s}Hand{f}{i}", {"L": "Left", "R": "Right"},
               {f: f.capitalize() for f in _FINGERS}),
}  # fmt: skip
"""Mixamo's bone names (with or without the ``mixamorig:`` prefix)."""

UNREAL: dict[str, str] = {
    "hips": "pelvis", "spine": "spine_01", "chest": "spine_03", "neck": "neck_01", "head": "head",
    **_sided({"shoulder": "clavicle_{s}", "upper_arm": "upperarm_{s}", "forearm": "lowerarm_{s}", "hand": "hand_{s}",
              "thigh": "thigh_{s}", "shin": "calf_{s}", "foot": "foot_{s}", "toe": "ball_{s}"},
             {"L": "l", "R": "r"}),
    **_fingers("{f}_0{i}_{s}", {"L": "l", "R": "r"}),
}  # fmt: skip
"""The Unreal Engine Mannequin's bone names (UE4 and UE5)."""

TARGETS = {"rigify": RIGIFY, "mixamo": MIXAMO, "unreal": UNREAL}
REQUIRED = ("hips", "thigh.L", "thigh.R")
"""Slots a map must have: the root and the hip joints (they place the body and scale its motion)."""


class BoneMapError(ValueError):
    """A bone map that does not fit the rig; the message says what to change."""


def strip_prefix(name: str) -> str:
    """A bone name without a namespace prefix (``mixamorig:Hips`` -> ``Hips``)."""
    return name.rsplit(":", 1)[-1]


def resolve(bone_map: Mapping[str, str], bones: Iterable[str]) -> dict[str, str]:
    """``bone_map`` with each name replaced by the rig's own (prefixes ignored); slots whose bone the rig
    lacks are dropped. Raises BoneMapError for an unknown slot or a missing required slot."""
    unknown = sorted(set(bone_map) - set(SLOTS))
    if unknown:
        raise BoneMapError(f"unknown slot(s) {unknown}; slots are: {', '.join(SLOTS)}")
    by_name = {strip_prefix(b): b for b in bones}
    by_name |= {b: b for b in bones}
    out = {slot: by_name[name] for slot, name in bone_map.items() if name in by_name}
    missing = [slot for slot in REQUIRED if slot not in out]
    if missing:
        raise BoneMapError(
            "the rig has no bone for " + ", ".join(f"{s} ({bone_map.get(s, 'unmapped')!r})" for s in missing)
        )
    return out


def detect(bones: Iterable[str], maps: Mapping[str, Mapping[str, str]] = TARGETS) -> str | None:
    """The name of the map in ``maps`` that finds the most of its bones in ``bones`` (at least half of them
    and every required slot), else None."""
    names = {strip_prefix(b) for b in bones} | set(bones)
    best, best_share = None, 0.5
    for key, bone_map in maps.items():
        if not all(bone_map[slot] in names for slot in REQUIRED):
            continue
        share = sum(name in names for name in bone_map.values()) / len(bone_map)
        if share >= best_share:
            best, best_share = key, share
    return best


def load_json(path: str | Path) -> dict[str, str]:
    """A user bone map: a JSON object ``{"slot": "bone name", ...}`` (see ``SLOTS``).

    Raises:
        BoneMapError: unreadable, not an object of strings, or an unknown slot.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoneMapError(f"cannot read the bone map {path}: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise BoneMapError(f"{path}: a bone map is a JSON object of slot -> bone name strings")
    unknown = sorted(set(data) - set(SLOTS))
    if unknown:
        raise BoneMapError(f"{path}: unknown slot(s) {unknown}; slots are: {', '.join(SLOTS)}")
    return data
