"""bpy-free math of the Blender import (numpy only): Anny's pose to Blender pose bones, cameras.

Anny's ``local-ref`` forward kinematics (``anny.utils.kinematics.forward_kinematic``), for a bone
``c`` of parent ``p`` with rest frame ``P_c = [R_c | h_c]``, reference orientation ``U_c`` and
delta ``[D_c | d_c]`` (``anny_pose`` as rotation matrices; the root's ``d_0`` is ``transl``):

    W_0 = [U_0^T D_0 U_0 | U_0^T d_0],   W_c = W_p K_c,
    K_c = [U_p^T D_c U_c | U_p^T (d_c + A_p (h_c - h_p))],   A_p = U_p R_p^T (A_0 = I),

and skinning uses ``W_c P_c^-1``. A Blender bone with rest matrix ``B_c`` (armature space) is
posed by ``M_c = M_p (B_p^-1 B_c) basis_c`` and skins with ``M_c B_c^-1``. With the rest
``B_c = S P_c`` (``S`` lifts the rest body onto the ground) and ``M_c = G W_c`` (``G`` = world
from camera, the armature object sitting at the world origin), the pose-bone matrices are

    basis_0 = P_0^-1 S^-1 G W_0,   basis_c = P_c^-1 P_p K_c   (no chain product needed).

Blender quaternions are (w, x, y, z). Matrices are float64 unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])
"""OpenCV camera axes (x right, y down, z forward) to Blender's (x right, y up, looking down -z)."""
SENSOR_WIDTH_MM = 36.0


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3) (Rodrigues)."""
    rotvec = np.asarray(rotvec, np.float64)
    angle = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    k = np.zeros(rotvec.shape[:-1] + (3, 3))
    x, y, z = rotvec[..., 0], rotvec[..., 1], rotvec[..., 2]
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -z, y, -x
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = z, -y, x
    small = angle < 1e-8
    safe = np.where(small, 1.0, angle)
    a = np.where(small, 1.0 - angle**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - angle**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * k + b * (k @ k)


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) as (w, x, y, z), w >= 0, from rotation matrices (..., 3, 3)."""
    m = np.asarray(matrix, np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Shepperd: build from the largest of 4w^2, 4x^2, 4y^2, 4z^2 for stability.
    cands = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                      m[..., 1, 0] - m[..., 0, 1]], -1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                      m[..., 0, 2] + m[..., 2, 0]], -1),
            np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                      m[..., 1, 2] + m[..., 2, 1]], -1),
            np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                      1 - m00 - m11 + m22], -1),
        ],
        -2,
    )  # fmt: skip
    best = np.argmax(np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                               1 - m00 - m11 + m22], -1), axis=-1)  # fmt: skip
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def continuous_quaternions(quats: np.ndarray) -> np.ndarray:
    """Quaternions (T, ..., 4) with signs flipped so consecutive frames lie in one hemisphere."""
    q = np.array(quats, np.float64)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1.0
    return q


def rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Homogeneous transforms (..., 4, 4) from rotations (..., 3, 3) and translations (..., 3)."""
    shape = np.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1])
    out = np.zeros(shape + (4, 4))
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def rigid_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms (..., 4, 4)."""
    r = np.swapaxes(m[..., :3, :3], -1, -2)
    return rigid(r, -(r @ m[..., :3, 3:4])[..., 0])


def anny_deltas(anny_pose: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """Anny's delta transforms (T, B, 4, 4) from ``anny_pose`` (T, B, 3) and ``transl`` (T, 3)."""
    rot = rotvec_to_matrix(anny_pose)
    shift = np.zeros(rot.shape[:-1])
    shift[:, 0] = transl
    return rigid(rot, shift)


def _local_steps(
    rest: np.ndarray, reference: np.ndarray, parents: np.ndarray, deltas: np.ndarray
) -> np.ndarray:
    """Anny's chain steps K_c (T, B, 4, 4) for the non-root bones (entry 0 is unused)."""
    r, h = rest[:, :3, :3], rest[:, :3, 3]
    par = np.where(parents < 0, 0, parents)
    a = reference @ np.swapaxes(r, -1, -2)
    a[0] = np.eye(3)
    offsets = np.einsum("bij,bj->bi", a[par], h - h[par])  # A_p (h_c - h_p), (B, 3)
    u_pt = np.swapaxes(reference[par], -1, -2)
    rot = u_pt @ deltas[..., :3, :3] @ reference
    shift = np.einsum("bij,tbj->tbi", u_pt, deltas[..., :3, 3] + offsets)
    return rigid(rot, shift)


def _root_frame(reference: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Anny's root frame W_0 (T, 4, 4)."""
    u0 = reference[0]
    return rigid(u0.T @ deltas[:, 0, :3, :3] @ u0, deltas[:, 0, :3, 3] @ u0)


def posed_frames(
    rest: np.ndarray, reference: np.ndarray, parents: np.ndarray, deltas: np.ndarray
) -> np.ndarray:
    """Anny's posed bone frames W (T, B, 4, 4) in the camera frame (parents precede children).

    Args:
        rest: (B, 4, 4) rest frames P; reference: (B, 3, 3) U; parents: (B,), root -1;
        deltas: (T, B, 4, 4) from :func:`anny_deltas`.
    """
    steps = _local_steps(rest, reference, parents, deltas)
    frames = np.empty_like(steps)
    frames[:, 0] = _root_frame(reference, deltas)
    for c in range(1, len(parents)):
        frames[:, c] = frames[:, parents[c]] @ steps[:, c]
    return frames


def pose_basis(
    rest: np.ndarray,
    reference: np.ndarray,
    parents: np.ndarray,
    deltas: np.ndarray,
    world_from_camera: np.ndarray,
    lift: np.ndarray,
) -> np.ndarray:
    """Blender pose-bone basis matrices (T, B, 4, 4) (location, rotation; no scale).

    Args:
        rest, reference, parents, deltas: as :func:`posed_frames`.
        world_from_camera: (4, 4) or (T, 4, 4).
        lift: (4, 4) ``S``, the transform applied to the rest rig in Blender (see module doc).
    """
    steps = _local_steps(rest, reference, parents, deltas)
    par = np.where(parents < 0, 0, parents)
    basis = rigid_inverse(rest) @ rest[par] @ steps
    root = rigid_inverse(rest[0]) @ rigid_inverse(lift) @ world_from_camera @ _root_frame(reference, deltas)
    basis[:, 0] = root
    return basis


def ground_lift(rest_vertices: np.ndarray) -> np.ndarray:
    """Translation (4, 4) putting the rest body's lowest vertex at z = 0."""
    out = np.eye(4)
    out[2, 3] = -float(np.min(rest_vertices[:, 2]))
    return out


def apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., 3) through a (4, 4) transform."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def regress_keypoints(vertices: np.ndarray, kp_vertices: np.ndarray, kp_weights: np.ndarray) -> np.ndarray:
    """Keypoints (..., K, 3) from vertices (..., V, 3) and a sparse regressor (K, N) indices + weights."""
    return np.einsum("...knj,kn->...kj", vertices[..., kp_vertices, :], kp_weights)


def skin_groups(skin_indices: np.ndarray, skin_weights: np.ndarray) -> list[tuple[int, float, np.ndarray]]:
    """Vertex-group assignments as few calls as possible: (bone, weight, vertex indices) runs.

    Args:
        skin_indices, skin_weights: (V, S) per-vertex bone indices and weights (0 = unused slot).
    """
    v, s = skin_indices.shape
    vert = np.repeat(np.arange(v), s)
    bone = skin_indices.reshape(-1).astype(np.int64)
    weight = skin_weights.reshape(-1).astype(np.float32)
    keep = weight > 0
    vert, bone, weight = vert[keep], bone[keep], weight[keep]
    order = np.lexsort((vert, weight, bone))
    vert, bone, weight = vert[order], bone[order], weight[order]
    cut = np.flatnonzero((np.diff(bone) != 0) | (np.diff(weight) != 0)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(vert)]])
    return [(int(bone[a]), float(weight[a]), vert[a:b]) for a, b in zip(starts, ends, strict=True)]


def blender_fps(fps: float) -> tuple[int, float]:
    """Blender's (render.fps, render.fps_base) for a frame rate: fps / fps_base == ``fps``."""
    whole = max(1, int(round(fps)))
    return whole, whole / float(fps)


@dataclass(frozen=True)
class CameraLens:
    """Blender camera settings (sensor fit horizontal) reproducing a pinhole matrix."""

    lens_mm: float
    sensor_width_mm: float
    shift_x: float
    shift_y: float
    pixel_aspect: float
    """fy / fx; 1 for square pixels."""


def camera_lens(intrinsics: np.ndarray, width: int, height: int) -> CameraLens:
    """Blender lens, sensor and shift from a 3x3 pixel intrinsics matrix and the image size.

    Shifts are in units of the larger image side: the principal point ``(cx, cy)`` (pixels, y
    down) lies ``shift_x * max(w, h)`` left of and ``shift_y * max(w, h)`` below the centre.
    """
    k = np.asarray(intrinsics, np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    side = float(max(width, height))
    return CameraLens(
        lens_mm=float(fx * SENSOR_WIDTH_MM / width),
        sensor_width_mm=SENSOR_WIDTH_MM,
        shift_x=float((width / 2.0 - cx) / side),
        shift_y=float((cy - height / 2.0) / side),
        pixel_aspect=float(fy / fx),
    )


def camera_matrix_world(world_from_camera: np.ndarray) -> np.ndarray:
    """Blender camera object matrix (..., 4, 4) for an OpenCV camera pose (world from camera)."""
    return np.asarray(world_from_camera, np.float64) @ CV_TO_BLENDER_CAMERA


def matrix_to_location_quaternion(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, ..., 3) locations and sign-continuous (T, ..., 4) quaternions of rigid (T, ..., 4, 4)."""
    return matrices[..., :3, 3], continuous_quaternions(matrix_to_quaternion(matrices[..., :3, :3]))


def ground_rectangle(
    transl: np.ndarray, world_from_camera: np.ndarray, margin: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (x, y) and half sizes (x, y) of a ground rectangle under a subject's whole path.

    Args:
        transl: (T, 3) pelvis positions in the camera frame.
        world_from_camera: (4, 4) or (T, 4, 4).
        margin: metres added on every side of the path.
    """
    wfc = np.asarray(world_from_camera, np.float64)
    points = (wfc[..., :3, :3] @ np.asarray(transl, np.float64)[..., None])[..., 0] + wfc[..., :3, 3]
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    return (low + high) / 2.0, (high - low) / 2.0 + margin
