"""Where the keypoints, hand and face landmarks sit on the SMPL-family meshes (tables only).

``KEYPOINT_SOURCES``: each fitter keypoint is a joint or a vertex (``smplx``'s ``vertex_ids``).
``MEDIAPIPE_HAND_SOURCES``: MediaPipe's 21 hand landmarks on SMPL-H / SMPL-X hand joints and fingertips.
``MEDIAPIPE_FACE_FOR_IBUG68``: the MediaPipe face-mesh vertex of each iBUG-68 landmark.
"""

from __future__ import annotations

import torch

# Keypoint -> ("joint", canonical joint index) or ("vertex", smplx vertex_ids key).
KEYPOINT_SOURCES: dict[str, tuple[str, int | str]] = {
    "nose": ("vertex", "nose"), "left_eye": ("vertex", "leye"), "right_eye": ("vertex", "reye"),
    "left_ear": ("vertex", "lear"), "right_ear": ("vertex", "rear"),
    "left_shoulder": ("joint", 16), "right_shoulder": ("joint", 17), "left_elbow": ("joint", 18),
    "right_elbow": ("joint", 19), "left_wrist": ("joint", 20), "right_wrist": ("joint", 21),
    "left_hip": ("joint", 1), "right_hip": ("joint", 2), "left_knee": ("joint", 4),
    "right_knee": ("joint", 5), "left_ankle": ("joint", 7), "right_ankle": ("joint", 8),
    "left_big_toe": ("vertex", "LBigToe"), "right_big_toe": ("vertex", "RBigToe"),
    "left_small_toe": ("vertex", "LSmallToe"), "right_small_toe": ("vertex", "RSmallToe"),
    "left_heel": ("vertex", "LHeel"), "right_heel": ("vertex", "RHeel"),
}  # fmt: skip

# MediaPipe hand landmark i -> hand joint offset (0..14, SMPL-X hand order) or "tip" vertex key, or
# "wrist". MediaPipe: 0 wrist, 1-4 thumb CMC/MCP/IP/TIP, 5-8 index MCP/PIP/DIP/TIP, 9-12 middle,
# 13-16 ring, 17-20 pinky.
MEDIAPIPE_HAND_SOURCES: tuple[int | str, ...] = (
    "wrist", 12, 13, 14, "thumb", 0, 1, 2, "index", 3, 4, 5, "middle", 9, 10, 11, "ring", 6, 7, 8, "pinky",
)  # fmt: skip

# iBUG-68 -> MediaPipe face mesh (468) index; SMPL-X's static landmarks are iBUG 17..67.
MEDIAPIPE_FACE_FOR_IBUG68: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # 0-16 contour
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # 17-26 brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # 27-35 nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # 36-47 eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # 48-59 outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # 60-67 inner lips
)  # fmt: skip
MEDIAPIPE_FACE_FOR_LANDMARKS: tuple[int, ...] = MEDIAPIPE_FACE_FOR_IBUG68[17:]

HAND_START = {"smpl": None, "smplh": (22, 37), "smplx": (25, 40)}


def hand_table(
    name: str, ids: dict[str, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(joint indices, vertex slots, vertex ids, joint slots) for 42 hand keypoints (left, right)."""
    if HAND_START[name] is None:
        return None
    joint_idx, joint_slot, vert_idx, vert_slot = [], [], [], []
    for side, (start, wrist, prefix) in enumerate(zip(HAND_START[name], (20, 21), ("l", "r"), strict=True)):
        for i, src in enumerate(MEDIAPIPE_HAND_SOURCES):
            slot = side * 21 + i
            if src == "wrist":
                joint_idx.append(wrist)
                joint_slot.append(slot)
            elif isinstance(src, int):
                joint_idx.append(start + src)
                joint_slot.append(slot)
            else:
                vert_idx.append(ids[prefix + src])
                vert_slot.append(slot)
    return tuple(torch.tensor(x) for x in (joint_idx, vert_slot, vert_idx, joint_slot))  # type: ignore[return-value]
