"""The Anny body model behind the canonical pose interface, with fast batched keypoints.

Canonical pose (see ``skeleton.py``): per frame a global orientation (camera from canonical
model axes), 21 local joint rotations in SMPL-X order and axes, identity = T-pose, and the
pelvis position. Anny is posed through its ``local-ref`` parameterization, where each bone's
delta rotation is expressed in world-aligned axes, so that a bone's global rotation is its
parent's times its delta (as in SMPL). The adapter

- converts axes (Anny's model frame is the design's world frame: Z up, facing -Y),
- maps each canonical joint onto Anny bones (spine1 -> spine05+spine04, spine2 -> spine03+
  spine02, neck -> neck01+neck02, each split into two half rotations; foot -> the five
  ``toe*-1`` bones; twist bones ``*02`` carry no rotation),
- and turns Anny's A-pose arms into the canonical T-pose with fixed rest offsets.

Keypoints are linear in the bone transforms for a fixed shape (linear blend skinning followed
by a linear vertex regressor), so they are computed as ``sum_b T_b C_b`` without skinning the
13,718 vertices at every optimisation step.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import roma
import torch

from backend.body import anny_hands
from backend.body.anny_chain import ReducedChain, chain_poses, fold_coefficients, homogeneous
from backend.body.anny_rig import anny_rig_arrays
from backend.body.model import BodyBase, CanonicalPose
from backend.geometry.skeleton import BODY_JOINTS, BODY_PARENTS, KEYPOINT_NAMES, WORLD_FROM_CANONICAL

log = logging.getLogger(__name__)

# Canonical joint -> Anny bones that carry its rotation (rotation split evenly among them
# when several are chained; applied to each when they are siblings, as the toes).
_CHAIN_SPLIT: dict[str, tuple[str, ...]] = {
    "spine1": ("spine05", "spine04"),
    "spine2": ("spine03", "spine02"),
    "neck": ("neck01", "neck02"),
}
_SIBLINGS: dict[str, tuple[str, ...]] = {
    "left_foot": tuple(f"toe{i}-1.L" for i in range(1, 6)),
    "right_foot": tuple(f"toe{i}-1.R" for i in range(1, 6)),
}
_SINGLE: dict[str, str] = {
    "pelvis": "root", "left_hip": "upperleg01.L", "right_hip": "upperleg01.R",
    "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R", "left_ankle": "foot.L",
    "right_ankle": "foot.R", "spine3": "spine01", "left_collar": "clavicle.L",
    "right_collar": "clavicle.R", "head": "head", "left_shoulder": "upperarm01.L",
    "right_shoulder": "upperarm01.R", "left_elbow": "lowerarm01.L",
    "right_elbow": "lowerarm01.R", "left_wrist": "wrist.L", "right_wrist": "wrist.R",
}  # fmt: skip
# Arm segments straightened into the T-pose: joint -> (bone whose head starts the segment,
# bone whose head ends it, canonical direction in Anny axes).
_ARM_SEGMENTS: dict[str, tuple[str, str, tuple[float, float, float]]] = {
    "left_collar": ("clavicle.L", "upperarm01.L", (1.0, 0.0, 0.0)),
    "left_shoulder": ("upperarm01.L", "lowerarm01.L", (1.0, 0.0, 0.0)),
    "left_elbow": ("lowerarm01.L", "wrist.L", (1.0, 0.0, 0.0)),
    "left_wrist": ("wrist.L", "finger3-1.L", (1.0, 0.0, 0.0)),
    "right_collar": ("clavicle.R", "upperarm01.R", (-1.0, 0.0, 0.0)),
    "right_shoulder": ("upperarm01.R", "lowerarm01.R", (-1.0, 0.0, 0.0)),
    "right_elbow": ("lowerarm01.R", "wrist.R", (-1.0, 0.0, 0.0)),
    "right_wrist": ("wrist.R", "finger3-1.R", (-1.0, 0.0, 0.0)),
}


def _align(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Smallest rotation (3, 3) taking unit direction ``src`` (3,) onto ``dst`` (3,)."""
    src = src / src.norm()
    dst = dst / dst.norm()
    axis = torch.linalg.cross(src, dst)
    angle = torch.atan2(axis.norm(), (src * dst).sum())
    if axis.norm() < 1e-9:
        return torch.eye(3, dtype=src.dtype)
    return roma.rotvec_to_rotmat(axis / axis.norm() * angle)


@dataclass
class RestState:
    """Shape-dependent quantities, recomputed when the shape changes."""

    phenotypes: torch.Tensor
    """(P,) phenotype values in [0, 1]."""
    rest_bone_poses: torch.Tensor
    """(1, B, 4, 4) Anny rest bone poses."""
    rest_vertices: torch.Tensor
    """(1, V, 3) rest mesh."""
    kp_coeffs: torch.Tensor
    """(K, B, 4): keypoint k = sum_b T_b[:3, :] @ kp_coeffs[k, b]."""
    chain_steps: torch.Tensor
    """(E, 4, 4) zero-pose steps of the reduced chain (see anny_chain)."""
    chain_coeffs: torch.Tensor
    """(K, E, 4) keypoint coefficients on the moving bones' frames."""
    hand_coeffs: torch.Tensor
    """(42, B, 4): MediaPipe hand landmark k (left hand, then right) = sum_b T_b[:3, :] @ hand_coeffs[k, b]."""
    hand_chain_steps: torch.Tensor
    """(E', 4, 4) zero-pose steps of the reduced chain with the fingers."""
    hand_chain_coeffs: torch.Tensor
    """(K + 42, E', 4) body keypoints and hand landmarks on that chain's frames."""


class AnnyBody(BodyBase):
    """Anny posed by canonical parameters; keypoints are ``KEYPOINT_NAMES`` (a :class:`BodyModel`)."""

    name = "anny"
    default_collision = "off"
    """Anny's soft, full shapes touch themselves at rest: capsules only on request (README)."""
    has_hands = True
    """Fingers from MediaPipe's hand landmarks (``anny_hands``); the face is not fitted."""
    has_face = False
    num_expression = 0

    def __init__(self, device: torch.device | str = "cpu") -> None:
        super().__init__()
        import anny  # heavy import (warp); done once here
        from anny.skinning.skinning import dense_bone_weights

        model = anny.Anny().to(dtype=torch.float32)
        self.model = model.to(device)
        regressor = anny.KeypointsRegressor.coco(self.model, labels=list(KEYPOINT_NAMES))
        self.register_buffer("kp_weights", regressor.regression_weights.float(), persistent=False)
        skin = dense_bone_weights(
            self.model.vertex_bone_weights, self.model.vertex_bone_indices, self.model.bone_count
        )
        self.register_buffer("skin_weights", skin.float(), persistent=False)  # (V, B)
        self.bone_labels: list[str] = list(self.model.bone_labels)
        self.phenotype_labels: list[str] = list(self.model.phenotype_labels)
        self.faces = self.model.get_triangular_faces().to(device)
        self._build_joint_map()
        self.to(device)  # every buffer on the chosen device

    # ------------------------------------------------------------------ set-up
    def _build_joint_map(self) -> None:
        labels = self.bone_labels
        n_bones = len(labels)
        # entries: (canonical joint index, bone index, power applied to the rotation)
        entries: list[tuple[int, int, float]] = []
        for j, joint in enumerate(BODY_JOINTS):
            if joint in _CHAIN_SPLIT:
                bones = _CHAIN_SPLIT[joint]
                entries += [(j, labels.index(b), 1.0 / len(bones)) for b in bones]
            elif joint in _SIBLINGS:
                entries += [(j, labels.index(b), 1.0) for b in _SIBLINGS[joint]]
            else:
                entries.append((j, labels.index(_SINGLE[joint]), 1.0))
        self.register_buffer("map_joint", torch.tensor([e[0] for e in entries]), persistent=False)
        self.register_buffer("map_bone", torch.tensor([e[1] for e in entries]), persistent=False)
        self.register_buffer(
            "map_power", torch.tensor([e[2] for e in entries], dtype=torch.float32), persistent=False
        )
        powered = [i for i, e in enumerate(entries) if e[2] < 1.0]
        self.register_buffer("powered", torch.tensor(powered, dtype=torch.long), persistent=False)
        self.split_entries = bool(powered)
        """Whether some bones take a share of a joint's rotation (known at build time: no device read)."""
        self.n_bones = n_bones
        # Rest offsets (Anny axes): rotation taking the T-pose segment onto Anny's zero pose.
        with torch.no_grad():
            zero = self.model(None)
            heads = zero["bone_poses"][0, :, :3, 3].cpu()
        offsets = torch.eye(3).repeat(len(BODY_JOINTS), 1, 1)
        for joint, (start, end, direction) in _ARM_SEGMENTS.items():
            seg = heads[labels.index(end)] - heads[labels.index(start)]
            offsets[BODY_JOINTS.index(joint)] = _align(torch.tensor(direction), seg)
        self.register_buffer("rest_offsets", offsets.to(self.kp_weights.device), persistent=False)
        c = torch.tensor(WORLD_FROM_CANONICAL, dtype=torch.float32)
        self.register_buffer("anny_from_canonical", c.to(self.kp_weights.device), persistent=False)
        self.register_buffer("parents", torch.tensor(BODY_PARENTS[1:]), persistent=False)
        assert len(set(self.map_bone.tolist())) == len(self.map_bone), "each moving bone once"
        self.chain = ReducedChain.build(list(self.model.bone_parents), self.map_bone.cpu())
        ref = self.model.reference_bone_orientations[self.map_bone].float()
        self.register_buffer("active_reference", ref, persistent=False)
        self._build_hands(zero)

    def _build_hands(self, zero: dict[str, torch.Tensor]) -> None:
        """The finger bones the hand rotations drive and the fingertip vertices (from the rest body)."""
        labels = self.bone_labels
        bones = [[labels.index(b) for b in anny_hands.finger_bones(side)] for side in anny_hands.SIDES]
        self.register_buffer("hand_bones", torch.tensor(bones, device=self.kp_weights.device), persistent=False)
        active = torch.cat([self.map_bone.cpu(), self.hand_bones.flatten().cpu()])
        self.hand_chain = ReducedChain.build(list(self.model.bone_parents), active)
        ref = self.model.reference_bone_orientations[active.to(self.model.reference_bone_orientations.device)]
        self.register_buffer("hand_reference", ref.float(), persistent=False)
        tips = anny_hands.fingertip_vertices(
            zero["rest_vertices"][0].to(self.skin_weights), zero["rest_bone_poses"][0].to(self.skin_weights),
            self.skin_weights, labels,
        )  # fmt: skip
        self.landmarks = anny_hands.LandmarkIndex.build(labels, tips, self.skin_weights.device)

    @property
    def hand_mean(self) -> torch.Tensor:
        """(2, 15, 3) the fingers' rest (Anny's relaxed rest hand: zero rotations), left then right."""
        return torch.zeros(2, 15, 3, device=self.kp_weights.device)

    @property
    def shape_size(self) -> int:
        return len(self.phenotype_labels)

    @staticmethod
    def shape_from_params(params: torch.Tensor) -> torch.Tensor:
        """Phenotypes in (0, 1) through a sigmoid of the fit's logits (0 = the average body)."""
        return torch.sigmoid(params)

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gender": "phenotype",
            "source_hash": self.source_hash(),
            "phenotype_labels": self.phenotype_labels,
            "native_pose": "anny_pose: per-bone local-ref delta rotations (axis-angle), bone order in bone_labels",
            "bone_labels": self.bone_labels,
        }

    def rig_arrays(self, shape: np.ndarray) -> dict[str, np.ndarray]:
        return anny_rig_arrays(self, shape)

    @staticmethod
    def motion_arrays(
        shape: np.ndarray, global_orient: np.ndarray, native_pose: np.ndarray, parts: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Anny's arrays of the motion file: ``phenotypes``, ``anny_pose`` (fingers included), the fitted
        finger rotations (canonical axes, SMPL-X hand order; zeros = rest) and hand landmarks if fitted."""
        t = len(native_pose)

        def part(name: str) -> np.ndarray:
            return np.asarray(parts.get(name, np.zeros((t, 45))), np.float32).reshape(t, 45)

        arrays = {
            "left_hand_pose": part("left_hand_pose"),
            "right_hand_pose": part("right_hand_pose"),
            "jaw_pose": np.zeros((t, 3), np.float32),
            "phenotypes": np.asarray(shape, np.float32),
            "anny_pose": np.asarray(native_pose, np.float32),
        }
        if "hand_keypoints3d" in parts:  # (T, 2, 21, 3) MediaPipe Hands order
            arrays["keypoints3d_hands"] = np.asarray(parts["hand_keypoints3d"], np.float32)
        return arrays

    def source_hash(self) -> str:
        """A short hash identifying the body model data (for the motion file's meta)."""
        digest = hashlib.sha256()
        digest.update(self.model.template_vertices.detach().cpu().numpy().tobytes())
        digest.update(self.kp_weights.detach().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ shape
    def rest_state(self, phenotypes: torch.Tensor) -> RestState:
        """Rest mesh, rest bones and keypoint coefficients for phenotypes (P,) in [0, 1]."""
        m = self.model
        zeros_local = torch.zeros(1, len(m.local_change_labels), device=phenotypes.device)
        zeros_face = torch.zeros(1, len(m.facial_action_labels), device=phenotypes.device)
        coeffs = m._get_phenotype_blendshape_coefficients(phenotypes[None], zeros_local, zeros_face)
        rest = m.get_rest_model(coeffs)
        verts = rest["rest_vertices"]  # (1, V, 3)
        homo = torch.cat([verts[0], torch.ones_like(verts[0, :, :1])], dim=-1)  # (V, 4)
        # (K, V, 4) weighted vertices, then (K*4, V) @ (V, B)
        weighted = self.kp_weights[:, :, None] * homo[None]
        k, v, _ = weighted.shape
        coeff = (weighted.permute(0, 2, 1).reshape(k * 4, v) @ self.skin_weights).reshape(k, 4, -1)
        kp_coeffs = coeff.permute(0, 2, 1)
        from anny.utils import kinematics

        identity = torch.eye(4, device=verts.device, dtype=verts.dtype).repeat(1, self.n_bones, 1, 1)
        _, zero_poses = kinematics.forward_kinematic(
            (m.kinematic_chain_levels, m.kinematic_chain_indices),
            rest["rest_bone_poses"],
            identity,
            "local-ref",
            m.reference_bone_orientations,
        )
        steps, folded = fold_coefficients(self.chain, zero_poses[0], rest["rest_bone_poses"][0], kp_coeffs)
        hands = anny_hands.landmark_coefficients(verts[0], rest["rest_bone_poses"][0], self.skin_weights, self.landmarks)
        hand_steps, hand_folded = fold_coefficients(
            self.hand_chain, zero_poses[0], rest["rest_bone_poses"][0], torch.cat([kp_coeffs, hands])
        )
        return RestState(
            phenotypes, rest["rest_bone_poses"], verts, kp_coeffs, steps, folded, hands, hand_steps, hand_folded
        )

    # ------------------------------------------------------------------ pose
    def native_deltas(self, pose: CanonicalPose) -> torch.Tensor:
        """Anny ``local-ref`` delta transforms (T, B, 4, 4) for its 104 bones from a canonical pose; the
        hand rotations (``anny_hands``: canonical axes turned into Anny's) drive the finger bones, None
        leaves them at rest (jaw and expression are not used)."""
        sel = self.active_rotations(pose.global_orient, pose.body_pose)
        deltas = torch.eye(4, device=sel.device, dtype=sel.dtype).repeat(pose.frames, self.n_bones, 1, 1)
        deltas[:, self.map_bone, :3, :3] = sel
        deltas[:, 0, :3, 3] = pose.transl
        c = self.anny_from_canonical
        for side, hand in enumerate((pose.left_hand, pose.right_hand)):
            if hand is not None:
                deltas[:, self.hand_bones[side], :3, :3] = c @ hand @ c.T
        return deltas

    def hand_keypoints(self, transforms: torch.Tensor, rest: RestState) -> torch.Tensor:
        """(T, 2, 21, 3) MediaPipe's hand landmarks, left then right, from skinning transforms (T, B, 4, 4)."""
        flat = torch.einsum("tbij,kbj->tki", transforms[:, :, :3, :], rest.hand_coeffs)
        return flat.reshape(flat.shape[0], 2, 21, 3)

    def active_rotations(self, global_orient: torch.Tensor, body_pose: torch.Tensor) -> torch.Tensor:
        """Delta rotations (T, E, 3, 3) of the bones that move (``map_bone``, root first)."""
        c = self.anny_from_canonical
        local = c @ body_pose @ c.T  # canonical local rotations in Anny axes
        offsets = self.rest_offsets
        parent_off = offsets[self.parents]  # (21, 3, 3)
        joint_off = offsets[1:]
        local = parent_off @ local @ joint_off.transpose(-1, -2)
        root = global_orient @ c.T  # camera from Anny model axes
        root = root @ offsets[0].T
        rots = torch.cat([root[:, None], local], dim=1)  # (T, 22, 3, 3)
        sel = rots[:, self.map_joint]  # (T, E, 3, 3)
        if self.split_entries:  # the chained bones' share of their joint's rotation
            needs_power = self.powered
            vec = roma.rotmat_to_rotvec(sel[:, needs_power])
            powered = roma.rotvec_to_rotmat(vec * self.map_power[needs_power][:, None])
            sel = sel.clone()
            sel[:, needs_power] = powered
        return sel

    def bone_transforms(self, deltas: torch.Tensor, rest: RestState) -> torch.Tensor:
        """Skinning transforms (T, B, 4, 4) from delta transforms (T, B, 4, 4)."""
        from anny.utils import kinematics

        m = self.model
        transforms, _ = kinematics.forward_kinematic(
            (m.kinematic_chain_levels, m.kinematic_chain_indices),
            rest.rest_bone_poses.expand(deltas.shape[0], -1, -1, -1),
            deltas,
            "local-ref",
            m.reference_bone_orientations,
        )
        return transforms

    def keypoints(self, transforms: torch.Tensor, rest: RestState) -> torch.Tensor:
        """Keypoints (T, K, 3) in the camera frame from skinning transforms (T, B, 4, 4)."""
        return torch.einsum("tbij,kbj->tki", transforms[:, :, :3, :], rest.kp_coeffs)

    def keypoints_fast(self, pose: CanonicalPose, rest: RestState) -> torch.Tensor:
        """Keypoints (T, K, 3) in the camera frame straight from a canonical pose.

        Same result as ``forward(pose, rest).keypoints`` over the 33 moving bones only (about three
        times faster, forward and backward).
        """
        rot = self.active_rotations(pose.global_orient, pose.body_pose)  # (T, E, 3, 3)
        return self._chain_points(self.chain, rest.chain_steps, rest.chain_coeffs, self.active_reference, rot,
                                  pose.transl)  # fmt: skip

    def keypoints_with_hands(self, pose: CanonicalPose, rest: RestState) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (T, K, 3) and hand landmarks (T, 2, 21, 3) straight from a canonical pose with hands
        (the reduced chain of the moving body bones and the 30 finger bones; same values as ``forward``)."""
        rot = self.active_rotations(pose.global_orient, pose.body_pose)
        c, eye = self.anny_from_canonical, torch.eye(3, device=rot.device, dtype=rot.dtype)
        hands = [eye.expand(rot.shape[0], 15, 3, 3) if h is None else c @ h @ c.T for h in (pose.left_hand, pose.right_hand)]
        points = self._chain_points(self.hand_chain, rest.hand_chain_steps, rest.hand_chain_coeffs,
                                    self.hand_reference, torch.cat([rot, *hands], dim=1), pose.transl)  # fmt: skip
        k = len(KEYPOINT_NAMES)
        return points[:, :k], points[:, k:].reshape(points.shape[0], 2, 21, 3)

    @staticmethod
    def _chain_points(
        chain: ReducedChain, steps: torch.Tensor, coeffs: torch.Tensor, reference: torch.Tensor,
        rot: torch.Tensor, transl: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """(T, N, 3) points folded on ``chain`` (``coeffs`` (N, E, 4)) from its bones' delta rotations
        ``rot`` (T, E, 3, 3, root first) and the root's translation (T, 3)."""
        local_rot = reference.transpose(-1, -2) @ rot @ reference
        shift = torch.zeros(rot.shape[:2] + (3,), dtype=rot.dtype, device=rot.device)
        root_shift = (reference[0].T @ transl[..., None])[..., 0]  # (T, 3)
        shift = torch.cat([root_shift[:, None], shift[:, 1:]], dim=1)
        frames = chain_poses(chain, steps @ homogeneous(local_rot, shift))
        return torch.einsum("teij,kej->tki", frames[:, :, :3, :], coeffs)

    def vertices(
        self, transforms: torch.Tensor, rest: RestState, expression: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Skinned vertices (T, V, 3) in the camera frame (Anny has no expression coefficients)."""
        return self.model.get_skinned_vertices(
            rest.rest_vertices.expand(transforms.shape[0], -1, -1), transforms
        )

    def vertices_at(self, transforms: torch.Tensor, rest: RestState, vids: torch.Tensor) -> torch.Tensor:
        """Skinned vertices ``vids`` (N,) only: (T, N, 3), same values as :meth:`vertices` there.
        Uses Anny's sparse skinning (at most 9 bones per vertex)."""
        m = self.model
        weights, bones = m.vertex_bone_weights[vids], m.vertex_bone_indices[vids]  # (N, 9)
        blended = torch.einsum("nk,tnkij->tnij", weights, transforms[:, bones, :3, :])
        verts = rest.rest_vertices[0, vids]
        homo = torch.cat([verts, torch.ones_like(verts[:, :1])], dim=-1)
        return torch.einsum("tnij,nj->tni", blended, homo)
