"""The fit's annealed schedule: which parameters each stage moves, how long, and how it weighs terms.

1. ``global``: orientation and translation on the torso (2D arms ignored; no prior, no collision).
2. ``pose3d``: orientation and body pose led by the 3D evidence alone (no 2D, no smoothness): joints
   may have to turn far from the start pose, each frame on its own.
3. ``body``: orientation, translation and pose on everything. From here on the 3D evidence is first
   turned onto the body by one rotation per clip (``StageTerms.align_3d``): the 2D decides how the body
   leans towards the camera, the 3D evidence the pose.
4. ``hands``, ``face``: the SMPL family's parts (``parts.stages``), with the body.
5. ``all``: everything, the shape included.
6. ``contact``: feet planted where they touch the ground (contacts estimated from the fit so far) and
   one ground plane fitted with the body (final shape).
7. ``collision`` (``collision.mode == "mesh"``): the mesh self-collision term, small steps, final shape
   (the contact terms stay on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from backend.config import FitConfig
from backend.fit.data import FitParams


@dataclass(frozen=True)
class StageTerms:
    """How a stage weighs the objective's terms (factors on ``FitWeights``; switches)."""

    scale_2d: float = 1.0
    scale_3d: float = 1.0
    scale_smooth: float = 1.0
    arms_2d: bool = True
    """False: the 2D term ignores elbows and wrists (the torso alone sets the orientation)."""
    align_3d: bool = True
    """The 3D evidence is rotated onto the body first (``FitWeights.align_3d``); False: as it is."""
    prior: bool = True
    capsules: bool = True
    mesh: bool = False
    contacts: bool = False


@dataclass(frozen=True)
class Stage:
    name: str
    params: list[torch.nn.Parameter]
    iters: int
    lr: float
    terms: StageTerms
    rest: Literal["initial", "live", "final"]
    """Rest state: of the initial shape; recomputed from the current shape at every evaluation; or
    computed once from the fitted shape when the stage starts."""


def build_schedule(params: FitParams, part_stages: list[Stage], part_params: list[torch.nn.Parameter],
                   config: FitConfig, ground: list[torch.nn.Parameter]) -> list[Stage]:  # fmt: skip
    """The stages of one fit (see the module doc), those with no iterations left out."""
    s, w, col = config.schedule, config.weights, config.collision
    motion = params.motion()
    stages = [
        Stage("global", [params.orient_delta, params.transl], s.iters_global, s.lr,
              StageTerms(arms_2d=False, prior=False, capsules=False, align_3d=False), "initial"),
        Stage("pose3d", [params.orient_delta, params.body_pose], s.iters_pose3d, s.lr_pose3d,
              StageTerms(scale_2d=0.0, scale_3d=w.pose3d_boost, scale_smooth=0.0, align_3d=False), "initial"),
        Stage("body", motion, s.iters_body, s.lr, StageTerms(), "initial"),
        *part_stages,
    ]  # fmt: skip
    if s.fit_shape:
        stages.append(
            Stage("all", list(params.parameters()) + part_params, s.iters_all, s.lr, StageTerms(), "live")
        )
    else:
        stages.append(Stage("all", motion + part_params, s.iters_all, s.lr, StageTerms(), "initial"))
    feet = s.iters_contact > 0 and bool(ground)
    if feet:
        terms = StageTerms(contacts=True)
        stages.append(Stage("contact", motion + part_params + ground, s.iters_contact, s.lr, terms, "final"))
    if col.mode == "mesh" and col.w_mesh > 0:
        terms = StageTerms(mesh=True, contacts=feet)
        stages.append(Stage("collision", motion + part_params, col.iters_mesh, col.lr_mesh, terms, "final"))
    return [stage for stage in stages if stage.iters > 0]
