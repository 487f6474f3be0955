"""A tiny, human-shaped SMPL-X model in the real file format, for fitting and pipeline tests.

Not a real SMPL-X file (we have none): 55 joints at plausible T-pose positions (SMPL-X axes:
x = the body's left, y up, z front, metres), a small cluster of vertices at each joint (the joint
regressor averages it), tubes of vertices around the body bones (so that capsule radii and
previews mean something), one vertex per keypoint smplx names (nose, eyes, ears, toes, heels,
finger tips; ids in ``VERTEX_IDS``), and one small triangle per face landmark, the lower lip and
chin ones skinned to the jaw. Ten shape directions stretch the body about the pelvis (moving
joints with everything skinned to them); ten expression directions move the face landmarks. Pose blend shapes are zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.body.model import CanonicalPose
from backend.geometry.skeleton import BODY_PARENTS

N_JOINTS = 55
N_BETAS = 10
N_EXPRESSION = 10

_BODY = [
    (0.0, 0.95, 0.0), (0.07, 0.87, 0.0), (-0.07, 0.87, 0.0), (0.0, 1.05, -0.01), (0.09, 0.50, 0.01),
    (-0.09, 0.50, 0.01), (0.0, 1.18, 0.0), (0.09, 0.09, -0.03), (-0.09, 0.09, -0.03), (0.0, 1.24, 0.01),
    (0.11, 0.03, 0.09), (-0.11, 0.03, 0.09), (0.0, 1.46, -0.02), (0.07, 1.38, 0.0), (-0.07, 1.38, 0.0),
    (0.0, 1.55, 0.01), (0.17, 1.40, -0.02), (-0.17, 1.40, -0.02), (0.43, 1.40, -0.03), (-0.43, 1.40, -0.03),
    (0.68, 1.40, -0.02), (-0.68, 1.40, -0.02),
    (0.0, 1.52, 0.03), (0.03, 1.62, 0.08), (-0.03, 1.62, 0.08),  # jaw, left eye, right eye
]  # fmt: skip
# Left hand, SMPL-X order: index, middle, pinky, ring, thumb (3 joints each); (x, z) of the base.
_FINGERS = {"index": (0.77, 0.03), "middle": (0.77, 0.01), "pinky": (0.76, -0.03), "ring": (0.77, -0.01)}
_BONE_RADIUS = {
    (0, 1): 0.08, (0, 2): 0.08, (0, 3): 0.12, (1, 4): 0.07, (2, 5): 0.07, (3, 6): 0.12, (4, 7): 0.05,
    (5, 8): 0.05, (6, 9): 0.12, (7, 10): 0.04, (8, 11): 0.04, (9, 12): 0.06, (9, 13): 0.06, (9, 14): 0.06,
    (12, 15): 0.05, (13, 16): 0.05, (14, 17): 0.05, (16, 18): 0.045, (17, 19): 0.045, (18, 20): 0.04,
    (19, 21): 0.04,
}  # fmt: skip
# smplx keypoint vertex name -> (position, skinning joint); filled for both sides below.
VERTEX_NAMES = (
    "nose reye leye rear lear rthumb rindex rmiddle rring rpinky lthumb lindex lmiddle lring lpinky "
    "LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel"
).split()
VERTEX_IDS = {name: i for i, name in enumerate(VERTEX_NAMES)}
"""Keypoint vertex ids of the tiny model (pass as ``ModelFileConfig.vertex_ids``)."""


def _parents() -> list[int]:
    hand = lambda wrist, start: [wrist if k % 3 == 0 else start + k - 1 for k in range(15)]  # noqa: E731
    return list(BODY_PARENTS) + [15, 15, 15] + hand(20, 25) + hand(21, 40)


def joint_positions() -> np.ndarray:
    """(55, 3) rest joints."""
    joints = [np.array(p) for p in _BODY]
    for sign in (1.0, -1.0):
        for finger in ("index", "middle", "pinky", "ring"):
            x, z = _FINGERS[finger]
            step = 0.025 if finger == "pinky" else 0.032
            joints += [np.array([sign * (x + k * step), 1.40, z]) for k in range(3)]
        joints += [np.array([sign * (0.71 + 0.025 * k), 1.39, 0.04 + 0.022 * k]) for k in range(3)]
    return np.stack(joints)


def _keypoint_vertices(joints: np.ndarray) -> list[tuple[np.ndarray, int]]:
    out: dict[str, tuple[np.ndarray, int]] = {
        "nose": (np.array([0.0, 1.58, 0.11]), 15),
        "leye": (np.array([0.03, 1.62, 0.09]), 15), "reye": (np.array([-0.03, 1.62, 0.09]), 15),
        "lear": (np.array([0.075, 1.59, 0.0]), 15), "rear": (np.array([-0.075, 1.59, 0.0]), 15),
        "LBigToe": (np.array([0.08, 0.0, 0.16]), 10), "RBigToe": (np.array([-0.08, 0.0, 0.16]), 11),
        "LSmallToe": (np.array([0.13, 0.0, 0.13]), 10), "RSmallToe": (np.array([-0.13, 0.0, 0.13]), 11),
        "LHeel": (np.array([0.09, 0.0, -0.06]), 7), "RHeel": (np.array([-0.09, 0.0, -0.06]), 8),
    }  # fmt: skip
    for side, start in (("l", 25), ("r", 40)):
        for f, finger in enumerate(("index", "middle", "pinky", "ring", "thumb")):
            last = start + 3 * f + 2
            direction = joints[last] - joints[last - 1]
            out[side + finger] = (joints[last] + 0.8 * direction, last)
    return [out[name] for name in VERTEX_NAMES]


def _face_landmarks() -> tuple[np.ndarray, np.ndarray]:
    """(51, 3) positions of iBUG points 17..67 on a flat face and (51,) skinning joint (head or jaw)."""
    pts: list[tuple[float, float]] = []
    pts += [(x, 1.645 + 0.005 * (1 - abs(x) / 0.07)) for x in np.linspace(-0.07, -0.015, 5)]  # brows
    pts += [(x, 1.645 + 0.005 * (1 - abs(x) / 0.07)) for x in np.linspace(0.015, 0.07, 5)]
    pts += [(0.0, y) for y in np.linspace(1.62, 1.585, 4)] + [(x, 1.575) for x in np.linspace(-0.02, 0.02, 5)]
    for cx in (-0.03, 0.03):  # eyes: 6 points each
        pts += [(cx + 0.015 * np.cos(a), 1.62 + 0.006 * np.sin(a)) for a in np.linspace(np.pi, -np.pi, 7)[:6]]
    outer = [(0.03 * np.cos(a), 1.545 + 0.012 * np.sin(a)) for a in np.linspace(np.pi, -np.pi, 13)[:12]]
    inner = [(0.02 * np.cos(a), 1.545 + 0.005 * np.sin(a)) for a in np.linspace(np.pi, -np.pi, 9)[:8]]
    pts += outer + inner
    xy = np.array(pts)
    pos = np.stack([xy[:, 0], xy[:, 1], 0.10 + 0.0 * xy[:, 0]], axis=1)
    lower = np.zeros(51, bool)
    lower[[55 - 17 + k for k in range(5)]] = True  # outer lower lip (iBUG 55-59)
    lower[[65 - 17 + k for k in range(3)]] = True  # inner lower lip (iBUG 65-67)
    return pos, np.where(lower, 22, 15)


def make_tiny_smplx(seed: int = 0) -> dict[str, np.ndarray]:
    """The model's arrays, with the real SMPL-X key names, shapes and dtypes."""
    rng = np.random.default_rng(seed)
    parents = _parents()
    joints = joint_positions()
    verts: list[np.ndarray] = []
    owner: list[int] = []  # skinning joint per vertex
    faces: list[tuple[int, int, int]] = []
    for pos, joint in _keypoint_vertices(joints):
        verts.append(pos)
        owner.append(joint)
    cluster = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]) * 0.006
    octa = [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]
    regressor = np.zeros((N_JOINTS, 0))
    cluster_rows: list[list[int]] = []
    for j in range(N_JOINTS):
        base = len(verts)
        verts += list(joints[j] + cluster)
        owner += [j] * 6
        faces += [(base + a, base + b, base + c) for a, b, c in octa]
        cluster_rows.append(list(range(base, base + 6)))
    for (p, c), radius in _BONE_RADIUS.items():  # tubes: 3 rings of 6 around each body bone
        axis = joints[c] - joints[p]
        u = np.cross(axis, [0.3, 0.5, 0.8])
        u /= np.linalg.norm(u)
        w = np.cross(axis / np.linalg.norm(axis), u)
        base = len(verts)
        for t in (0.25, 0.5, 0.75):
            verts += [
                joints[p] + t * axis + radius * (np.cos(a) * u + np.sin(a) * w)
                for a in np.arange(6) * np.pi / 3
            ]
            owner += [p] * 6
        for ring in range(2):
            for k in range(6):
                a, b = base + 6 * ring + k, base + 6 * ring + (k + 1) % 6
                faces += [(a, b, b + 6), (a, b + 6, a + 6)]
    landmarks, lm_joint = _face_landmarks()
    lmk_faces = []
    tri = np.array([[-0.003, -0.002, 0.0], [0.003, -0.002, 0.0], [0.0, 0.003, 0.0]])
    for pos, joint in zip(landmarks, lm_joint, strict=True):
        base = len(verts)
        verts += list(pos + tri)
        owner += [int(joint)] * 3
        lmk_faces.append(len(faces))
        faces.append((base, base + 1, base + 2))
    v = np.stack(verts)
    n_v = len(v)
    regressor = np.zeros((N_JOINTS, n_v))
    for j, rows in enumerate(cluster_rows):
        regressor[j, rows] = 1.0 / len(rows)
    weights = np.zeros((n_v, N_JOINTS))
    weights[np.arange(n_v), owner] = 1.0
    # Shape: each beta stretches the body about the pelvis (a random linear map, as real betas
    # mostly change proportions), moving every joint with everything skinned to it.
    stretch = rng.normal(scale=0.04, size=(N_BETAS, 3, 3))
    joint_dirs = np.einsum("kab,jb->jak", stretch, joints - joints[0])
    shapedirs = np.zeros((n_v, 3, N_BETAS + N_EXPRESSION))
    shapedirs[:, :, :N_BETAS] = joint_dirs[owner]
    face_start = n_v - 3 * 51
    expr = rng.normal(scale=0.004, size=(51, 3, N_EXPRESSION))
    shapedirs[face_start:, :, N_BETAS:] = np.repeat(expr, 3, axis=0)
    table = np.stack([np.array(parents, dtype=np.int64), np.arange(N_JOINTS)])
    table[0, 0] = 4294967295
    hand_mean = np.zeros((15, 3))
    hand_mean[:12, 2] = -0.15  # a relaxed curl of the four fingers (flexion: -z on the left hand)
    return {
        "v_template": v,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((n_v, 3, (N_JOINTS - 1) * 9)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": table,
        "f": np.array(faces, dtype=np.uint32),
        "hands_componentsl": np.eye(45),
        "hands_componentsr": np.eye(45),
        "hands_meanl": hand_mean.reshape(-1),
        "hands_meanr": (hand_mean * np.array([1.0, -1.0, -1.0])).reshape(-1),
        "lmk_faces_idx": np.array(lmk_faces, dtype=np.int64),
        "lmk_bary_coords": np.full((51, 3), 1.0 / 3.0),
    }


def write_tiny_smplx(folder: Path, name: str = "SMPLX_NEUTRAL.npz", seed: int = 0) -> Path:
    """Write the tiny model as ``folder/name`` (compressed .npz, as the official files) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    np.savez_compressed(path, **make_tiny_smplx(seed))
    return path


def pose_smplx(body, orient, pose, transl, hands, jaw, rest):  # noqa: ANN001, ANN201 - torch tensors
    """Native deltas (T, J, 4, 4) and skinning transforms of a posed SMPL-X ``body`` (no gradients).

    orient: (T, 3, 3); pose: (T, 21, 3) axis-angle; transl: (T, 3); hands: (T, 2, 15, 3) axis-angle
    (left, right); jaw: (T, 3) axis-angle; rest: the body's rest state.
    """
    import roma
    import torch

    with torch.no_grad():
        hm = roma.rotvec_to_rotmat(hands)
        deltas = body.native_deltas(CanonicalPose(orient, roma.rotvec_to_rotmat(pose), transl, left_hand=hm[:, 0], right_hand=hm[:, 1], jaw=roma.rotvec_to_rotmat(jaw)))  # fmt: skip
        return deltas, body.bone_transforms(deltas, rest)
