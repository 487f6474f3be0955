"""Staged temporal fit of a body model to 2D detections and lifted 3D keypoints.

One shape for the clip (the model's shape parameters: Anny's phenotypes through a sigmoid, or betas);
per frame a global orientation, 21 canonical joint rotations and the pelvis translation in the
camera frame. All frames are optimised together (batched). The pieces:

- ``init``: closed-form start (orientation by Kabsch on the torso, translation by least squares);
- ``objective``: the terms and their weights; ``schedule``: the annealed stages;
- ``runner``: one stage's optimiser, stopping, NaN rollback, progress and cancel;
- this module: builds them for a clip, runs the stages, and reads out the result.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import roma
import torch

from backend import protocol, threads
from backend.body.model import BodyModel, CanonicalPose
from backend.body.vposer import VPoser
from backend.config import FitConfig
from backend.fit.capsules import KeypointCapsules
from backend.fit.contacts import (
    FootContacts,
    GroundParams,
    contact_probabilities,
    image_speeds,
    initial_ground,
    static_points,
)
from backend.fit.data import FitInputs, FitParams, FitResult, Shared
from backend.fit.init import initial_orientation, initial_translation
from backend.fit.mesh_parts import body_mesh_parts
from backend.fit.mesh_term import MeshCollisionTerm
from backend.fit.objective import Objective, observe
from backend.fit.runner import StageOutcome, run_stage
from backend.fit.schedule import Stage, build_schedule
from backend.fit.smplx_terms import SmplxParts, part_observations
from backend.geometry.camera import project
from backend.geometry.frames import FOOT_POINTS, torso_up

log = logging.getLogger(__name__)

__all__ = ["FitInputs", "FitResult", "TemporalFitter"]
PROGRESS_EVERY_S = 0.25
"""Least time between two progress events of the fit."""
FOOT_RADIUS_M = 0.12
"""Vertices within this horizontal distance of a foot point count as its foot (rest heights)."""
FOOT_SEEN_CONF = 0.3
"""A foot point detected with less confidence than this (e.g. out of frame) gets no contact."""


def _floats(terms: dict[str, torch.Tensor], digits: int) -> dict[str, float]:
    """Loss terms as rounded floats, for logs and stats (one device sync, only when asked)."""
    return {k: round(float(v.detach()), digits) for k, v in terms.items()}


class _Progress:
    """Throttled ``progress`` events over all stages of a fit of ``frames`` frames."""

    def __init__(self, report: protocol.Reporter, frames: int, total: int) -> None:
        self.report, self.frames, self.total = report, frames, total
        self.done, self.start, self.last = 0, time.perf_counter(), 0.0

    def step(self, it: int) -> None:
        now = time.perf_counter()
        if now - self.last > PROGRESS_EVERY_S:
            self.last = now
            step = min(self.done + it + 1, self.total)
            self.report(
                protocol.progress(
                    "fit", step, self.total, self.frames * step / self.total / (now - self.start)
                )
            )


def _seen_speeds(inputs: FitInputs, depth: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(T, 4) the foot points' speeds (m/s) from their detections (``contacts.image_speeds``) at the fit's
    ``depth`` (T, 4); NaN unless ``seen`` (T, 4) in the frame and both its neighbours."""
    pixels = np.asarray(inputs.kp2d, np.float64)[:, list(FOOT_POINTS)]
    speed = image_speeds(pixels, depth, inputs.intrinsics, inputs.camera_rotations, inputs.times)
    padded = np.pad(seen, ((1, 1), (0, 0)))
    speed[~(seen & padded[:-2] & padded[2:])] = np.nan
    return speed


class TemporalFitter:
    """Fits a body model to a whole clip; see the module docstring."""

    def __init__(
        self, body: BodyModel, config: FitConfig, device: torch.device, prior: VPoser | None = None
    ) -> None:
        """body: any :class:`BodyModel`; prior: a VPoser-architecture pose prior over the 21 canonical
        joints (frozen), or None."""
        self.body = body
        self.config = config
        self.device = device
        self.prior = prior.to(device).eval().requires_grad_(False) if prior is not None else None

    def fit(
        self, inputs: FitInputs, report: protocol.Reporter, is_cancelled: protocol.CancelCheck,
        shared: Shared | None = None,
    ) -> FitResult:  # fmt: skip
        """Fit the clip; ``shared`` starts the shape there (kept with ``schedule.fit_shape`` False) and
        keeps its ground: the windows of a long clip share one body and one floor."""
        cfg, body = self.config, self.body
        t = inputs.kp2d.shape[0]
        obs = observe(inputs, cfg.weights, self.device)
        logits0 = torch.zeros(body.shape_size, device=self.device)
        if shared is not None:
            logits0 = torch.as_tensor(shared.shape_logits, dtype=torch.float32, device=self.device)
        rest0 = body.rest_state(body.shape_from_params(logits0))
        conf2d = np.where(inputs.conf2d >= cfg.weights.min_confidence, inputs.conf2d, 0.0)
        rot0, params = self._initialise(inputs, conf2d, rest0)
        with torch.no_grad():
            params.shape_logits.copy_(logits0)
        parts = None
        if body.has_hands or body.has_face:
            found = part_observations(
                inputs.hand2d, inputs.face2d, t, cfg.weights.min_confidence, self.device
            )
            parts = SmplxParts(body, cfg, found, self.device)
        objective = Objective(body, cfg.weights, obs, self.prior, parts, self._capsules(rest0))
        ground = GroundParams(np.array([0.0, -1.0, 0.0]), 0.0).to(self.device)  # set when its stage starts
        stages = build_schedule(
            params, parts.stages(params.motion()) if parts else [], parts.all_parameters() if parts else [], cfg,
            list(ground.parameters()),
        )  # fmt: skip
        progress = _Progress(report, t, sum(stage.iters for stage in stages))
        stats: dict = {"stages": {}}
        warnings: list[str] = []
        governor = threads.Governor() if self.device.type == "cpu" else None

        def on_step(it: int) -> None:
            progress.step(it)
            if governor is not None:  # fewer threads while other processes want the cores
                governor.poll()

        for stage in stages:
            rest = self._stage_rest(stage, rest0, params, objective, t)
            if stage.terms.contacts and objective.feet is None:
                self._plant_feet(inputs, params, rot0, rest, objective, ground)
                if shared is not None and shared.ground is not None:  # the clip's floor, kept
                    ground.reset(*shared.ground)
                    ground.requires_grad_(False)
            outcome = run_stage(
                stage.params, stage.iters, stage.lr, lambda s=stage, r=rest: objective(s, params, r, rot0),
                cfg.schedule.rel_tol, on_step, is_cancelled,
            )  # fmt: skip
            progress.done += stage.iters
            if outcome.unstable:
                warnings.append(
                    f"Fit stage '{stage.name}' became numerically unstable; kept the previous stage's result."
                )
            stats["stages"][stage.name] = self._stage_stats(stage, outcome, objective)
        report(protocol.progress("fit", progress.total, progress.total))
        result = self._result(params, parts, rot0, obs.intrinsics, stats, warnings)
        if objective.feet is not None:
            result.ground = (
                ground.normal().detach().cpu().numpy().astype(np.float64),
                float(ground.offset().detach()),
            )
            result.contacts = objective.feet.contact.cpu().numpy()
        return result

    @torch.no_grad()
    def _plant_feet(self, inputs: FitInputs, params: FitParams, rot0: torch.Tensor, rest: Any,
                    objective: Objective, ground: GroundParams) -> None:  # fmt: skip
        """Before the contact stage: the ground under the fit so far, and where its feet touch it."""
        t = inputs.kp2d.shape[0]
        rotations = None
        if inputs.camera_rotations is not None:
            rotations = torch.as_tensor(inputs.camera_rotations, dtype=torch.float32, device=self.device)
        camera_kp = self.body.keypoints_fast(params.pose(rot0), rest)
        kp = static_points(camera_kp, rotations).cpu().double().numpy()
        rest_height = self._rest_heights(rest)
        valid = np.ones(t, bool) if inputs.valid is None else np.asarray(inputs.valid, bool)
        up = torso_up(kp, valid)
        soles = kp[:, list(FOOT_POINTS)] - up * rest_height[None, :, None]
        feet_seen = np.asarray(inputs.conf2d)[:, list(FOOT_POINTS)] >= FOOT_SEEN_CONF
        depth = camera_kp[:, list(FOOT_POINTS), 2].cpu().double().numpy()
        contact = contact_probabilities(
            soles, up, inputs.times, valid, _seen_speeds(inputs, depth, feet_seen & valid[:, None])
        )
        contact *= feet_seen | ~valid[:, None]  # a foot out of frame is not held (missed frames stay bridged)
        normal, offset = initial_ground(soles, contact, up, valid)
        ground.reset(normal, offset)
        objective.feet = FootContacts(
            torch.as_tensor(contact, device=self.device), torch.as_tensor(rest_height, dtype=torch.float32,
            device=self.device), rotations, torch.as_tensor(valid, dtype=torch.float32, device=self.device),
        )  # fmt: skip
        objective.ground = ground
        log.info("contacts: %.0f%% of foot-point frames; ground normal %s", 100 * float(contact.mean()),
                 np.round(normal, 3).tolist())  # fmt: skip
        log.debug("sole heights (cm) p5/p50/p95: %s; rest heights %s",
                  np.round(np.percentile(soles @ normal + offset, [5, 50, 95]) * 100, 1).tolist(),
                  np.round(rest_height, 3).tolist())  # fmt: skip

    def _rest_heights(self, rest: Any) -> np.ndarray:
        """(4,) each foot point's height above the sole at the canonical rest pose (y up there)."""
        out = self.body.forward(CanonicalPose.rest(1, self.device), rest, vertices=True)
        verts, kp = out.vertices[0].cpu().double().numpy(), out.keypoints[0].cpu().double().numpy()
        heights = []
        for k in FOOT_POINTS:
            near = np.linalg.norm((verts - kp[k])[:, [0, 2]], axis=1) < FOOT_RADIUS_M
            heights.append(kp[k, 1] - verts[near, 1].min() if near.any() else 0.0)
        return np.clip(np.array(heights), 0.0, 0.2)

    def _initialise(self, inputs: FitInputs, conf2d: np.ndarray, rest: Any) -> tuple[torch.Tensor, FitParams]:
        """Closed-form start: per-frame orientation (Kabsch on the torso) and translation."""
        with torch.no_grad():
            zero_kp = (
                self.body.keypoints_fast(CanonicalPose.rest(1, self.device), rest)[0].cpu().double().numpy()
            )
        rot0, _ = initial_orientation(zero_kp, inputs.lifted, inputs.conf3d)
        tr0 = initial_translation(zero_kp, rot0, inputs.kp2d, conf2d, inputs.intrinsics)
        params = FitParams(
            inputs.kp2d.shape[0], self.body.shape_size, torch.as_tensor(tr0, dtype=torch.float32)
        )
        return torch.as_tensor(rot0, dtype=torch.float32, device=self.device), params.to(self.device)

    def _stage_rest(self, stage: Stage, rest0: Any, params: FitParams, objective: Objective, t: int) -> Any:
        """The stage's rest state (None: recomputed from the current shape at every evaluation); the
        mesh term is built on the final shape when its stage starts."""
        if stage.rest == "initial":
            return rest0
        if stage.rest == "live":
            return None
        with torch.no_grad():
            rest = self.body.rest_state(self.body.shape_from_params(params.shape_logits))
        if stage.terms.mesh:
            collision = self.config.collision
            term = MeshCollisionTerm(self.body, rest, body_mesh_parts(self.body, rest), t, collision)
            objective.mesh = (term, collision.w_mesh)
        return rest

    @staticmethod
    def _stage_stats(stage: Stage, outcome: StageOutcome, objective: Objective) -> dict:
        entry = {"evaluations": outcome.evaluations, "loss": outcome.loss, "terms": _floats(outcome.terms, 6)}
        if stage.terms.mesh and objective.mesh is not None:
            entry["mesh"] = objective.mesh[0].stats()
        log.info(
            "fit stage %s: %d evaluations, terms %s",
            stage.name,
            outcome.evaluations,
            _floats(outcome.terms, 3),
        )
        return entry

    def _capsules(self, rest: Any) -> tuple[KeypointCapsules, float] | None:
        """The collision capsules of the starting shape and their weight, when collisions are on."""
        collision = self.config.collision
        mode = self.body.default_collision if collision.mode == "auto" else collision.mode
        if mode not in ("on", "mesh") or collision.w_capsules <= 0:
            return None
        with torch.no_grad():
            out = self.body.forward(CanonicalPose.rest(1, self.device), rest, vertices=True)
        return KeypointCapsules.build(out.keypoints[0], out.vertices[0], collision), collision.w_capsules

    @torch.no_grad()
    def _result(
        self, params: FitParams, parts: SmplxParts | None, rot0: torch.Tensor, intrinsics: torch.Tensor,
        stats: dict, warnings: list[str],
    ) -> FitResult:  # fmt: skip
        shape = self.body.shape_from_params(params.shape_logits)
        rest = self.body.rest_state(shape)
        pose = params.pose(rot0)
        part_arrays: dict[str, np.ndarray] = {} if parts is None else parts.result(pose, rest)
        if parts is not None:
            pose = parts.with_parts(pose)
        out = self.body.forward(pose, rest)
        return FitResult(
            global_orient=roma.rotmat_to_rotvec(pose.global_orient).cpu().numpy(),
            body_pose=params.body_pose.detach().cpu().numpy(),
            transl=params.transl.detach().cpu().numpy(),
            phenotypes=shape.cpu().numpy(),
            shape_logits=params.shape_logits.detach().cpu().numpy(),
            keypoints3d=out.keypoints.cpu().numpy(),
            projected=project(out.keypoints, intrinsics).cpu().numpy(),
            native_pose=self.body.native_pose_rotvec(out.deltas),
            stats=stats,
            warnings=warnings,
            parts=part_arrays,
        )
