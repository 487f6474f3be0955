"""The hands and face of the temporal fit, for a body model that has them (``BodyModel.has_hands``,
``has_face``: Anny's, SMPL-H's and SMPL-X's fingers, SMPL-X jaw and expression).

Per frame the fit adds 2 x 15 finger rotations (axis-angle, SMPL-X hand order, started at the model
file's mean relaxed hand), a jaw rotation and the expression coefficients. Terms, as SMPLify-X:

- robust 2D reprojection of MediaPipe's 21 landmarks per hand (``hand_keypoints``) and of
  SMPL-X's 51 face landmarks (``face_keypoints``, fed from MediaPipe's face mesh);
- hand pose prior: squared distance of each finger rotation to the mean hand; jaw and expression
  L2 priors; temporal smoothness of all of them.

Annealed schedule: the hand terms join in the ``hands`` stage (after the body), the face terms in
the ``face`` stage (after the hands); the final ``all`` stage keeps both. Stages without a hand or
face term (the body stages, or no landmarks in the clip) run on the body's fast keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import roma
import torch

from backend.body.model import BodyModel, CanonicalPose
from backend.config import FitConfig
from backend.fit import losses
from backend.fit.schedule import Stage, StageTerms
from backend.geometry.camera import project

HAND_STAGES = ("hands", "face", "all")
FACE_STAGES = ("face", "all")


@dataclass
class PartObservations:
    """Hand and face detections on the device; confidences are 0 where missing."""

    hand2d: torch.Tensor
    """(T, 42, 2) left then right hand, MediaPipe Hands order, pixels."""
    hand_conf: torch.Tensor
    """(T, 42)."""
    face2d: torch.Tensor
    """(T, 51, 2) SMPL-X face landmarks (iBUG 17..67), pixels."""
    face_conf: torch.Tensor
    """(T, 51)."""


def part_observations(
    hand2d: np.ndarray | None, face2d: np.ndarray | None, t: int, min_conf: float, device: torch.device
) -> PartObservations:
    """Observations from ``FitInputs.hand2d`` (T, 2, 21, 3) and ``face2d`` (T, 51, 3) (None: absent)."""

    def split(values: np.ndarray | None, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if values is None:
            return torch.zeros(t, k, 2, device=device), torch.zeros(t, k, device=device)
        v = np.asarray(values, np.float32).reshape(t, k, 3)
        conf = np.where(v[..., 2] >= min_conf, v[..., 2], 0.0)
        return (
            torch.as_tensor(v[..., :2], device=device),
            torch.as_tensor(conf, dtype=torch.float32, device=device),
        )

    hands, hand_conf = split(hand2d, 42)
    face, face_conf = split(face2d, 51)
    return PartObservations(hands, hand_conf, face, face_conf)


class PartParams(torch.nn.Module):
    """Per-frame hand, jaw and expression parameters."""

    def __init__(self, t: int, hand_mean: torch.Tensor, n_expression: int) -> None:
        super().__init__()
        self.hands = torch.nn.Parameter(hand_mean.detach().cpu().float().expand(t, 2, 15, 3).clone())
        self.jaw = torch.nn.Parameter(torch.zeros(t, 3))
        self.expression = torch.nn.Parameter(torch.zeros(t, max(n_expression, 0)))


class SmplxParts:
    """Parameters, keypoints and loss terms of the hands and face; see the module docstring."""

    def __init__(self, body: BodyModel, config: FitConfig, obs: PartObservations, device: torch.device) -> None:
        t = obs.hand2d.shape[0]
        self.body = body
        self.config = config
        self.obs = obs
        self.has_hands = bool(body.has_hands)
        self.has_face = bool(body.has_face)
        self.fit_hands = self.has_hands and bool(obs.hand_conf.any())
        """Hands with landmarks somewhere in the clip: without any, the fingers stay at the mean hand."""
        self.hand_mean = body.hand_mean.to(device)
        self.params = PartParams(t, self.hand_mean, body.num_expression).to(device)

    def stages(self, body_group: list[torch.nn.Parameter]) -> list[Stage]:
        """The hands and face stages (after the body stage), each with the body parameters ``body_group``."""
        schedule, out = self.config.schedule, []
        if self.fit_hands and schedule.iters_hands > 0:
            group = [*body_group, self.params.hands]
            out.append(Stage("hands", group, schedule.iters_hands, schedule.lr, StageTerms(), "initial"))
        if self.has_face and schedule.iters_face > 0 and bool(self.obs.face_conf.any()):
            group = [*body_group, self.params.jaw, self.params.expression]
            out.append(Stage("face", group, schedule.iters_face, schedule.lr, StageTerms(), "initial"))
        return out

    def all_parameters(self) -> list[torch.nn.Parameter]:
        """What the final ``all`` stage adds to the body's parameters."""
        extra = [self.params.hands] if self.fit_hands else []
        return extra + ([self.params.jaw, self.params.expression] if self.has_face else [])

    def with_parts(self, pose: CanonicalPose, frames: torch.Tensor | None = None) -> CanonicalPose:
        """``pose`` (of the n frames ``frames``, None: all T) with the current hands and jaw."""
        p = self.params
        sel = slice(None) if frames is None else frames
        extra: dict[str, torch.Tensor] = {}
        if self.has_hands:
            hands = roma.rotvec_to_rotmat(p.hands[sel])
            extra = {"left_hand": hands[:, 0], "right_hand": hands[:, 1]}
        if self.has_face:
            extra["jaw"] = roma.rotvec_to_rotmat(p.jaw[sel])
        return replace(pose, **extra)

    def transforms(self, pose: CanonicalPose, rest: Any, frames: torch.Tensor | None = None) -> torch.Tensor:
        """Skinning transforms (n, J, 4, 4) of ``pose`` with the current hands and jaw."""
        return self.body.bone_transforms(self.body.native_deltas(self.with_parts(pose, frames)), rest)

    def evaluate(
        self, stage: str, pose: CanonicalPose, rest: Any, intrinsics: torch.Tensor, scale: float, dt: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Body keypoints (T, K, 3) and the part terms active in ``stage`` (scalars)."""
        cfg, p, obs = self.config.weights, self.params, self.obs
        hands_on, face_on = self.fit_hands and stage in HAND_STAGES, self.has_face and stage in FACE_STAGES
        if not (hands_on or face_on):  # the body stages: the fast keypoints (no finger, jaw or expression)
            return self.body.keypoints_fast(pose, rest), {}
        if face_on:
            transforms = self.transforms(pose, rest)
            kp = self.body.keypoints(transforms, rest)
            hands = self.body.hand_keypoints(transforms, rest) if hands_on else None
        else:  # hands only: the model's own (possibly faster) path
            kp, hands = self.body.keypoints_with_hands(self.with_parts(pose), rest)
        terms: dict[str, torch.Tensor] = {}
        if hands is not None:
            hands = hands.flatten(1, 2)  # (T, 42, 3)
            terms["hand_2d"] = cfg.w_hand_2d * losses.reprojection(
                project(hands, intrinsics), obs.hand2d, obs.hand_conf, cfg.gm_sigma_parts_px, scale
            )
            terms["hand_pose"] = cfg.w_hand_pose * losses.pose_l2((p.hands - self.hand_mean).flatten(1, 2))
            terms["smooth_hands"] = cfg.w_smooth_parts * losses.smoothness(p.hands.flatten(1), dt)
        if face_on:
            face = self.body.face_keypoints(transforms, rest, p.expression)
            terms["face_2d"] = cfg.w_face_2d * losses.reprojection(
                project(face, intrinsics), obs.face2d, obs.face_conf, cfg.gm_sigma_parts_px, scale
            )
            terms["jaw"] = cfg.w_jaw * p.jaw.pow(2).sum(-1).mean()
            terms["expression"] = cfg.w_expression * p.expression.pow(2).sum(-1).mean()
            terms["smooth_face"] = cfg.w_smooth_parts * losses.smoothness(
                torch.cat([p.jaw, p.expression], dim=1), dt
            )
        return kp, terms

    @torch.no_grad()
    def result(self, pose: CanonicalPose, rest: Any) -> dict[str, np.ndarray]:
        """Fitted arrays: hand, jaw and expression parameters and the part keypoints (camera frame)."""
        p = self.params
        t = p.hands.shape[0]
        transforms = self.transforms(pose, rest)
        out: dict[str, np.ndarray] = {
            "left_hand_pose": np.zeros((t, 15, 3), np.float32),
            "right_hand_pose": np.zeros((t, 15, 3), np.float32),
            "jaw_pose": np.zeros((t, 3), np.float32),
            "expression": np.zeros((t, self.body.num_expression), np.float32),
        }
        if self.has_hands:
            out["left_hand_pose"] = p.hands[:, 0].cpu().numpy()
            out["right_hand_pose"] = p.hands[:, 1].cpu().numpy()
            out["hand_keypoints3d"] = self.body.hand_keypoints(transforms, rest).cpu().numpy()
        if self.has_face:
            out["jaw_pose"] = p.jaw.cpu().numpy()
            out["expression"] = p.expression.cpu().numpy()
            out["face_keypoints3d"] = self.body.face_keypoints(transforms, rest, p.expression).cpu().numpy()
        return out
