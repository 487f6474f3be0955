"""The learned lifter: our temporal network over the detector's 2D keypoints (the default lifter).

The shipped checkpoint is ``backend/weights/lifter.pt`` (trained by ``python -m backend
train-lifter`` on synthetic Anny sequences; see ``backend.train.lifter``). Inputs are the fitter's
23 keypoints taken from MediaPipe's 33 landmarks; frames where the person was not detected enter
with confidence 0 (the network was trained with such dropouts and bridges them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from backend.detect.types import SubjectTrack
from backend.errors import BadInput
from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.io.checkpoints import WEIGHTS_DIR
from backend.lift.base import LiftResult
from backend.lift.checkpoints import load_lifter
from backend.lift.inputs import PRESENT_MIN, encode_inputs
from backend.lift.videopose import TemporalLifter, lift_sequence

log = logging.getLogger(__name__)

DEFAULT_LIFTER = WEIGHTS_DIR / "lifter.pt"
# Confidence of the lifted 3D evidence per frame: where the person was detected, the share of
# the detector's keypoints seen; bridged frames keep a low weight (the network's guess).
BRIDGED_CONFIDENCE = 0.2


def load_default_lifter(path: Path | None = None) -> TemporalLifter:
    """Load a lifter checkpoint (ours or official VideoPose3D), CPU, eval mode.

    Raises:
        BadInput: the file is missing, damaged, or was made for other keypoints.
    """
    path = Path(path) if path is not None else DEFAULT_LIFTER
    if not path.is_file():
        raise BadInput(
            f"lifter weights not found at {path}. They ship with the package (backend/weights/lifter.pt); "
            "reinstall it, train them with `python -m backend train-lifter`, or use `--lifter mediapipe`."
        )
    model, _, _ = load_lifter(path, in_features=3)
    n = len(KEYPOINT_NAMES)
    expected_in = n + 1 if model.config.input_norm == "person" else n
    if model.config.num_joints_in != expected_in or model.config.num_joints_out != n:
        raise BadInput(
            f"{path} is a lifter for {model.config.num_joints_in} input / {model.config.num_joints_out} output "
            f"keypoints; the estimate pipeline needs one trained on its {n} keypoints "
            "(`python -m backend train-lifter`)."
        )
    return model


class LearnedLifter:
    """Temporal lifting of one subject's 2D track with a `TemporalLifter`."""

    name = "videopose"

    def __init__(self, model: TemporalLifter, image_wh: tuple[int, int], device: torch.device | None = None):
        self.model = model.to(device) if device is not None else model
        self.image_wh = image_wh

    def lift(self, track: SubjectTrack) -> LiftResult:
        """Root-relative 3D keypoints (T, K, 3) for `track`, camera axes, metres."""
        keypoints = track.body_keypoints()
        kp, has = keypoints.image, keypoints.present  # (T, K, 3)
        conf = kp[..., 2].copy()
        conf[:, ~has] = 0.0
        conf[~track.valid] = 0.0
        wh = torch.tensor([self.image_wh], dtype=torch.float32)
        cfg = self.model.config
        feats = encode_inputs(
            torch.as_tensor(kp[None, ..., :2]), torch.as_tensor(conf[None]), wh, cfg.input_norm, cfg.in_features
        )[0]
        out = lift_sequence(self.model, feats.numpy())
        seen = (conf >= PRESENT_MIN).sum(1) / max(int(has.sum()), 1)
        frame_conf = np.where(track.valid, np.clip(seen, 0.0, 1.0), BRIDGED_CONFIDENCE).astype(np.float32)
        conf3d = np.repeat(frame_conf[:, None], len(KEYPOINT_NAMES), 1)
        return LiftResult(out.astype(np.float32), conf3d, self.name)
