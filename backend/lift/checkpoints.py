"""Lifter checkpoints: the official VideoPose3D format and our own ``video2anim.lifter`` format.

Official VideoPose3D (``run.py``): ``torch.save`` of a dict with ``model_pos`` (a
``TemporalModel`` state dict), optionally ``model_traj`` (state dict or None), ``epoch``, ``lr``,
``optimizer``, ``random_state`` (a numpy RandomState tuple), ``random_state_semi``. Its state dict
has ``expand_conv.weight`` (C, J_in * F, w0), ``expand_bn.*``, ``layers_conv.{2i}.weight``
(C, C, w_i), ``layers_conv.{2i+1}.weight`` (C, C, 1), ``layers_bn.N.*`` and ``shrink.weight``
(3 * J_out, C, 1), ``shrink.bias``. Causality and the J_in / F split are not recorded: the caller
says them.

Files are read with ``backend.io.checkpoints.safe_torch_load``: a checkpoint cannot run code when
loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.errors import BadInput
from backend.io.checkpoints import TrainingMetadata, safe_torch_load, save_checkpoint
from backend.lift.videopose import TemporalLifter, TemporalLifterConfig, TrajectoryModel

log = logging.getLogger(__name__)

LIFTER_FORMAT = "video2anim.lifter"
LIFTER_VERSION = 1
_VP_EXPECTED = "a VideoPose3D checkpoint (a torch.save dict with a 'model_pos' state dict)"
_OWN_EXPECTED = f"a '{LIFTER_FORMAT}' checkpoint (version {LIFTER_VERSION})"


@dataclass(frozen=True)
class LifterCheckpointInfo:
    """What a loaded lifter checkpoint said about itself."""

    path: Path
    source: str
    """Either "videopose3d" (official) or "video2anim.lifter"."""
    config: TemporalLifterConfig
    epoch: int | None = None
    lr: float | None = None
    training: TrainingMetadata | None = None


def _strip_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return dict(state)


def infer_videopose_config(
    state: Mapping[str, Any], *, in_features: int = 2, causal: bool = False, dropout: float = 0.25
) -> TemporalLifterConfig:
    """A config that fits an official ``TemporalModel`` state dict, read off its tensor shapes.

    Raises:
        ValueError: the dict does not have the official layout.
    """
    try:
        expand = state["expand_conv.weight"]
        shrink = state["shrink.weight"]
    except KeyError as exc:
        raise ValueError(f"missing {exc.args[0]!r}") from exc
    if expand.ndim != 3 or shrink.ndim != 3 or shrink.shape[0] % 3 != 0:
        raise ValueError("expand_conv / shrink weights have unexpected shapes")
    channels, flat_in, width0 = (int(s) for s in expand.shape)
    if flat_in % in_features != 0:
        raise ValueError(f"expand_conv takes {flat_in} inputs, not a multiple of in_features={in_features}")
    widths = [width0]
    while f"layers_conv.{2 * (len(widths) - 1)}.weight" in state:
        widths.append(int(state[f"layers_conv.{2 * (len(widths) - 1)}.weight"].shape[-1]))
    return TemporalLifterConfig(
        num_joints_in=flat_in // in_features,
        num_joints_out=int(shrink.shape[0]) // 3,
        in_features=in_features,
        filter_widths=tuple(widths),
        causal=causal,
        dropout=dropout,
        channels=channels,
    )


def _build(
    cls: type[TemporalLifter], config: TemporalLifterConfig, state: Mapping[str, Any]
) -> TemporalLifter:
    model = cls(config)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def load_videopose_checkpoint(
    path: str | Path, *, in_features: int = 2, causal: bool = False, dropout: float = 0.25
) -> tuple[TemporalLifter, TrajectoryModel | None, LifterCheckpointInfo]:
    """Load an official VideoPose3D checkpoint (e.g. ``pretrained_h36m_detectron_coco.bin``).

    Filter widths, channels and joint counts come from the tensor shapes. The file does not say
    whether the model was trained causal (``--causal``) nor how the flattened input splits into
    joints x features, so ``causal`` and ``in_features`` must match how it was trained.

    Returns:
        (pose model, trajectory model or None, info), both models in eval mode on CPU.
    Raises:
        BadInput: naming the file and what was expected.
    """
    path = Path(path)
    return _from_videopose(path, safe_torch_load(path, _VP_EXPECTED), in_features, causal, dropout)


def _from_videopose(
    path: Path, ckpt: Any, in_features: int, causal: bool, dropout: float
) -> tuple[TemporalLifter, TrajectoryModel | None, LifterCheckpointInfo]:
    expected = _VP_EXPECTED
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("model_pos"), Mapping):
        raise BadInput(f"{path} is not {expected}.")
    try:
        pos_state = _strip_prefix(ckpt["model_pos"], "module.")
        config = infer_videopose_config(pos_state, in_features=in_features, causal=causal, dropout=dropout)
        lifter = _build(TemporalLifter, config, pos_state)
        traj = None
        if isinstance(ckpt.get("model_traj"), Mapping):
            traj_state = _strip_prefix(ckpt["model_traj"], "module.")
            traj_config = infer_videopose_config(
                traj_state, in_features=in_features, causal=causal, dropout=dropout
            )
            if traj_config.num_joints_out != 1:
                raise ValueError(f"model_traj outputs {traj_config.num_joints_out} joints, expected 1")
            traj = _build(TrajectoryModel, traj_config, traj_state)
    except (ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise BadInput(f"{path} does not hold a VideoPose3D temporal model as expected: {exc}") from exc
    info = LifterCheckpointInfo(
        path=path,
        source="videopose3d",
        config=config,
        epoch=_optional(ckpt.get("epoch"), int),
        lr=_optional(ckpt.get("lr"), float),
    )
    log.info(
        "Loaded VideoPose3D checkpoint %s: receptive field %d, %d -> %d joints, trajectory model: %s",
        path,
        config.receptive_field,
        config.num_joints_in,
        config.num_joints_out,
        traj is not None,
    )
    return lifter, traj, info


def _optional(value: Any, kind: type) -> Any:
    return kind(value) if isinstance(value, int | float) else None


def save_lifter_checkpoint(
    path: str | Path,
    lifter: TemporalLifter,
    trajectory: TrajectoryModel | None = None,
    training: TrainingMetadata | None = None,
) -> Path:
    """Write our own format atomically: format, version, config, state dicts and training metadata."""
    path = Path(path)
    training = training or TrainingMetadata()
    payload = {
        "format": LIFTER_FORMAT,
        "version": LIFTER_VERSION,
        "config": lifter.config.to_dict(),
        "model_pos": lifter.state_dict(),
        "traj_config": trajectory.config.to_dict() if trajectory is not None else None,
        "model_traj": trajectory.state_dict() if trajectory is not None else None,
        "training": training.to_dict(),
    }
    return save_checkpoint(path, payload)


def load_lifter_checkpoint(
    path: str | Path,
) -> tuple[TemporalLifter, TrajectoryModel | None, LifterCheckpointInfo]:
    """Load a checkpoint written by ``save_lifter_checkpoint`` (models in eval mode on CPU).

    Raises:
        BadInput: not our format, an unknown version, or inconsistent contents.
    """
    path = Path(path)
    return _from_own(path, safe_torch_load(path, _OWN_EXPECTED))


def _from_own(path: Path, ckpt: Any) -> tuple[TemporalLifter, TrajectoryModel | None, LifterCheckpointInfo]:
    expected = _OWN_EXPECTED
    if not isinstance(ckpt, Mapping) or ckpt.get("format") != LIFTER_FORMAT:
        raise BadInput(f"{path} is not {expected}.")
    if ckpt.get("version") != LIFTER_VERSION:
        raise BadInput(
            f"{path} is a lifter checkpoint of version {ckpt.get('version')!r}; this software reads "
            f"version {LIFTER_VERSION}: retrain or convert it."
        )
    try:
        config = TemporalLifterConfig.from_dict(dict(ckpt["config"]))
        lifter = _build(TemporalLifter, config, ckpt["model_pos"])
        traj = None
        if ckpt.get("model_traj") is not None:
            traj_config = TemporalLifterConfig.from_dict(dict(ckpt["traj_config"]))
            traj = _build(TrajectoryModel, traj_config, ckpt["model_traj"])
        training = TrainingMetadata.from_dict(ckpt.get("training"))
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise BadInput(f"{path} is a damaged {LIFTER_FORMAT} checkpoint: {exc}") from exc
    info = LifterCheckpointInfo(path=path, source=LIFTER_FORMAT, config=config, training=training)
    return lifter, traj, info


def load_lifter(
    path: str | Path, *, in_features: int = 2, causal: bool = False
) -> tuple[TemporalLifter, TrajectoryModel | None, LifterCheckpointInfo]:
    """Load either format, told apart by the ``format`` entry (``in_features`` / ``causal``: official only)."""
    path = Path(path)
    ckpt = safe_torch_load(path, f"a '{LIFTER_FORMAT}' or VideoPose3D checkpoint")
    if isinstance(ckpt, Mapping) and ckpt.get("format") == LIFTER_FORMAT:
        return _from_own(path, ckpt)
    return _from_videopose(path, ckpt, in_features, causal, 0.25)
