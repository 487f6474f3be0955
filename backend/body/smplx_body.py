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

import numpy as np
import roma
import torch
from smplx.lbs import batch_rigid_transform
from torch import nn

from backend.body.skeleton import KEYPOINT_NAMES
from backend.body.smpl_files import ModelFileConfig, create_body_model, find_model_file

log = logging.getLogger(__name__)

# Keypoint -> ("joint", canonical joint index) or ("vertex", smplx vertex_ids key).
_KEYPOINT_SOURCES: dict[str, tuple[str, int | str]] = {
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

_HAND_START = {"smpl": None, "smplh": (22, 37), "smplx": (25, 40)}
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


class SmplxBody(nn.Module):
    """SMPL / SMPL-H / SMPL-X posed by canonical parameters; keypoints are ``KEYPOINT_NAMES``."""

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
            kind, src = _KEYPOINT_SOURCES[name]
            (kp_joint if kind == "joint" else kp_vertex).append(
                (k, int(src) if kind == "joint" else ids[src])
            )
        self.register_buffer("kp_joint_slot", torch.tensor([k for k, _ in kp_joint]), persistent=False)
        self.register_buffer("kp_joint_index", torch.tensor([j for _, j in kp_joint]), persistent=False)
        self.register_buffer("kp_vertex_slot", torch.tensor([k for k, _ in kp_vertex]), persistent=False)
        self.register_buffer("kp_vertex_index", torch.tensor([v for _, v in kp_vertex]), persistent=False)
        table = _hand_table(self.name, ids)
        self.has_hands = table is not None
        for key, value in zip(
            ("hand_joint_idx", "hand_vert_slot", "hand_vert_idx", "hand_joint_slot"),
            table or (None,) * 4,
            strict=True,
        ):
            self.register_buffer(key, value, persistent=False)

    # ------------------------------------------------------------------ info
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
            left, right = _HAND_START[self.name]
            out["left_hand"], out["right_hand"] = rot[:, left : left + 15], rot[:, right : right + 15]
            if self.name == "smplx":
                out["jaw"] = rot[:, 22]
        return out

    def native_deltas(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        transl: torch.Tensor,
        **extra: torch.Tensor,
    ) -> torch.Tensor:
        """Local transforms (T, J, 4, 4): native rotations, pelvis position in the root's translation."""
        rot = self.native_rotations(global_orient, body_pose, **extra)
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

    def keypoints_fast(
        self, global_orient: torch.Tensor, body_pose: torch.Tensor, transl: torch.Tensor, rest: SmplRestState
    ) -> torch.Tensor:
        """Keypoints (T, K, 3) straight from canonical parameters (see :meth:`native_rotations`)."""
        return self.keypoints(
            self.bone_transforms(self.native_deltas(global_orient, body_pose, transl), rest), rest
        )

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

    def native_pose_rotvec(self, deltas: torch.Tensor) -> np.ndarray:
        """Native per-joint rotations (T, J, 3) as axis-angle."""
        return roma.rotmat_to_rotvec(deltas[:, :, :3, :3]).detach().cpu().numpy()


def _mean_rotation(rot: torch.Tensor) -> torch.Tensor:
    """Chordal L2 mean (..., 3, 3) of rotations (..., N, 3, 3)."""
    return roma.special_procrustes(rot.mean(dim=-3))


def _hand_table(
    name: str, ids: dict[str, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(joint indices, vertex slots, vertex ids, joint slots) for 42 hand keypoints (left, right)."""
    if _HAND_START[name] is None:
        return None
    joint_idx, joint_slot, vert_idx, vert_slot = [], [], [], []
    for side, (start, wrist, prefix) in enumerate(zip(_HAND_START[name], (20, 21), ("l", "r"), strict=True)):
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
