"""Per-source facts for ``../shared/mocap``: format, units, frame rate, axes, joint names, rest frames.

Each folder (and for ``animated_drawings_bvh`` each sub-folder, which hold three different rigs)
has a `SourceInfo`. What each assumes:

- ``cmu_iclone_bvh`` (Reallusion CC_Base rig): centimetres; 60 fps, as the header says. (The
  shared README calls that header wrong because the CMU originals are 120 fps, but these files
  hold every other frame: each clip has 2x+1 the frames of the same trial in ``cmu_deepmimic``,
  whose frame durations say 30 fps; read at 120 fps, walks would take 0.6 s strides at
  2.7 m/s, against 1.2 s and 1.3 m/s at 60 fps. `ICLONE_FPS` switches it.) World y up, the
  rig's x is the body's left, z its front. Its zero pose is not a human pose
  (every bone lies along its local +y), so the T-pose frames are given as ``rest_rotations``
  (derived with `calibrate.estimate_rest_rotations`; identical on every clip tried).
- ``cmu_dance_martial_bvh`` (Poser/Daz-style ``hip/abdomen/chest`` rig, zero pose a T-pose):
  centimetres; salsa 60 fps (headers wrongly say 120), Indian dance and martial arts 120 fps
  (readme.txt); y up, z front. ``standard.bvh`` is the rig's 3-frame reference, not a clip.
- ``cmu_deepmimic``: metres; fps from frame durations; y up, x front, z right.
- ``hdm05_amc``: ASF units (inches / 0.45), 120 fps; y up, z front.
- ``animated_drawings_bvh``: ``cmu1`` CMU ASF units, arms down in the zero pose, y up, z front;
  ``fair1`` unknown unit (`FAIR1_SCALE`), z up, -y front, zero pose a T-pose;
  ``rokoko`` centimetres, y up, bones along local +x in the zero pose (``rest_rotations``).
  Header frame times are used (30, 100 and about 119.9 fps).

Arm twist: the CMU ASF T-pose (HDM05, ``cmu1``, and the CC_Base and Daz conversions of CMU data)
holds the palms about 30 degrees from facing down, so those specs add ``twists`` to the arm
chain (measured with `calibrate.estimate_hinge_twists`: elbows then bend about the canonical
vertical axis like SMPL-X's; knees needed none).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.train.mocap.retarget import RetargetSpec

CMU_ASF_SCALE = 0.0254 / 0.45
ICLONE_FPS = 60.0  # see the module docstring: the 1/60 s header matches the data
# fair1's unit is undocumented: chosen so that its main performer (dab, jumping, zombie: 45.35 units
# from toe tip to head-top end site) is 1.70 m; the wave_hello performer then measures 1.51 m.
FAIR1_SCALE = 1.70 / 45.353
Z_UP_MINUS_Y_FRONT = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0))
DEEPMIMIC_AXES = ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))


@dataclass(frozen=True)
class SourceInfo:
    """How to read and retarget one source.

    name: folder (or folder/sub-folder) name; fmt: bvh | amc | deepmimic; scale: metres per
    file unit (None: guess from height; unused for amc/deepmimic, which carry units);
    fps: frame rate override (None: from the file); spec: the retargeting description.
    """

    name: str
    fmt: str
    spec: RetargetSpec
    scale: float | None = None
    fps: float | None = None


def _arm_twist(degrees: float) -> tuple[tuple[str, float], ...]:
    """Twist of the whole arm chain: -degrees on the left, +degrees on the right."""
    return tuple(
        (f"{side}_{j}", sign * degrees)
        for side, sign in (("left", -1.0), ("right", 1.0))
        for j in ("shoulder", "elbow", "wrist")
    )


def _sides(pairs: tuple[tuple[str, str], ...], left: str, right: str) -> tuple[tuple[str, str], ...]:
    """Expand (``side_joint``, ``source name with {s}``) templates for both sides."""
    out = []
    for canon, src in pairs:
        out.append((f"left_{canon}", src.format(s=left)))
        out.append((f"right_{canon}", src.format(s=right)))
    return tuple(out)


ICLONE_SPEC = RetargetSpec(
    joint_map=(
        ("pelvis", "CC_Base_Hip"), ("spine1", "CC_Base_Waist"), ("spine2", "CC_Base_Spine01"),
        ("spine3", "CC_Base_Spine02"), ("neck", "CC_Base_NeckTwist01"), ("head", "CC_Base_Head"),
    ) + _sides((
        ("hip", "CC_Base_{s}_Thigh"), ("knee", "CC_Base_{s}_Calf"), ("ankle", "CC_Base_{s}_Foot"),
        ("foot", "CC_Base_{s}_ToeBase"), ("collar", "CC_Base_{s}_Clavicle"),
        ("shoulder", "CC_Base_{s}_Upperarm"), ("elbow", "CC_Base_{s}_Forearm"), ("wrist", "CC_Base_{s}_Hand"),
    ), "L", "R"),
    rest_rotations=(
        ("spine1", (0.0, 0.0, 0.0)), ("spine2", (0.0, 0.0, 0.0)), ("neck", (0.0, 0.0, 0.0)),
        ("head", (0.0, 0.0, 0.0)),
        ("left_hip", (0.0, 0.0, 180.0)), ("right_hip", (0.0, 0.0, 180.0)),
        ("left_knee", (0.0, 0.0, 180.0)), ("right_knee", (0.0, 0.0, 180.0)),
        ("left_ankle", (-90.0, 0.0, 180.0)), ("right_ankle", (-90.0, 0.0, 180.0)),
        ("left_foot", (-90.0, 0.0, 180.0)), ("right_foot", (-90.0, 0.0, 180.0)),
        ("left_collar", (90.0, 0.0, -90.0)), ("right_collar", (90.0, 0.0, 90.0)),
        ("left_shoulder", (0.0, 0.0, -90.0)), ("right_shoulder", (0.0, 0.0, 90.0)),
        ("left_elbow", (0.0, 0.0, -90.0)), ("right_elbow", (0.0, 0.0, 90.0)),
        ("left_wrist", (0.0, 0.0, -90.0)), ("right_wrist", (0.0, 0.0, 90.0)),
    ),
    twists=_arm_twist(31.0),
)  # fmt: skip

DAZ_SPEC = RetargetSpec(
    joint_map=(
        ("pelvis", "hip"), ("spine1", "abdomen"), ("spine3", "chest"), ("neck", "neck"), ("head", "head"),
    ) + _sides((
        ("hip", "{s}Thigh"), ("knee", "{s}Shin"), ("ankle", "{s}Foot"), ("foot", "{s}Foot_end"),
        ("collar", "{s}Collar"), ("shoulder", "{s}Shldr"), ("elbow", "{s}ForeArm"), ("wrist", "{s}Hand"),
    ), "l", "r"),
    tips=_sides((("wrist", "{s}Mid1"),), "l", "r"),
    twists=_arm_twist(28.0),
)  # fmt: skip

DEEPMIMIC_SPEC = RetargetSpec(
    joint_map=(("pelvis", "root"), ("spine3", "chest"), ("neck", "neck"))
    + _sides((
        ("hip", "{s}_hip"), ("knee", "{s}_knee"), ("ankle", "{s}_ankle"),
        ("shoulder", "{s}_shoulder"), ("elbow", "{s}_elbow"), ("wrist", "{s}_wrist"),
    ), "left", "right"),
    canonical_from_source=DEEPMIMIC_AXES,
)  # fmt: skip

HDM05_SPEC = RetargetSpec(
    joint_map=(
        ("pelvis", "root"), ("spine1", "lowerback"), ("spine2", "upperback"), ("spine3", "thorax"),
        ("neck", "lowerneck"), ("head", "head"),
    ) + _sides((
        ("hip", "{s}femur"), ("knee", "{s}tibia"), ("ankle", "{s}foot"), ("foot", "{s}toes"),
        ("collar", "{s}clavicle"), ("shoulder", "{s}humerus"), ("elbow", "{s}radius"), ("wrist", "{s}wrist"),
    ), "l", "r"),
    tips=(("head", "head_end"),) + _sides((("foot", "{s}toes_end"), ("wrist", "{s}fingers_end")), "l", "r"),
    twists=_arm_twist(30.0),
)  # fmt: skip

CMU_BVH_SPEC = RetargetSpec(
    joint_map=(
        ("pelvis", "Hips"), ("spine1", "lowerback"), ("spine2", "Chest"), ("spine3", "Chest2"),
        ("neck", "Neck"), ("head", "Head"),
    ) + _sides((
        ("hip", "{s}Hip"), ("knee", "{s}Knee"), ("ankle", "{s}Ankle"), ("foot", "{s}Toe"),
        ("collar", "{s}Collar"), ("shoulder", "{s}Shoulder"), ("elbow", "{s}Elbow"), ("wrist", "{s}Wrist"),
    ), "Left", "Right"),
    tips=(("head", "Head_end"), ("left_foot", "LeftToe_end"), ("right_foot", "RightToe_end"),
          ("left_wrist", "LFingers_end"), ("right_wrist", "RFingers_end")),
    twists=_arm_twist(30.0),
)  # fmt: skip

FAIR_SPEC = RetargetSpec(
    joint_map=(
        ("pelvis", "Hips"), ("spine1", "Spine"), ("spine2", "Spine2"), ("spine3", "Spine3"),
        ("neck", "Neck"), ("head", "Head"),
    ) + _sides((
        ("hip", "{s}UpLeg"), ("knee", "{s}Leg"), ("ankle", "{s}Foot"), ("foot", "{s}ToeBase"),
        ("collar", "{s}Shoulder"), ("shoulder", "{s}Arm"), ("elbow", "{s}ForeArm"), ("wrist", "{s}Hand"),
    ), "Left", "Right"),
    tips=(("head", "Head_end"),) + _sides((("foot", "{s}ToeBase_end"), ("wrist", "{s}HandEnd")), "Left", "Right"),
    canonical_from_source=Z_UP_MINUS_Y_FRONT,
)  # fmt: skip

ROKOKO_SPEC = RetargetSpec(
    joint_map=(
        ("pelvis", "Hips"), ("spine1", "Spine"), ("spine2", "Spine1"), ("spine3", "Spine2"),
        ("neck", "Neck"), ("head", "Head"),
    ) + _sides((
        ("hip", "{s}UpLeg"), ("knee", "{s}Leg"), ("ankle", "{s}Foot"), ("foot", "{s}ToeBase"),
        ("collar", "{s}Shoulder"), ("shoulder", "{s}Arm"), ("elbow", "{s}ForeArm"), ("wrist", "{s}Hand"),
    ), "Left", "Right"),
    rest_rotations=(
        ("spine1", (0.0, 0.0, 90.0)), ("spine2", (0.0, 0.0, 90.0)), ("neck", (0.0, 0.0, 90.0)),
        ("head", (0.0, 0.0, 0.0)),
        ("left_hip", (0.0, 0.0, -90.0)), ("right_hip", (0.0, 0.0, -90.0)),
        ("left_knee", (0.0, 0.0, -90.0)), ("right_knee", (0.0, 0.0, -90.0)),
        ("left_ankle", (0.0, -90.0, 0.0)), ("right_ankle", (0.0, -90.0, 0.0)),
        ("left_foot", (0.0, -90.0, 0.0)), ("right_foot", (0.0, -90.0, 0.0)),
        ("left_collar", (0.0, 0.0, 0.0)), ("right_collar", (0.0, 180.0, 0.0)),
        ("left_shoulder", (0.0, 0.0, 0.0)), ("right_shoulder", (0.0, 180.0, 0.0)),
        ("left_elbow", (0.0, 0.0, 0.0)), ("right_elbow", (0.0, 180.0, 0.0)),
        ("left_wrist", (0.0, 0.0, 0.0)), ("right_wrist", (0.0, 180.0, 0.0)),
    ),
)  # fmt: skip

SOURCES: tuple[SourceInfo, ...] = (
    SourceInfo("cmu_iclone_bvh", "bvh", ICLONE_SPEC, scale=0.01, fps=ICLONE_FPS),
    SourceInfo("cmu_dance_martial_bvh/salsa", "bvh", DAZ_SPEC, scale=0.01, fps=60.0),
    SourceInfo("cmu_dance_martial_bvh/indian", "bvh", DAZ_SPEC, scale=0.01, fps=120.0),
    SourceInfo("cmu_dance_martial_bvh/martial", "bvh", DAZ_SPEC, scale=0.01, fps=120.0),
    SourceInfo("cmu_deepmimic", "deepmimic", DEEPMIMIC_SPEC),
    SourceInfo("hdm05_amc", "amc", HDM05_SPEC),
    SourceInfo("animated_drawings_bvh/cmu1", "bvh", CMU_BVH_SPEC, scale=CMU_ASF_SCALE),
    SourceInfo("animated_drawings_bvh/fair1", "bvh", FAIR_SPEC, scale=FAIR1_SCALE),
    SourceInfo("animated_drawings_bvh/rokoko", "bvh", ROKOKO_SPEC, scale=0.01),
)
FOLDERS: tuple[str, ...] = (
    "cmu_iclone_bvh", "cmu_dance_martial_bvh", "cmu_deepmimic", "hdm05_amc", "animated_drawings_bvh",
)  # fmt: skip


def source_of(relpath: str) -> SourceInfo:
    """The `SourceInfo` for a path relative to the mocap root (longest matching prefix)."""
    rel = relpath.replace("\\", "/")
    best = None
    for info in SOURCES:
        if rel.startswith(info.name + "/") and (best is None or len(info.name) > len(best.name)):
            best = info
    if best is None:
        raise KeyError(f"no known mocap source for {relpath!r}")
    return best


def source_by_name(name: str) -> SourceInfo:
    """The `SourceInfo` called `name` (KeyError listing the known names otherwise)."""
    for info in SOURCES:
        if info.name == name:
            return info
    raise KeyError(f"unknown mocap source {name!r}; known: {', '.join(i.name for i in SOURCES)}")
