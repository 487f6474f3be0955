"""VideoPose3D-style temporal lifter: dilated 1D convolutions over a 2D keypoint sequence.

Architecture of Pavllo et al., "3D human pose estimation in video with temporal convolutions and
semi-supervised training" (CVPR 2019): an expansion convolution over the flattened joints, then
residual blocks, each a dilated temporal convolution followed by a 1x1 convolution (batch norm,
ReLU and dropout after each), then a 1x1 convolution to ``3 * num_joints_out`` values per frame.

Parameter names follow the official ``TemporalModel`` (``expand_conv``, ``expand_bn``,
``layers_conv.N``, ``layers_bn.N``, ``shrink``), so the official checkpoints' ``model_pos`` and
``model_traj`` state dicts load unchanged (see ``backend.lift.checkpoints``).

Frame alignment of an input window of ``R = receptive_field()`` frames to its single output:
symmetric (default) -> the window's centre frame; causal -> the window's last frame, so the
output at frame t depends only on inputs at frames <= t.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from backend.lift.inputs import INPUT_NORMS

log = logging.getLogger(__name__)

__all__ = [
    "TemporalLifterConfig",
    "TemporalLifter",
    "TrajectoryModel",
    "lift_sequence",
]


@dataclass(frozen=True, kw_only=True)
class TemporalLifterConfig:
    """Hyper-parameters of a temporal lifter (all stored in our checkpoints).

    ``filter_widths``: (3, 3, 3) -> 27 frames, (3, 3, 3, 3) -> 81, (3, 3, 3, 3, 3) -> 243.
    """

    num_joints_in: int
    num_joints_out: int
    in_features: int = 2
    """2 for (x, y); 3 for (x, y, confidence)."""
    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
    causal: bool = False
    dropout: float = 0.25
    channels: int = 1024
    input_norm: str = "screen"
    """How 2D keypoints are encoded (``backend.lift.inputs``): "screen" (official) or "person"."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "filter_widths", tuple(int(w) for w in self.filter_widths))
        if not self.filter_widths:
            raise ValueError("filter_widths must name at least one convolution width")
        if any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise ValueError(f"filter widths must be odd and positive, got {self.filter_widths}")
        for name in ("num_joints_in", "num_joints_out", "in_features", "channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    @property
    def receptive_field(self) -> int:
        """Input frames needed for one output frame: the product of the filter widths."""
        return math.prod(self.filter_widths)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (tuples become lists) for checkpoints and logs."""
        d = dataclasses.asdict(self)
        d["filter_widths"] = list(self.filter_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemporalLifterConfig:
        """Inverse of ``to_dict``; unknown keys raise TypeError."""
        return cls(**d)


class TemporalLifter(nn.Module):
    """Temporal convolutional lifter, 2D keypoint sequence -> root-relative 3D keypoints.

    ``forward``: (B, T, J_in, C_in) -> (B, T - R + 1, J_out, 3) with R = ``receptive_field()``;
    output frame i belongs to input frame ``i + shift`` with ``shift = output_shift()``.
    """

    def __init__(self, config: TemporalLifterConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.filter_widths
        ch = config.channels
        self.expand_conv = nn.Conv1d(config.num_joints_in * config.in_features, ch, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(ch, momentum=0.1)
        convs: list[nn.Module] = []
        norms: list[nn.Module] = []
        pads: list[int] = []
        dilation = widths[0]
        for width in widths[1:]:
            pads.append((width - 1) * dilation // 2)
            convs.append(nn.Conv1d(ch, ch, width, dilation=dilation, bias=False))
            norms.append(nn.BatchNorm1d(ch, momentum=0.1))
            convs.append(nn.Conv1d(ch, ch, 1, bias=False))
            norms.append(nn.BatchNorm1d(ch, momentum=0.1))
            dilation *= width
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(norms)
        self.shrink = nn.Conv1d(ch, config.num_joints_out * 3, 1)
        self.drop = nn.Dropout(config.dropout)
        self._block_pads: tuple[int, ...] = tuple(pads)

    def receptive_field(self) -> int:
        """Input frames per output frame."""
        return self.config.receptive_field

    def output_shift(self) -> int:
        """Offset of an output frame's own input frame within its window: (R - 1) / 2, or R - 1 if causal."""
        r = self.receptive_field()
        return r - 1 if self.config.causal else (r - 1) // 2

    def set_bn_momentum(self, momentum: float) -> None:
        """Set every batch norm's momentum (the official training schedule decays it)."""
        for bn in (self.expand_bn, *self.layers_bn):
            bn.momentum = momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Lift a batch of keypoint windows.

        Args:
            x: (B, T, J_in, C_in) normalised 2D keypoints (and confidences), T >= receptive field.
        Returns:
            (B, T - R + 1, J_out, 3) root-relative 3D keypoints.
        """
        cfg = self.config
        if x.ndim != 4 or x.shape[2] != cfg.num_joints_in or x.shape[3] != cfg.in_features:
            raise ValueError(
                f"expected input (B, T, {cfg.num_joints_in}, {cfg.in_features}), got {tuple(x.shape)}"
            )
        if x.shape[1] < self.receptive_field():
            raise ValueError(f"need at least {self.receptive_field()} frames, got {x.shape[1]}")
        b, t = x.shape[:2]
        h = x.reshape(b, t, -1).transpose(1, 2)  # (B, J_in * C_in, T)
        h = self.drop(F.relu(self.expand_bn(self.expand_conv(h))))
        for i, pad in enumerate(self._block_pads):
            # The dilated convolution shortens the sequence by 2 * pad; the residual keeps the frames
            # it is aligned to: the centre ones, or the latest ones when causal.
            start = 2 * pad if cfg.causal else pad
            res = h[:, :, start : h.shape[2] - 2 * pad + start]
            h = self.drop(F.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](h))))
            h = res + self.drop(F.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](h))))
        out = self.shrink(h)  # (B, J_out * 3, T')
        return out.transpose(1, 2).reshape(b, -1, cfg.num_joints_out, 3)


class TrajectoryModel(TemporalLifter):
    """The same network with one output "joint": the root position in the camera frame.

    ``forward``: (B, T, J_in, C_in) -> (B, T - R + 1, 1, 3). Stored as ``model_traj`` in the
    official checkpoints.
    """

    def __init__(self, config: TemporalLifterConfig) -> None:
        if config.num_joints_out != 1:
            raise ValueError(f"a trajectory model has one output joint, config says {config.num_joints_out}")
        super().__init__(config)

    @classmethod
    def for_lifter(cls, config: TemporalLifterConfig) -> TrajectoryModel:
        """A trajectory model with the backbone hyper-parameters of a pose lifter's config."""
        return cls(dataclasses.replace(config, num_joints_out=1))


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@overload
def lift_sequence(
    model: TemporalLifter, keypoints2d: np.ndarray, chunk_size: int = ..., max_batch: int = ...
) -> np.ndarray: ...
@overload
def lift_sequence(
    model: TemporalLifter, keypoints2d: torch.Tensor, chunk_size: int = ..., max_batch: int = ...
) -> torch.Tensor: ...
def lift_sequence(
    model: TemporalLifter,
    keypoints2d: np.ndarray | torch.Tensor,
    chunk_size: int = 1024,
    max_batch: int = 8,
) -> np.ndarray | torch.Tensor:
    """Lift a whole sequence so that every input frame gets an output, in eval mode without grad.

    The sequence is padded by replicating its first and last frames ((R - 1) / 2 frames on each
    side, or R - 1 before it when causal), cut into overlapping windows of ``chunk_size`` output
    frames and run as batches of at most ``max_batch`` windows (memory stays bounded; the result
    equals a single pass over the padded sequence).

    Args:
        model: a ``TemporalLifter`` or ``TrajectoryModel``.
        keypoints2d: (T, J_in, C_in) numpy array or tensor.
    Returns:
        (T, J_out, 3): a float32 numpy array for numpy input, otherwise a tensor on the model's device.
    """
    if chunk_size < 1 or max_batch < 1:
        raise ValueError("chunk_size and max_batch must be positive")
    as_numpy = isinstance(keypoints2d, np.ndarray)
    x = torch.as_tensor(keypoints2d, dtype=torch.float32, device=_model_device(model))
    if x.ndim != 3:
        raise ValueError(f"expected keypoints (T, J, C), got shape {tuple(x.shape)}")
    t = x.shape[0]
    if t == 0:
        out = x.new_zeros((0, model.config.num_joints_out, 3))
        return out.cpu().numpy() if as_numpy else out
    r = model.receptive_field()
    before = model.output_shift()
    chunk = min(chunk_size, t)
    n_chunks = -(-t // chunk)
    after = (r - 1 - before) + n_chunks * chunk - t  # the last chunk is filled with the last frame
    padded = torch.cat([x[:1].expand(before, -1, -1), x, x[-1:].expand(after, -1, -1)])
    windows = padded.unfold(0, chunk + r - 1, chunk).permute(0, 3, 1, 2)  # (n_chunks, chunk + R - 1, J, C)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [model(windows[i : i + max_batch]) for i in range(0, n_chunks, max_batch)]
    finally:
        model.train(was_training)
    out = torch.cat(parts).reshape(n_chunks * chunk, model.config.num_joints_out, 3)[:t]
    return out.cpu().numpy() if as_numpy else out
