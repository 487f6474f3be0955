"""Staged temporal fit of a body model to 2D detections and lifted 3D keypoints.

One shape for the clip (Anny's phenotypes through a sigmoid, or SMPL-family betas with an L2
prior); per frame a global orientation, 21 canonical joint rotations and the pelvis translation in
the camera frame. All frames are optimised together (batched), in stages: orientation and
translation, the body pose on the 3D evidence, the body pose, then (SMPL-H / SMPL-X, see
``smplx_terms``) the hands and the face, then everything including the shape. Each stage stops
early when the loss stops improving; a non-finite loss rolls back to the last good parameters with
a smaller step. An optional capsule self-collision term (``capsules``) joins after the first stage;
``collision="mesh"`` adds a last stage with the mesh self-collision term (``mesh_term``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import roma
import torch

from backend import protocol
from backend.body.anny_body import AnnyBody, RestState
from backend.body.skeleton import BODY_JOINTS, KEYPOINT_NAMES
from backend.body.smplx_body import SmplxBody
from backend.body.vposer import VPoser, latent_norm_penalty
from backend.config import FitConfig
from backend.errors import Cancelled
from backend.fit import losses
from backend.fit.capsules import KeypointCapsules
from backend.fit.init import initial_orientation, initial_translation
from backend.fit.mesh_parts import body_mesh_parts
from backend.fit.mesh_term import MeshCollisionTerm
from backend.fit.smplx_terms import SmplxParts, part_observations
from backend.geometry.camera import project

log = logging.getLogger(__name__)

_LHIP, _RHIP = KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip")
_ARMS = [KEYPOINT_NAMES.index(n) for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist")]


def _limit_rules(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anatomical sign rules on canonical body_pose (21 joints, SMPL-X axes)."""

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


@dataclass
class FitInputs:
    """Observations for one subject over T frames (numpy, float)."""

    kp2d: np.ndarray
    """(T, K, 2) detections in pixels."""
    conf2d: np.ndarray
    """(T, K) detection confidences; 0 where missing."""
    lifted: np.ndarray
    """(T, K, 3) root-relative 3D keypoints, camera-aligned axes, metres."""
    conf3d: np.ndarray
    """(T, K)."""
    times: np.ndarray
    """(T,) seconds."""
    intrinsics: np.ndarray
    """(3, 3)."""
    image_height: int
    hand2d: np.ndarray | None = None
    """(T, 2, 21, 3) left then right hand (MediaPipe Hands order): pixels and confidence; SMPL-H/X only."""
    face2d: np.ndarray | None = None
    """(T, 51, 3) SMPL-X's face landmarks (iBUG 17..67): pixels and confidence; SMPL-X only."""


@dataclass
class FitResult:
    global_orient: np.ndarray
    """(T, 3) axis-angle, camera from canonical model axes."""
    body_pose: np.ndarray
    """(T, 21, 3) canonical local rotations, axis-angle."""
    transl: np.ndarray
    """(T, 3) pelvis position in the camera frame, metres."""
    phenotypes: np.ndarray
    """(P,) the body's shape: Anny's phenotypes in [0, 1], or the SMPL family's betas."""
    keypoints3d: np.ndarray
    """(T, K, 3) fitted keypoints in the camera frame."""
    projected: np.ndarray
    """(T, K, 2) fitted keypoints projected to pixels."""
    native_pose: np.ndarray
    """(T, B, 3) the body model's own per-bone rotations, axis-angle."""
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    """SMPL family: ``left_hand_pose``/``right_hand_pose`` (T, 15, 3), ``jaw_pose`` (T, 3), ``expression``
    (T, E), and ``hand_keypoints3d`` (T, 2, 21, 3) / ``face_keypoints3d`` (T, 51, 3) where fitted."""


def _floats(terms: dict[str, torch.Tensor], digits: int) -> dict[str, float]:
    """Loss terms as rounded floats, for logs and stats (one device sync, only when asked)."""
    return {k: round(float(v.detach()), digits) for k, v in terms.items()}


def _shape_size(body: AnnyBody | SmplxBody) -> int:
    return len(body.phenotype_labels) if isinstance(body, AnnyBody) else body.num_betas


def _shape_values(body: AnnyBody | SmplxBody, shape: torch.Tensor) -> torch.Tensor:
    """The model's shape from the optimised parameter: sigmoid logits for Anny (0 = 0.5), betas as is."""
    return torch.sigmoid(shape) if isinstance(body, AnnyBody) else shape


class _Params(torch.nn.Module):
    def __init__(self, t: int, n_pheno: int, transl0: torch.Tensor) -> None:
        super().__init__()
        self.orient_delta = torch.nn.Parameter(torch.zeros(t, 3))
        pose = torch.zeros(t, 21, 3)
        # Start from relaxed arms rather than the T-pose.
        pose[:, BODY_JOINTS.index("left_shoulder") - 1, 2] = -1.1
        pose[:, BODY_JOINTS.index("right_shoulder") - 1, 2] = 1.1
        self.body_pose = torch.nn.Parameter(pose)
        self.transl = torch.nn.Parameter(transl0.clone())
        self.shape_logits = torch.nn.Parameter(torch.zeros(n_pheno))


class TemporalFitter:
    """Fits a body model to a whole clip; see the module docstring."""

    def __init__(
        self, body: AnnyBody | SmplxBody, config: FitConfig, device: torch.device, prior: VPoser | None = None
    ) -> None:
        """body: Anny or an SMPL-family model; prior: a VPoser-architecture pose prior over the 21
        canonical joints (frozen), or None."""
        self.body = body
        self.config = config
        self.device = device
        self.prior = prior.to(device).eval().requires_grad_(False) if prior is not None else None

    def _prior_term(self, body_pose: torch.Tensor) -> torch.Tensor:
        """SMPLify-X's VPoser term: ``w_prior`` times the mean squared latent norm of (T, 21, 3) poses."""
        if self.prior is None or self.config.w_prior <= 0:
            return body_pose.new_zeros(())
        z = self.prior.encode(body_pose.reshape(body_pose.shape[0], -1)).mean
        return self.config.w_prior * latent_norm_penalty(z)

    def fit(
        self, inputs: FitInputs, report: protocol.Reporter, is_cancelled: protocol.CancelCheck
    ) -> FitResult:
        cfg, dev = self.config, self.device
        t = inputs.kp2d.shape[0]
        tens = {  # observations on the device
            "kp2d": torch.as_tensor(inputs.kp2d, dtype=torch.float32, device=dev),
            "lifted": torch.as_tensor(inputs.lifted, dtype=torch.float32, device=dev),
            "K": torch.as_tensor(inputs.intrinsics, dtype=torch.float32, device=dev),
        }
        conf2d = np.where(inputs.conf2d >= cfg.min_confidence, inputs.conf2d, 0.0)
        conf2d_t = torch.as_tensor(conf2d, dtype=torch.float32, device=dev)
        conf3d_t = torch.as_tensor(inputs.conf3d, dtype=torch.float32, device=dev)
        no_arms = conf2d_t.clone()
        no_arms[:, _ARMS] = 0.0
        durations = np.diff(inputs.times) if t > 1 else np.ones(1)
        median = float(np.median(durations)) if t > 1 else 1.0
        dt = torch.as_tensor(
            np.clip(durations / max(median, 1e-6), 0.2, 5.0), dtype=torch.float32, device=dev
        )

        n_shape = _shape_size(self.body)
        rest0 = self.body.rest_state(_shape_values(self.body, torch.zeros(n_shape, device=dev)))
        zero_kp = self._zero_pose_keypoints(rest0)
        rot0, _ = initial_orientation(zero_kp, inputs.lifted, inputs.conf3d)
        tr0 = initial_translation(zero_kp, rot0, inputs.kp2d, conf2d, inputs.intrinsics)
        rot0_t = torch.as_tensor(rot0, dtype=torch.float32, device=dev)
        params = _Params(t, n_shape, torch.as_tensor(tr0, dtype=torch.float32)).to(dev)
        parts = None
        if isinstance(self.body, SmplxBody):
            obs = part_observations(inputs.hand2d, inputs.face2d, t, cfg.min_confidence, dev)
            parts = SmplxParts(self.body, cfg, obs, dev)
        capsules = self._capsules(rest0)
        mesh: list[MeshCollisionTerm] = []  # built when the collision stage starts (final shape)
        limits = _limit_rules(dev)
        scale = inputs.image_height / 1000.0

        def evaluate(stage: str, rest: RestState | None) -> tuple[torch.Tensor, dict[str, float]]:
            # "pose3d" settles the limbs on the 3D evidence alone, without temporal coupling
            # (which slows that first large move); later stages add 2D and smoothness.
            w2d, w3d = (0.0, 10.0 * cfg.w_3d) if stage == "pose3d" else (cfg.w_2d, cfg.w_3d)
            ws = 0.0 if stage == "pose3d" else 1.0
            if rest is None:
                rest = self.body.rest_state(_shape_values(self.body, params.shape_logits))
            orient = rot0_t @ roma.rotvec_to_rotmat(params.orient_delta)
            pose_m = roma.rotvec_to_rotmat(params.body_pose)
            part_terms: dict[str, torch.Tensor] = {}
            if parts is None:
                kp = self.body.keypoints_fast(orient, pose_m, params.transl, rest)
            else:
                kp, part_terms = parts.evaluate(
                    stage, orient, pose_m, params.transl, rest, tens["K"], scale, dt
                )
            proj = project(kp, tens["K"])
            rel = losses.root_relative(kp, _LHIP, _RHIP)
            c2d = no_arms if stage == "global" else conf2d_t
            terms = {
                "2d": w2d * losses.reprojection(proj, tens["kp2d"], c2d, cfg.gm_sigma_px, scale),
                "3d": w3d * losses.keypoints3d(rel, tens["lifted"], conf3d_t, cfg.sigma_3d),
                "smooth_joints": ws * cfg.w_smooth_joints * losses.smoothness(rel, dt),
                "smooth_transl": ws * cfg.w_smooth_transl * losses.smoothness(params.transl, dt),
                "smooth_rot": ws
                * cfg.w_smooth_rot
                * losses.smoothness(torch.cat([orient[:, None], pose_m], 1).flatten(1), dt),
                "pose": cfg.w_pose * losses.pose_l2(params.body_pose),
                # The global stage does not move the body pose: its prior term would be a constant.
                "prior": self._prior_term(params.body_pose) if stage != "global" else params.body_pose.new_zeros(()),
                "limits": cfg.w_limits * losses.hinge_limits(params.body_pose, *limits),
                "shape": cfg.w_shape * losses.shape_prior(params.shape_logits),
                **part_terms,
            }
            if capsules is not None and stage != "global":
                terms["collision"] = cfg.w_collision * capsules.penalty(kp)
            if stage == "collision" and mesh:

                def transforms(idx: torch.Tensor) -> torch.Tensor:
                    if parts is not None:
                        return parts.transforms(orient[idx], pose_m[idx], params.transl[idx], rest, idx)
                    deltas = self.body.native_deltas(orient[idx], pose_m[idx], params.transl[idx])
                    return self.body.bone_transforms(deltas, rest)

                terms["mesh_collision"] = cfg.w_mesh_collision * mesh[0].penalty(transforms)
            total = sum(terms.values())
            return total, terms

        stages = [
            ("global", [params.orient_delta, params.transl], cfg.iters_global, rest0),
            ("pose3d", [params.orient_delta, params.body_pose], cfg.iters_pose3d, rest0),
            ("body", [params.orient_delta, params.transl, params.body_pose], cfg.iters_body, rest0),
        ]
        extra = [] if parts is None else parts.all_parameters()
        if parts is not None:
            body_group = [params.orient_delta, params.transl, params.body_pose]
            stages += [(name, group, iters, rest0) for name, group, iters in parts.stages(body_group)]
        if cfg.fit_shape:
            stages.append(("all", list(params.parameters()) + extra, cfg.iters_all, None))
        else:
            stages.append(
                ("all", [params.orient_delta, params.transl, params.body_pose, *extra], cfg.iters_all, rest0)
            )
        if cfg.collision == "mesh" and cfg.w_mesh_collision > 0:
            stages.append(
                ("collision", [params.orient_delta, params.transl, params.body_pose, *extra], cfg.iters_collision, None)
            )
        total_iters = sum(s[2] for s in stages)
        stats: dict = {"stages": {}}
        warnings: list[str] = []
        done = 0
        start = time.perf_counter()
        last_report = 0.0
        for name, group, iters, rest in stages:
            if iters <= 0:
                continue
            if name == "collision":  # the shape is final: its rest state and mesh parts, once
                with torch.no_grad():
                    rest = self.body.rest_state(_shape_values(self.body, params.shape_logits))
                mesh[:] = [MeshCollisionTerm(self.body, rest, body_mesh_parts(self.body, rest), t)]
            history: list[float] = []
            terms: dict[str, torch.Tensor] = {}
            evals = 0
            lr = {"pose3d": cfg.lr_pose3d, "collision": cfg.lr_collision}.get(name, cfg.lr)
            optim = torch.optim.Adam(group, lr=lr)
            warmup = max(1, min(10, iters // 5))
            sched = torch.optim.lr_scheduler.LambdaLR(
                optim,
                lambda i, n=iters, w=warmup: (
                    min(1.0, (i + 1) / w) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / n)))
                ),
            )
            snapshot = [p.detach().clone() for p in group]
            for it in range(iters):
                if is_cancelled():
                    raise Cancelled()
                optim.zero_grad(set_to_none=True)
                loss, terms = evaluate(name, rest)
                evals += 1
                if not torch.isfinite(loss):
                    # NaN guard: roll back to the last good parameters and take smaller steps.
                    with torch.no_grad():
                        for p, s in zip(group, snapshot, strict=False):
                            p.copy_(s)
                    for g in optim.param_groups:
                        g["lr"] *= 0.5
                    continue
                loss.backward()
                optim.step()
                sched.step()
                history.append(float(loss.detach()))
                if it % 10 == 0:
                    log.debug("%s %d %s", name, it, _floats(terms, 2))
                if it % 10 == 9:
                    snapshot = [p.detach().clone() for p in group]
                    if len(history) > 30 and history[-11] - history[-1] < cfg.rel_tol * abs(history[-11]):
                        break
                now = time.perf_counter()
                if now - last_report > 0.25:
                    last_report = now
                    step = min(done + it + 1, total_iters)
                    report(
                        protocol.progress("fit", step, total_iters, t * step / total_iters / (now - start))
                    )
            if (
                not history
                or not math.isfinite(history[-1])
                or not all(torch.isfinite(p).all() for p in group)
            ):
                with torch.no_grad():
                    for p, s in zip(group, snapshot, strict=False):
                        p.copy_(s)
                warnings.append(
                    f"Fit stage '{name}' became numerically unstable; kept the previous stage's result."
                )
            done += iters
            stats["stages"][name] = {
                "evaluations": evals,
                "loss": history[-1] if history else None,
                "terms": _floats(terms, 6),
            }
            if name == "collision" and mesh:
                stats["stages"][name]["mesh"] = mesh[0].stats()
            log.info(
                "fit stage %s: %d evaluations, terms %s",
                name,
                evals,
                _floats(terms, 3),
            )
        report(protocol.progress("fit", total_iters, total_iters))
        return self._result(params, parts, rot0_t, tens["K"], stats, warnings)

    def _capsules(self, rest: RestState) -> KeypointCapsules | None:
        """The collision capsules of the starting shape, when ``config.collision`` asks for them."""
        mode = self.config.collision
        on = mode in ("on", "mesh") or (mode == "auto" and not isinstance(self.body, AnnyBody))
        if not on or self.config.w_collision <= 0:
            return None
        with torch.no_grad():
            eye = torch.eye(3, device=self.device)
            deltas = self.body.native_deltas(
                eye[None], eye.repeat(1, 21, 1, 1), torch.zeros(1, 3, device=self.device)
            )
            transforms = self.body.bone_transforms(deltas, rest)
            verts = self.body.vertices(transforms, rest)[0]
            kp = self.body.keypoints(transforms, rest)[0]
        return KeypointCapsules.build(kp, verts)

    def _zero_pose_keypoints(self, rest: RestState) -> np.ndarray:
        """(K, 3) keypoints at the zero pose, canonical axes, pelvis at the origin."""
        eye = torch.eye(3, device=self.device)
        kp = self.body.keypoints_fast(
            eye[None], eye.repeat(1, 21, 1, 1), torch.zeros(1, 3, device=self.device), rest
        )
        return kp[0].detach().cpu().double().numpy()

    @torch.no_grad()
    def _result(
        self,
        params: _Params,
        parts: SmplxParts | None,
        rot0: torch.Tensor,
        intrinsics: torch.Tensor,
        stats: dict,
        warnings: list[str],
    ) -> FitResult:
        pheno = _shape_values(self.body, params.shape_logits)
        rest = self.body.rest_state(pheno)
        orient = rot0 @ roma.rotvec_to_rotmat(params.orient_delta)
        pose_m = roma.rotvec_to_rotmat(params.body_pose)
        if parts is None:
            deltas = self.body.native_deltas(orient, pose_m, params.transl)
            part_arrays: dict[str, np.ndarray] = {}
        else:
            part_arrays = parts.result(orient, pose_m, params.transl, rest)
            hands = torch.as_tensor(
                np.stack([part_arrays["left_hand_pose"], part_arrays["right_hand_pose"]], 1)
            )
            hand_m = roma.rotvec_to_rotmat(hands.to(self.device))
            jaw_m = roma.rotvec_to_rotmat(torch.as_tensor(part_arrays["jaw_pose"], device=self.device))
            deltas = self.body.native_deltas(
                orient, pose_m, params.transl, left_hand=hand_m[:, 0], right_hand=hand_m[:, 1], jaw=jaw_m
            )
        kp = self.body.keypoints(self.body.bone_transforms(deltas, rest), rest)
        return FitResult(
            global_orient=roma.rotmat_to_rotvec(orient).cpu().numpy(),
            body_pose=params.body_pose.detach().cpu().numpy(),
            transl=params.transl.detach().cpu().numpy(),
            phenotypes=pheno.cpu().numpy(),
            keypoints3d=kp.cpu().numpy(),
            projected=project(kp, intrinsics).cpu().numpy(),
            native_pose=self.body.native_pose_rotvec(deltas),
            stats=stats,
            warnings=warnings,
            parts=part_arrays,
        )
