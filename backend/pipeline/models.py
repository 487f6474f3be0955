"""The learned models an estimate run uses (lifter, pose prior), loaded once up front."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from backend.body.factory import build_body
from backend.body.model import BodyModel
from backend.body.vposer import VPoser, load_vposer
from backend.config import LiftConfig
from backend.errors import BadInput
from backend.io.checkpoints import WEIGHTS_DIR
from backend.lift.base import Lifter
from backend.lift.fused import FusedLifter
from backend.lift.learned import LearnedLifter, load_default_lifter
from backend.lift.mediapipe_baseline import MediaPipeBaselineLifter
from backend.lift.videopose import TemporalLifter

log = logging.getLogger(__name__)

DEFAULT_PRIOR = WEIGHTS_DIR / "vposer_anny.pt"


@dataclass
class Models:
    """lifter: the temporal network, or None for the MediaPipe baseline; prior: None for L2 only."""

    lifter: TemporalLifter | None
    prior: VPoser | None


def load_prior(path: Path | None) -> VPoser:
    """Our prior or an official VPoser v2 checkpoint; errors name the file and the remedy."""
    path = Path(path) if path is not None else DEFAULT_PRIOR
    if not path.exists():
        raise BadInput(
            f"pose prior weights not found at {path}. The default ships with the package "
            "(backend/weights/vposer_anny.pt); reinstall it, pass --vposer FILE, or use --prior none."
        )
    prior = load_vposer(path)
    if prior.config.num_joints != 21:
        raise BadInput(f"{path} is a pose prior over {prior.config.num_joints} joints; the fit needs 21 body joints.")
    return prior


def load_models(config: LiftConfig) -> Models:
    """Load what `config` asks for. Raises BadInput for missing or unusable files."""
    lifter = None
    if config.method in ("videopose", "fused"):
        lifter = load_default_lifter(Path(config.weights) if config.weights else None)
    prior = None
    if config.prior == "vposer":
        prior = load_prior(Path(config.prior_weights) if config.prior_weights else None)
    return Models(lifter, prior)


def make_lifter(models: Models, image_wh: tuple[int, int], config: LiftConfig | None = None) -> Lifter:
    """The lift-stage implementation for a clip of size `image_wh`."""
    config = config or LiftConfig()
    if models.lifter is None:
        return MediaPipeBaselineLifter()
    learned = LearnedLifter(models.lifter, image_wh)
    if config.method == "fused":
        return FusedLifter(learned, MediaPipeBaselineLifter(), config.fusion_weight, config.agreement_m)
    return learned


@dataclass
class Loaded:
    """What a persistent worker keeps between clips (``pipeline/batch.py``): the learned models and the
    body models, by the settings that made them, so each is loaded once per process."""

    models: dict[LiftConfig, Models] = field(default_factory=dict)
    bodies: dict[tuple[str, str | None, str, str], BodyModel] = field(default_factory=dict)

    def models_for(self, config: LiftConfig) -> Models:
        if config not in self.models:
            self.models[config] = load_models(config)
        return self.models[config]

    def body_for(self, body: str, model_path: str | None, gender: str, device: torch.device) -> BodyModel:
        key = (body, model_path, gender, str(device))
        if key not in self.bodies:
            self.bodies[key] = build_body(body, model_path, gender, device)
        return self.bodies[key]

