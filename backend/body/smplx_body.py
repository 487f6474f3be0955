"""SMPL, SMPL-H and SMPL-X behind the canonical pose interface (same style as ``anny_body``).

Canonical pose = SMPL-X body joints, axes and T-pose identity, so the mapping is the identity for
SMPL-X and SMPL-H. SMPL has 23 body joints: the first 21 are the canonical ones and its two hand
roots (``left_hand``, ``right_hand``) rotate the whole hand about the knuckles. Canonical -> SMPL
sets a hand root to the mean rotation of the four finger base joints (index1, middle1, ring1,
pinky1); SMPL -> canonical puts the hand root's rotation on those four joints. Canonical ``transl``
is the pelvis position in the camera frame (smplx's ``transl`` is that minus the rest pelvis).

Native rotations (T, J, 3, 3), joint order of each model:
smpl 24 = root, 21 body, left_hand, right_hand; smplh 52 = root, 21 body, 15 left, 15 right;
smplx 55 = root, 21 body, jaw, left_eye, right_eye, 15 left, 15 right.
Hand joints (SMPL-X order): index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3.

Keypoints follow ``KEYPOINT_NAMES``: body joints for shoulders..ankles, model vertices for nose,
eyes, ears, toes and heels (smplx's ``vertex_ids``, as SMPL-X's own OpenPose mapping does).
Hand keypoints follow MediaPipe Hands' 21 landmarks (``MEDIAPIPE_HAND_SOURCES``); face keypoints are
SMPL-X's 51 static landmarks = iBUG-68 points 17..67, fed from MediaPipe's 468-point face mesh by
``MEDIAPIPE_FACE_FOR_LANDMARKS``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import roma
import torch
from smplx.lbs import batch_rigid_transform

from backend.body.model import BodyBase, CanonicalPose
from backend.body.smpl_files import ModelFileConfig, create_body_model, find_model_file
from backend.body.smpl_landmarks import (
    HAND_START,
    KEYPOINT_SOURCES,
    MEDIAPIPE_FACE_FOR_IBUG68,
    MEDIAPIPE_FACE_FOR_LANDMARKS,
    MEDIAPIPE_HAND_SOURCES,
    hand_table,
)
from backend.body.smpl_rig import rig_pose, smpl_rig_arrays
from backend.geometry.skeleton import KEYPOINT_NAMES

log = logging.getLogger(__name__)

__all__ = ["MEDIAPIPE_FACE_FOR_IBUG68", "MEDIAPIPE_FACE_FOR_LANDMARKS", "MEDIAPIPE_HAND_SOURCES", "SmplxBody"]

_N_JOINTS = {"smpl": 24, "smplh": 52, "smplx": 55}
_FINGER_BASES = (0, 3, 6, 9)  # index1, middle1, pinky1, ring1 within a hand


@dataclass
class SmplRestState:
    """Shape-dependent quantities."""

    betas: torch.Tensor
    """(S,) shape coefficients."""
    rest_vertices: torch.Tensor
    """(1, V, 3) shaped rest mesh (T-pose, no pose blend shapes)."""
    rest_joints: torch.Tensor
    """(1, J, 3) native rest joints."""


class SmplxBody(BodyBase):
    """SMPL / SMPL-H / SMPL-X posed by canonical parameters; keypoints are ``KEYPOINT_NAMES`` (a
    :class:`~backend.body.model.BodyModel`)."""

    default_collision = "on"

    def __init__(self, model_path: str | Path, config: ModelFileConfig | None = None, device: str = "cpu"):
        super().__init__()
        config = config or ModelFileConfig()
        self.name = config.model_type
        self.config = config
        self.model_file = find_model_file(model_path, config.model_type, config.gender)
        self.model = create_body_model(self.model_file, config).to(device)
        m = self.model
        self.n_joints = _N_JOINTS[self.name]
        self.faces = m.faces_tensor.long()
        from smplx.vertex_ids import vertex_ids as default_ids

        ids = config.vertex_ids or default_ids["smplx" if self.name == "smplx" else "smplh"]
        kp_joint, kp_vertex = [], []
        for k, name in enumerate(KEYPOINT_NAMES):
            kind, src = KEYPOINT_SOURCES[name]
            (kp_joint if kind == "joint" else kp_vertex).append(
                (k, int(src) if kind == "joint" else ids[src])
            )
        self.register_buffer("kp_joint_slot", torch.tensor([k for k, _ in kp_joint]), persistent=False)
        self.register_buffer("kp_joint_index", torch.tensor([j for _, j in kp_joint]), persistent=False)
        self.register_buffer("kp_vertex_slot", torch.tensor([k for k, _ in kp_vertex]), persistent=False)
        self.register_buffer("kp_vertex_index", torch.tensor([v for _, v in kp_vertex]), persistent=False)
        table = hand_table(self.name, ids)
        self.has_hands = table is not None
        for key, value in zip(
            ("hand_joint_idx", "hand_vert_slot", "hand_vert_idx", "hand_joint_slot"),
            table or (None,) * 4,
            strict=True,
        ):
            self.register_buffer(key, value, persistent=False)

    # ------------------------------------------------------------------ info
    @property
    def shape_size(self) -> int:
        return self.num_betas

    @property
    def has_face(self) -> bool:
        return self.name == "smplx"

    @staticmethod
    def shape_from_params(params: torch.Tensor) -> torch.Tensor:
        """Betas are optimised as they are (with an L2 prior)."""
        return params

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gender": self.config.gender,
            "source_hash": self.source_hash(),
            "model_file": self.model_file.name,
            "num_betas": self.num_betas,
            "num_expression": self.num_expression,
            "shape": "betas (S,)",
            "native_pose": "native_pose: the model's own local joint rotations (axis-angle), joint order in bone_labels",
            "rig_pose": "rig_pose: the Blender rig's local-ref deltas (body/smpl_rig.py), joint order in bone_labels",
            "bone_labels": self.joint_names,
        }

    def rig_arrays(self, shape: np.ndarray) -> dict[str, np.ndarray]:
        return smpl_rig_arrays(self, shape)

    def motion_arrays(
        self, shape: np.ndarray, global_orient: np.ndarray, native_pose: np.ndarray, parts: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """The SMPL family's arrays: ``betas``, hands, jaw, ``expression``, ``native_pose``, the rig's
        ``rig_pose``, and the fitted hand and face keypoints where the fit had them."""
        t = len(native_pose)

        def part(name: str, shape_: tuple[int, ...]) -> np.ndarray:
            return np.asarray(parts.get(name, np.zeros(shape_)), np.float32).reshape(shape_)

        arrays = {
            "betas": np.asarray(shape, np.float32),
            "left_hand_pose": part("left_hand_pose", (t, 45)),
            "right_hand_pose": part("right_hand_pose", (t, 45)),
            "jaw_pose": part("jaw_pose", (t, 3)),
            "expression": part("expression", (t, self.num_expression)),
            "native_pose": np.asarray(native_pose, np.float32),
            "rig_pose": rig_pose(global_orient, native_pose).astype(np.float32),
        }
        for source, name in (("hand_keypoints3d", "keypoints3d_hands"), ("face_keypoints3d", "keypoints3d_face")):
            if source in parts:  # (T, 2, 21, 3) MediaPipe Hands order; (T, 51, 3) iBUG 17..67
                arrays[name] = np.asarray(parts[source], np.float32)
        return arrays

    def source_hash(self) -> str:
        """A short hash identifying the model data (for the motion file's meta)."""
        digest = hashlib.sha256()
        digest.update(self.model.v_template.detach().cpu().numpy().tobytes())
        digest.update(self.model.shapedirs.detach().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def num_betas(self) -> int:
        return int(self.model.shapedirs.shape[-1])

    @property
    def num_expression(self) -> int:
        """Expression coefficients (SMPL-X only; 0 for the others)."""
        return int(self.model.expr_dirs.shape[-1]) if self.name == "smplx" else 0

    @property
    def hand_mean(self) -> torch.Tensor:
        """(2, 15, 3) the model file's mean (relaxed) hand, left then right, axis-angle (zeros for SMPL)."""
        return self.model.relaxed_hand_mean

    @property
    def parents(self) -> list[int]:
        """(J,) native joint parents, root -1."""
        parents = [int(p) for p in self.model.parents]
        parents[0] = -1
        return parents

    @property
    def joint_names(self) -> list[str]:
        """(J,) native joint names (smplx's SMPL-X / SMPL-H / SMPL names)."""
        from smplx.joint_names import JOINT_NAMES

        names = [n.removesuffix("_smplhf") for n in JOINT_NAMES[:55]]
        if self.name == "smplx":
            return names
        return names[:22] + (names[25:55] if self.name == "smplh" else ["left_hand", "right_hand"])

    # ------------------------------------------------------------------ shape
    def rest_state(self, betas: torch.Tensor) -> SmplRestState:
        """Shaped rest mesh and joints for betas (S,)."""
        m = self.model
        verts = m.v_template + torch.einsum("vcs,s->vc", m.shapedirs, betas.to(m.shapedirs.dtype))
        joints = m.J_regressor @ verts
        return SmplRestState(betas, verts[None], joints[None])

    # ------------------------------------------------------------------ canonical <-> native
    def native_rotations(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        left_hand: torch.Tensor | None = None,
        right_hand: torch.Tensor | None = None,
        jaw: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Native rotations (T, J, 3, 3) from canonical ones.

        Args:
            global_orient: (T, 3, 3) camera from canonical model axes.
            body_pose: (T, 21, 3, 3) canonical local rotations.
            left_hand, right_hand: (T, 15, 3, 3) SMPL-X hand joints, or None (flat hand).
            jaw: (T, 3, 3) or None (SMPL-X only).
        """
        t = body_pose.shape[0]
        eye = torch.eye(3, dtype=body_pose.dtype, device=body_pose.device)
        hands = [h if h is not None else eye.expand(t, 15, 3, 3) for h in (left_hand, right_hand)]
        parts = [global_orient[:, None], body_pose]
        if self.name == "smpl":
            parts += [_mean_rotation(h[:, _FINGER_BASES])[:, None] for h in hands]
        elif self.name == "smplh":
            parts += hands
        else:
            jaw_rot = jaw if jaw is not None else eye.expand(t, 3, 3)
            parts += [jaw_rot[:, None], eye.expand(t, 2, 3, 3), *hands]
        return torch.cat(parts, dim=1)

    def canonical_from_native(self, rot: torch.Tensor) -> dict[str, torch.Tensor]:
        """Canonical rotations from native ones (T, J, 3, 3): global_orient, body_pose, hands, jaw."""
        t = rot.shape[0]
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        out = {"global_orient": rot[:, 0], "body_pose": rot[:, 1:22], "jaw": eye.expand(t, 3, 3)}
        if self.name == "smpl":
            for side, j in (("left_hand", 22), ("right_hand", 23)):
                hand = eye.repeat(t, 15, 1, 1)
                hand[:, list(_FINGER_BASES)] = rot[:, j, None]
                out[side] = hand
        else:
            left, right = HAND_START[self.name]
            out["left_hand"], out["right_hand"] = rot[:, left : left + 15], rot[:, right : right + 15]
            if self.name == "smplx":
                out["jaw"] = rot[:, 22]
        return out

    def native_deltas(self, pose: CanonicalPose) -> torch.Tensor:
        """Local transforms (T, J, 4, 4): native rotations, pelvis position in the root's translation."""
        rot = self.native_rotations(pose.global_orient, pose.body_pose, pose.left_hand, pose.right_hand, pose.jaw)
        transl = pose.transl
        deltas = torch.eye(4, dtype=rot.dtype, device=rot.device).repeat(rot.shape[0], rot.shape[1], 1, 1)
        deltas[:, :, :3, :3] = rot
        deltas[:, 0, :3, 3] = transl
        return deltas

    # ------------------------------------------------------------------ posing
    def bone_transforms(self, deltas: torch.Tensor, rest: SmplRestState) -> torch.Tensor:
        """Skinning transforms (T, J, 4, 4) (posed from rest) from :meth:`native_deltas`."""
        t = deltas.shape[0]
        joints = rest.rest_joints.expand(t, -1, -1)
        _, rel = batch_rigid_transform(deltas[:, :, :3, :3].contiguous(), joints, self.model.parents)
        shift = deltas[:, 0, :3, 3] - joints[:, 0]  # pelvis lands on transl
        rel = rel.clone()
        rel[:, :, :3, 3] = rel[:, :, :3, 3] + shift[:, None]
        return rel

    def _skin(
        self,
        transforms: torch.Tensor,
        rest: SmplRestState,
        vids: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """LBS with pose (and expression) blend shapes for vertices ``vids`` (all when None): (T, N, 3)."""
        m = self.model
        rot = transforms[:, :, :3, :3]
        parents = m.parents.clone()
        parents[0] = 0
        local = rot[:, parents[1:]].transpose(-1, -2) @ rot[:, 1:]  # (T, J-1, 3, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        feature = (local - eye).reshape(rot.shape[0], -1)
        n_v = m.v_template.shape[0]
        sel = torch.arange(n_v, device=rot.device) if vids is None else vids
        posedirs = m.posedirs.reshape(-1, n_v, 3)[:, sel]  # (P, N, 3)
        verts = rest.rest_vertices[0, sel] + torch.einsum("tp,pnc->tnc", feature, posedirs)
        if expression is not None and hasattr(m, "expr_dirs"):
            verts = verts + torch.einsum("nce,te->tnc", m.expr_dirs[sel], expression)
        weights = m.lbs_weights[sel]  # (N, J)
        blended = torch.einsum("nj,tjab->tnab", weights, transforms)
        homo = torch.cat([verts, torch.ones_like(verts[..., :1])], dim=-1)
        return torch.einsum("tnab,tnb->tna", blended[..., :3, :], homo)

    def vertices(
        self, transforms: torch.Tensor, rest: SmplRestState, expression: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Skinned vertices (T, V, 3) in the camera frame; expression (T, E) for SMPL-X."""
        return self._skin(transforms, rest, None, expression)

    def vertices_at(self, transforms: torch.Tensor, rest: SmplRestState, vids: torch.Tensor) -> torch.Tensor:
        """Skinned vertices ``vids`` (N,) only (no expression): (T, N, 3)."""
        return self._skin(transforms, rest, vids)

    def joints(self, transforms: torch.Tensor, rest: SmplRestState) -> torch.Tensor:
        """Posed native joints (T, J, 3)."""
        homo = torch.cat([rest.rest_joints[0], torch.ones_like(rest.rest_joints[0, :, :1])], dim=-1)
        return torch.einsum("tjab,jb->tja", transforms[..., :3, :], homo)

    def keypoints(self, transforms: torch.Tensor, rest: SmplRestState) -> torch.Tensor:
        """Keypoints (T, K, 3) (``KEYPOINT_NAMES``) in the camera frame."""
        t = transforms.shape[0]
        out = transforms.new_zeros(t, len(KEYPOINT_NAMES), 3)
        out[:, self.kp_joint_slot] = self.joints(transforms, rest)[:, self.kp_joint_index]
        out[:, self.kp_vertex_slot] = self._skin(transforms, rest, self.kp_vertex_index)
        return out

    def keypoints_fast(self, pose: CanonicalPose, rest: SmplRestState) -> torch.Tensor:
        """Keypoints (T, K, 3) straight from a canonical pose (see :meth:`native_rotations`)."""
        return self.keypoints(self.bone_transforms(self.native_deltas(pose), rest), rest)

    def hand_keypoints(self, transforms: torch.Tensor, rest: SmplRestState) -> torch.Tensor:
        """Hand keypoints (T, 2, 21, 3), left then right, in MediaPipe Hands order (SMPL-H/X only)."""
        if not self.has_hands:
            raise ValueError("SMPL has no finger joints; use SMPL-H or SMPL-X for hand keypoints")
        joint_idx, vert_slot, vert_idx, joint_slot = (
            self.hand_joint_idx,
            self.hand_vert_slot,
            self.hand_vert_idx,
            self.hand_joint_slot,
        )
        t = transforms.shape[0]
        out = transforms.new_zeros(t, 42, 3)
        out[:, joint_slot] = self.joints(transforms, rest)[:, joint_idx]
        out[:, vert_slot] = self._skin(transforms, rest, vert_idx)
        return out.reshape(t, 2, 21, 3)

    def face_keypoints(
        self, transforms: torch.Tensor, rest: SmplRestState, expression: torch.Tensor | None = None
    ) -> torch.Tensor:
        """SMPL-X's 51 static face landmarks (T, 51, 3) = iBUG-68 points 17..67 (SMPL-X only)."""
        if self.name != "smplx":
            raise ValueError(f"{self.name} has no face landmarks; use SMPL-X")
        m = self.model
        tri = self.faces[m.lmk_faces_idx]  # (L, 3)
        verts = self._skin(transforms, rest, tri.reshape(-1), expression).reshape(
            transforms.shape[0], -1, 3, 3
        )
        return torch.einsum("tlkc,lk->tlc", verts, m.lmk_bary_coords.to(verts.dtype))


def _mean_rotation(rot: torch.Tensor) -> torch.Tensor:
    """Chordal L2 mean (..., 3, 3) of rotations (..., N, 3, 3)."""
    return roma.special_procrustes(rot.mean(dim=-3))
