"""The Blender rig of a fitted SMPL / SMPL-H / SMPL-X body, in the rig format of ``export_rig``.

The importer's format (``video2anim.anny_rig`` v1) is a linear-blend-skinning rig with Anny's
``local-ref`` pose parameterisation (see ``blender_addon/rig_math.py``): posed frames
``W_0 = [U_0^T D_0 U_0 | U_0^T d_0]``, ``W_c = W_p K_c``, ``K_c = [U_p^T D_c U_c | U_p^T (d_c + A_p (h_c -
h_p))]``, ``A_p = U_p R_p^T``, skinning ``W_c P_c^-1``. An SMPL-family body fits it exactly with, in the
world frame (Z up, facing -Y; ``C`` = ``WORLD_FROM_CANONICAL``):

- rest frames ``P_c = [R_c | C J_c]`` (``J_c`` the shaped rest joints; ``R_c`` turns the bone's y axis
  towards its first child, or along its parent's bone for leaves; the root's ``R_0 = I``);
- reference orientations ``U_c = R_c`` (so ``A_p = I``);
- per-frame deltas ``D_0 = G C^T`` (``G`` = global_orient, camera from canonical), ``d_0 = transl``, and
  ``D_c = C L_c C^T`` for the native local rotations ``L_c`` (``rig_pose`` holds them as axis-angle).

Then ``W_c P_c^-1`` equals SMPL's own skinning transform composed with ``C^T``: Blender reproduces
the model's linear blend skinning, joints exactly; pose-dependent blend shapes are not carried.

Extra arrays over Anny's: ``shape_key_labels (S,)`` / ``shape_key_targets (S, V, 3)`` (rest mesh with
beta ``i`` one unit above the fitted value: ``Shape000``...) and ``expression_labels (E,)`` /
``expression_targets (E, V, 3)`` (``Exp000``...; SMPL-X only). ``phenotype_labels`` is empty and
``phenotypes`` holds the fitted betas (the importer checks that the rig matches the motion's shape).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import numpy as np
import roma
import torch

from backend.body.anny_rig import bone_lengths
from backend.geometry.skeleton import KEYPOINT_NAMES, WORLD_FROM_CANONICAL
from backend.io.motion_schema import RIG_FORMAT, RIG_VERSION

if TYPE_CHECKING:
    from backend.body.smplx_body import SmplxBody

log = logging.getLogger(__name__)

_C = np.asarray(WORLD_FROM_CANONICAL, np.float64)


def _frame_along(direction: np.ndarray) -> np.ndarray:
    """A rotation (3, 3) whose y axis is ``direction`` (3,), z as close to world up (or -y) as possible."""
    y = direction / max(float(np.linalg.norm(direction)), 1e-12)
    up = np.array([0.0, 0.0, 1.0]) if abs(y[2]) < 0.9 else np.array([0.0, -1.0, 0.0])
    x = np.cross(y, up)
    x /= np.linalg.norm(x)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def rest_rotations(joints: np.ndarray, parents: list[int]) -> np.ndarray:
    """Bone rest rotations (J, 3, 3) in the world frame: y towards the first child; root = identity."""
    out = np.repeat(np.eye(3)[None], len(parents), axis=0)
    children: dict[int, list[int]] = {}
    for c, p in enumerate(parents):
        if p >= 0:
            children.setdefault(p, []).append(c)
    for c in range(1, len(parents)):
        kids = children.get(c)
        direction = joints[kids[0]] - joints[c] if kids else joints[c] - joints[parents[c]]
        if float(np.linalg.norm(direction)) < 1e-6:
            direction = out[parents[c]][:, 1]
        out[c] = _frame_along(direction)
    return out


def rig_pose(global_orient: np.ndarray, native_local: np.ndarray) -> np.ndarray:
    """Rig deltas (T, J, 3) as axis-angle (see the module doc).

    Args:
        global_orient: (T, 3) axis-angle, camera from canonical model axes.
        native_local: (T, J, 3) the model's native local rotations (axis-angle; entry 0 is ignored).
    """
    go = roma.rotvec_to_rotmat(torch.as_tensor(global_orient, dtype=torch.float64))
    c = torch.as_tensor(_C)
    root = roma.rotmat_to_rotvec(go @ c.T).numpy()
    out = np.asarray(native_local, np.float64) @ _C.T  # rotvec(C L C^T) = C rotvec(L)
    out[:, 0] = root
    return out


def _sparse_weights(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense skinning weights (V, J) -> (V, N) bone indices and weights, N = most bones of a vertex."""
    count = int((dense > 0).sum(1).max())
    order = np.argsort(-dense, axis=1)[:, :count]
    return order.astype(np.int16), np.take_along_axis(dense, order, axis=1).astype(np.float32)


def _keypoint_regressor(body: SmplxBody) -> tuple[np.ndarray, np.ndarray]:
    """(K, N) vertex indices and weights approximating ``KEYPOINT_NAMES`` from skinned vertices
    (vertex keypoints exactly; joint keypoints through the joint regressor's rest weights)."""
    reg = body.model.J_regressor.detach().cpu().numpy()
    rows: list[dict[int, float]] = [{} for _ in KEYPOINT_NAMES]
    for slot, joint in zip(body.kp_joint_slot.tolist(), body.kp_joint_index.tolist(), strict=True):
        cols = np.flatnonzero(np.abs(reg[joint]) > 1e-6)
        rows[slot] = {int(v): float(reg[joint, v]) for v in cols}
    for slot, vertex in zip(body.kp_vertex_slot.tolist(), body.kp_vertex_index.tolist(), strict=True):
        rows[slot] = {int(vertex): 1.0}
    width = max(len(r) for r in rows)
    index = np.zeros((len(rows), width), np.int32)
    value = np.zeros((len(rows), width), np.float32)
    for k, row in enumerate(rows):
        index[k, : len(row)] = list(row)
        value[k, : len(row)] = list(row.values())
    return index, value


@torch.no_grad()
def smpl_rig_arrays(body: SmplxBody, betas: np.ndarray) -> dict[str, np.ndarray]:
    """The rig arrays (see the module docstring and ``export_rig``) for fitted betas (S,)."""
    m = body.model
    device = m.v_template.device
    b = torch.as_tensor(np.asarray(betas, np.float32), device=device)
    rest = body.rest_state(b)
    verts = rest.rest_vertices[0].double().cpu().numpy() @ _C.T
    joints = rest.rest_joints[0].double().cpu().numpy() @ _C.T
    parents = np.array(body.parents, np.int32)
    rot = rest_rotations(joints, body.parents)
    rest_poses = np.repeat(np.eye(4)[None], len(parents), axis=0)
    rest_poses[:, :3, :3] = rot
    rest_poses[:, :3, 3] = joints
    dirs = np.einsum("vcs,wc->svw", m.shapedirs.detach().double().cpu().numpy(), _C)
    targets = (verts[None] + dirs).astype(np.float32)  # (S, V, 3): one unit of each beta
    if body.num_expression:
        edirs = np.einsum("vce,wc->evw", m.expr_dirs.detach().double().cpu().numpy(), _C)
        expr_targets = (verts[None] + edirs).astype(np.float32)
    else:
        expr_targets = np.zeros((0,) + verts.shape, np.float32)
    skin_index, skin_weight = _sparse_weights(m.lbs_weights.detach().cpu().numpy())
    kp_index, kp_weight = _keypoint_regressor(body)
    meta = {
        "format": RIG_FORMAT,
        "version": RIG_VERSION,
        "body_model": body.name,
        "gender": body.config.gender,
        "source_hash": body.source_hash(),
        "pose_parameterization": "local-ref (rig_pose: D_0 = G C^T, D_c = C L_c C^T)",
        "frame": "world frame: Z up, subject facing -Y, metres",
        "notes": "linear blend skinning only: pose-dependent blend shapes are not reproduced",
    }
    n_faces = int(body.faces.shape[0])
    return {
        "meta": np.array(json.dumps(meta)),
        "bone_labels": np.array(body.joint_names),
        "bone_parents": parents,
        "rest_poses": rest_poses,
        "bone_lengths": bone_lengths(rest_poses, parents),
        "reference_orientations": rot.copy(),
        "rest_vertices": verts.astype(np.float32),
        "faces": body.faces.cpu().numpy().astype(np.int32),
        "uv": np.zeros((1, 2), np.float32),  # the model files carry no UVs
        "face_uv": np.zeros((n_faces, 3), np.int32),
        "skin_indices": skin_index,
        "skin_weights": skin_weight,
        "phenotype_labels": np.array([], dtype="<U1"),
        "phenotypes": np.asarray(betas, np.float32),
        "phenotype_targets": np.zeros((0, 2) + verts.shape, np.float32),
        "shape_key_labels": np.array([f"Shape{i:03d}" for i in range(len(targets))]),
        "shape_key_targets": targets,
        "expression_labels": np.array([f"Exp{i:03d}" for i in range(len(expr_targets))]),
        "expression_targets": expr_targets,
        "keypoint_names": np.array(KEYPOINT_NAMES),
        "keypoint_vertices": kp_index,
        "keypoint_weights": kp_weight,
    }
