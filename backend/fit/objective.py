"""The fit's objective: its terms and their weights, for one stage at a time.

Terms (``losses`` holds the pure functions): robust 2D reprojection, robust 3D agreement with the
lifted keypoints (root-relative; after the 3D-led stage turned onto the body by one rotation per
clip, ``FitWeights.align_3d``), temporal smoothness of joints, translation and rotations, L2 pose
prior, VPoser latent-norm prior, anatomical joint limits, shape prior, the SMPL family's hand and
face terms (``smplx_terms``), and the self-collision terms (capsules, mesh). The stage's
:class:`~backend.fit.schedule.StageTerms` scales or switches them (the annealing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from backend.body.model import BodyModel, CanonicalPose
from backend.body.vposer import VPoser, latent_norm_penalty
from backend.config import FitWeights
from backend.fit import losses
from backend.fit.capsules import KeypointCapsules
from backend.fit.contacts import (
    FootContacts,
    GroundParams,
    below_ground,
    contact_height,
    contact_still,
    static_points,
)
from backend.fit.data import FitInputs, FitParams
from backend.fit.mesh_term import MeshCollisionTerm
from backend.fit.schedule import Stage
from backend.fit.smplx_terms import SmplxParts
from backend.geometry.camera import project
from backend.geometry.frames import FOOT_POINTS
from backend.geometry.skeleton import BODY_JOINTS, KEYPOINT_NAMES

_LHIP, _RHIP = KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")
_ARMS = [KEYPOINT_NAMES.index(n) for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")]
IMAGE_HEIGHT_UNIT = 1000.0
"""Pixel scales of the robust 2D terms are given for an image this many pixels high."""
MIN_FRAME_GAP, MAX_FRAME_GAP = 0.2, 5.0
"""Frame durations relative to the median, clipped (dropped frames, timestamp glitches)."""


def limit_rules(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anatomical sign rules on canonical body_pose (21 joints, SMPL-X axes): (joint, axis, sign)."""

    def j(name: str) -> int:
        return BODY_JOINTS.index(name) - 1

    rules = [
        (j("left_knee"), 0, 1.0), (j("right_knee"), 0, 1.0),  # knees flex about +x only
        (j("left_knee"), 1, 1.0), (j("left_knee"), 1, -1.0), (j("left_knee"), 2, 1.0), (j("left_knee"), 2, -1.0),
        (j("right_knee"), 1, 1.0), (j("right_knee"), 1, -1.0), (j("right_knee"), 2, 1.0), (j("right_knee"), 2, -1.0),
        (j("left_elbow"), 1, -1.0), (j("right_elbow"), 1, 1.0),  # elbows flex one way
        (j("left_elbow"), 2, 1.0), (j("left_elbow"), 2, -1.0), (j("right_elbow"), 2, 1.0), (j("right_elbow"), 2, -1.0),
    ]  # fmt: skip
    joint = torch.tensor([r[0] for r in rules], device=device)
    axis = torch.tensor([r[1] for r in rules], device=device)
    sign = torch.tensor([r[2] for r in rules], device=device)
    return joint, axis, sign


def prior_term(prior: VPoser | None, weight: float, body_pose: torch.Tensor) -> torch.Tensor:
    """SMPLify-X's VPoser term: ``weight`` times the mean squared latent norm of (T, 21, 3) poses
    (0 without a prior)."""
    if prior is None or weight <= 0:
        return body_pose.new_zeros(())
    z = prior.encode(body_pose.reshape(body_pose.shape[0], -1)).mean
    return weight * latent_norm_penalty(z)


@dataclass
class Observations:
    """The fit's observations on the device."""

    kp2d: torch.Tensor
    """(T, K, 2) pixels."""
    conf2d: torch.Tensor
    """(T, K) confidences below ``min_confidence`` set to 0."""
    conf2d_torso: torch.Tensor
    """(T, K) the same without elbows and wrists."""
    lifted: torch.Tensor
    """(T, K, 3) root-relative 3D keypoints."""
    conf3d: torch.Tensor
    """(T, K)."""
    intrinsics: torch.Tensor
    """(3, 3)."""
    dt: torch.Tensor
    """(T - 1,) frame durations relative to the median (1 for a single frame)."""
    scale: float
    """Image height in units of ``IMAGE_HEIGHT_UNIT`` pixels."""


def observe(inputs: FitInputs, weights: FitWeights, device: torch.device) -> Observations:
    """Move the observations to the device, with low-confidence detections dropped."""

    def tensor(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=device)

    conf2d = tensor(np.where(inputs.conf2d >= weights.min_confidence, inputs.conf2d, 0.0))
    torso = conf2d.clone()
    torso[:, _ARMS] = 0.0
    t = inputs.kp2d.shape[0]
    durations = np.diff(inputs.times) if t > 1 else np.ones(1)
    median = float(np.median(durations)) if t > 1 else 1.0
    dt = tensor(np.clip(durations / max(median, 1e-6), MIN_FRAME_GAP, MAX_FRAME_GAP))
    return Observations(
        tensor(inputs.kp2d), conf2d, torso, tensor(inputs.lifted), tensor(inputs.conf3d),
        tensor(inputs.intrinsics), dt, inputs.image_height / IMAGE_HEIGHT_UNIT,
    )  # fmt: skip


class Objective:
    """``objective(stage, params, rest, rot0)`` -> (total loss, named terms), see the module doc."""

    def __init__(
        self,
        body: BodyModel,
        weights: FitWeights,
        obs: Observations,
        prior: VPoser | None,
        parts: SmplxParts | None,
        capsules: tuple[KeypointCapsules, float] | None,
    ) -> None:
        self.body, self.w, self.obs, self.prior, self.parts = body, weights, obs, prior, parts
        self.capsules = capsules
        self.mesh: tuple[MeshCollisionTerm, float] | None = None
        """Set by the fitter when the collision stage starts (the term is built on the final shape)."""
        self.feet: FootContacts | None = None
        """Set by the fitter when the contact stage starts (contacts from the fit so far)..."""
        self.ground: GroundParams | None = None
        """...with the ground plane it fits."""
        self.limits = limit_rules(obs.kp2d.device)

    def prior_term(self, body_pose: torch.Tensor) -> torch.Tensor:
        return prior_term(self.prior, self.w.w_prior, body_pose)

    def __call__(
        self, stage: Stage, params: FitParams, rest: Any, rot0: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w, obs, on = self.w, self.obs, stage.terms
        if rest is None:  # the shape moves in this stage
            rest = self.body.rest_state(self.body.shape_from_params(params.shape_logits))
        pose = params.pose(rot0)
        part_terms: dict[str, torch.Tensor] = {}
        if self.parts is None:
            kp = self.body.keypoints_fast(pose, rest)
        else:
            kp, part_terms = self.parts.evaluate(stage.name, pose, rest, obs.intrinsics, obs.scale, obs.dt)
        proj = project(kp, obs.intrinsics)  # (autograd sums gradients in the order the graph was built)
        rel = losses.root_relative(kp, _LHIP, _RHIP)
        lifted = obs.lifted
        if on.align_3d and w.align_3d:
            lifted = losses.rotated_onto(rel.detach(), lifted, obs.conf3d)
        ws = on.scale_smooth
        terms = {
            "2d": on.scale_2d * w.w_2d * losses.reprojection(
                proj, obs.kp2d, obs.conf2d if on.arms_2d else obs.conf2d_torso, w.gm_sigma_px, obs.scale
            ),
            "3d": on.scale_3d * w.w_3d * losses.keypoints3d(rel, lifted, obs.conf3d, w.sigma_3d),
            "smooth_joints": ws * w.w_smooth_joints * losses.smoothness(rel, obs.dt),
            "smooth_transl": ws * w.w_smooth_transl * losses.smoothness(params.transl, obs.dt),
            "smooth_rot": ws * w.w_smooth_rot * losses.smoothness(
                torch.cat([pose.global_orient[:, None], pose.body_pose], 1).flatten(1), obs.dt
            ),
            "pose": w.w_pose * losses.pose_l2(params.body_pose),
            # Without the prior the global stage does not move the body pose: the term would be a constant.
            "prior": self.prior_term(params.body_pose) if on.prior else params.body_pose.new_zeros(()),
            "limits": w.w_limits * losses.hinge_limits(params.body_pose, *self.limits),
            "shape": w.w_shape * losses.shape_prior(params.shape_logits),
            **part_terms,
        }  # fmt: skip
        if self.capsules is not None and on.capsules:
            term, weight = self.capsules
            terms["collision"] = weight * term.penalty(kp)
        if on.mesh and self.mesh is not None:
            terms["mesh_collision"] = self.mesh[1] * self.mesh[0].penalty(self._transforms(pose, rest))
        if on.contacts and self.feet is not None and self.ground is not None:
            terms.update(self._foot_terms(kp))
        return sum(terms.values()), terms

    def _foot_terms(self, kp: torch.Tensor) -> dict[str, torch.Tensor]:
        """Planted feet stay put and on the ground; no foot point below the ground (``contacts``)."""
        feet = static_points(kp[:, list(FOOT_POINTS)], self.feet.rotations)
        heights = self.ground.heights(feet, self.feet.rest_height)
        return {
            "contact_still": self.w.w_contact_still * contact_still(feet, self.feet.contact),
            "contact_height": self.w.w_contact_height * contact_height(heights, self.feet.contact),
            "below_ground": self.w.w_below_ground
            * below_ground(self.ground.heights(feet, self.feet.rest_height, detached=True), self.feet.seen),
        }

    def _transforms(self, pose: CanonicalPose, rest: Any):  # noqa: ANN202 - a closure for the mesh term
        def transforms(idx: torch.Tensor) -> torch.Tensor:
            if self.parts is not None:
                return self.parts.transforms(pose.select(idx), rest, idx)
            return self.body.bone_transforms(self.body.native_deltas(pose.select(idx)), rest)

        return transforms
