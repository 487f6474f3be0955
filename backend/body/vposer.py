"""VPoser v2 pose prior: a VAE over the 21 SMPL body joint rotations (axis-angle, 63 values).

Architecture of VPoser v2 (Pavlakos et al., SMPL-X, CVPR 2019; human_body_prior V02_05):

- encoder: BatchNorm(63) -> Linear(63, H) -> LeakyReLU -> BatchNorm(H) -> Dropout -> Linear(H, H)
  -> Linear(H, H) -> Normal(mu = Linear(H, D), scale = softplus(Linear(H, D)));
- decoder: Linear(D, H) -> LeakyReLU -> Dropout -> Linear(H, H) -> LeakyReLU -> Linear(H, 21 * 6)
  -> one 6D continuous rotation per joint -> rotation matrix.

The 6D vector of a joint is read as a 3x2 matrix (row-major) whose two columns are
Gram-Schmidt orthonormalised into the rotation's first two columns; the third is their cross
product (``roma.special_gramschmidt`` follows this convention).

Parameter names follow the official module (``encoder_net.1``, ``.2``, ``.4``, ``.6``, ``.7``,
``.8.mu``, ``.8.logvar``; ``decoder_net.0``, ``.3``, ``.5``), so the official Lightning
checkpoint (``state_dict`` keys prefixed ``vp_model.``) loads unchanged. The joint order and axes
are SMPL's body joints 1..21, the canonical skeleton's (``backend.geometry.skeleton``) without pelvis.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import roma
import torch
from torch import nn
from torch.nn import functional as F

from backend.errors import BadInput
from backend.io.checkpoints import TrainingMetadata, safe_torch_load, save_checkpoint

log = logging.getLogger(__name__)

__all__ = [
    "VPoserConfig",
    "VPoser",
    "latent_norm_penalty",
    "kl_to_standard_normal",
    "load_vposer",
    "load_vposer_checkpoint",
    "save_vposer",
]

VPOSER_FORMAT = "video2anim.vposer"
VPOSER_VERSION = 1
_OFFICIAL_PREFIX = "vp_model."


@dataclass(frozen=True)
class VPoserConfig:
    """VPoser hyper-parameters (V02_05: 21 joints, latent 32, 512 hidden units)."""

    num_joints: int = 21
    latent_dim: int = 32
    hidden: int = 512
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VPoserConfig:
        return cls(**dict(d))


class _NormalHead(nn.Module):
    """Linear heads for the posterior's mean and scale (the official calls the latter ``logvar``,
    although it goes through a softplus and is used as the standard deviation)."""

    def __init__(self, hidden: int, latent_dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, h: torch.Tensor) -> torch.distributions.Normal:
        """(B, H) -> Normal with (B, D) mean and scale."""
        return torch.distributions.Normal(self.mu(h), F.softplus(self.logvar(h)))


class VPoser(nn.Module):
    """VPoser v2 VAE. Inputs and outputs are axis-angle body poses (B, 3 * num_joints)."""

    def __init__(self, config: VPoserConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VPoserConfig()
        n_in, h, d = 3 * config.num_joints, config.hidden, config.latent_dim
        # Indices matter: they are the official parameter names.
        self.encoder_net = nn.Sequential(
            nn.Flatten(),  # 0
            nn.BatchNorm1d(n_in),  # 1
            nn.Linear(n_in, h),  # 2
            nn.LeakyReLU(),  # 3
            nn.BatchNorm1d(h),  # 4
            nn.Dropout(config.dropout),  # 5
            nn.Linear(h, h),  # 6
            nn.Linear(h, h),  # 7 (no non-linearity between 6 and 7, as in the official model)
            _NormalHead(h, d),  # 8
        )
        self.decoder_net = nn.Sequential(
            nn.Linear(d, h),  # 0
            nn.LeakyReLU(),  # 1
            nn.Dropout(config.dropout),  # 2
            nn.Linear(h, h),  # 3
            nn.LeakyReLU(),  # 4
            nn.Linear(h, config.num_joints * 6),  # 5
        )

    def encode(self, pose_aa: torch.Tensor) -> torch.distributions.Normal:
        """Posterior q(z | pose).

        Args:
            pose_aa: (B, 3 * num_joints) or (B, num_joints, 3) axis-angle body pose.
        Returns:
            Normal with (B, latent_dim) mean and scale.
        """
        return self.encoder_net(pose_aa.reshape(pose_aa.shape[0], -1))

    def decode(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Body pose for latent codes.

        Args:
            z: (B, latent_dim).
        Returns:
            ``pose_body`` (B, 3 * num_joints) axis-angle and ``pose_body_matrot`` (B, num_joints, 3, 3).
        """
        b = z.shape[0]
        six_d = self.decoder_net(z).reshape(b, self.config.num_joints, 3, 2)
        matrot = roma.special_gramschmidt(six_d, epsilon=1e-12)
        pose = roma.rotmat_to_rotvec(matrot).reshape(b, -1)
        return {"pose_body": pose, "pose_body_matrot": matrot}

    def forward(self, pose_aa: torch.Tensor) -> dict[str, Any]:
        """One VAE pass for training.

        Args:
            pose_aa: (B, 3 * num_joints) axis-angle.
        Returns:
            ``q_z`` (the posterior), ``z`` (B, D) a reparameterised sample, ``mean`` and ``std``
            (B, D), and ``decode(z)``'s ``pose_body`` / ``pose_body_matrot``.
        """
        q_z = self.encode(pose_aa)
        z = q_z.rsample()
        return {"q_z": q_z, "z": z, "mean": q_z.mean, "std": q_z.scale, **self.decode(z)}

    def sample(self, num: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Decode ``num`` codes drawn from the standard normal prior (no grad, current mode)."""
        p = next(self.parameters())
        z = torch.randn(num, self.config.latent_dim, generator=generator, dtype=p.dtype).to(p.device)
        with torch.no_grad():
            return self.decode(z)


def latent_norm_penalty(z: torch.Tensor) -> torch.Tensor:
    """SMPLify-X's VPoser pose prior: the squared L2 norm of the latent code.

    Args:
        z: (..., latent_dim).
    Returns:
        Scalar: mean over the leading dimensions (frames) of ``|z|^2``, so it does not grow with
        the clip length; for one frame it equals SMPLify-X's ``pose_embedding.pow(2).sum()``.
    """
    return z.pow(2).sum(-1).mean()


def kl_to_standard_normal(q_z: torch.distributions.Normal) -> torch.Tensor:
    """Scalar KL(q_z || N(0, I)), summed over latent dimensions and averaged over the batch."""
    prior = torch.distributions.Normal(torch.zeros_like(q_z.mean), torch.ones_like(q_z.scale))
    return torch.distributions.kl_divergence(q_z, prior).sum(-1).mean()


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _find_snapshot(path: Path) -> Path:
    """The checkpoint file for a path naming it or a VPoser folder (``V02_05`` or its ``snapshots``)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise BadInput(f"{path} does not exist; expected a VPoser .ckpt file or its V02_05 folder.")
    candidates = sorted(path.glob("snapshots/*.ckpt")) or sorted(path.glob("*.ckpt"))
    if not candidates:
        raise BadInput(
            f"{path} holds no VPoser checkpoint: expected a .ckpt file in {path / 'snapshots'} "
            "(the V02_05 folder of the VPoser v2 download)."
        )

    def epoch(p: Path) -> tuple[int, float]:
        m = re.search(r"epoch=(\d+)", p.name)
        return (int(m.group(1)) if m else -1, p.stat().st_mtime)

    chosen = max(candidates, key=epoch)
    if len(candidates) > 1:
        log.info("Using the latest of %d VPoser snapshots: %s", len(candidates), chosen.name)
    return chosen


def _infer_config(state: Mapping[str, Any]) -> VPoserConfig:
    n_in = int(state["encoder_net.2.weight"].shape[1])
    if n_in % 3:
        raise ValueError(f"encoder input size {n_in} is not 3 x joints")
    return VPoserConfig(
        num_joints=n_in // 3,
        latent_dim=int(state["encoder_net.8.mu.weight"].shape[0]),
        hidden=int(state["encoder_net.2.weight"].shape[0]),
    )


def _official_state(ckpt: Any) -> dict[str, Any]:
    """The VPoser parameters of a Lightning checkpoint or a bare state dict, prefixes stripped.

    Other entries (the body model's buffers ``bm_train.*`` of the official training module) are dropped.
    """
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping):
        raise ValueError("no state dict in it")
    keys = [k for k in state if isinstance(k, str)]
    for prefix in (_OFFICIAL_PREFIX, "model.vp_model.", "module."):
        if any(k.startswith(prefix + "encoder_net.") for k in keys):
            return {k[len(prefix) :]: state[k] for k in keys if k.startswith(prefix)}
    return {k: state[k] for k in keys if k.startswith(("encoder_net.", "decoder_net."))}


def load_vposer(path: str | Path) -> VPoser:
    """``load_vposer_checkpoint(path)``'s model."""
    return load_vposer_checkpoint(path)[0]


def load_vposer_checkpoint(path: str | Path) -> tuple[VPoser, TrainingMetadata | None]:
    """Load a VPoser in eval mode on CPU with gradients disabled for its parameters.

    Accepts the official VPoser v2 ``.ckpt`` (PyTorch Lightning, keys ``vp_model.*``), the
    ``V02_05`` folder holding ``snapshots/*.ckpt`` (the latest epoch is used), a bare state dict,
    or a file written by ``save_vposer``.

    Returns:
        (model, training metadata: None unless the file is our own format).
    Raises:
        BadInput: naming the file, for a wrong or corrupt file.
    """
    file = _find_snapshot(Path(path))
    expected = "a VPoser v2 checkpoint (a .ckpt with a 'state_dict' of 'vp_model.' parameters)"
    ckpt = safe_torch_load(file, expected)
    try:
        if isinstance(ckpt, Mapping) and ckpt.get("format") == VPOSER_FORMAT:
            if ckpt.get("version") != VPOSER_VERSION:
                raise BadInput(
                    f"{file} is a VPoser file of version {ckpt.get('version')!r}; this software reads "
                    f"version {VPOSER_VERSION}: retrain or convert it."
                )
            config, state = VPoserConfig.from_dict(ckpt["config"]), ckpt["state_dict"]
            training = TrainingMetadata.from_dict(ckpt.get("training"))
        else:
            training = None
            state = _official_state(ckpt)
            config = _infer_config(state)
        model = VPoser(config)
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
        raise BadInput(f"{file} is not {expected}: {exc}") from exc
    model.eval()
    model.requires_grad_(False)
    log.info("Loaded VPoser from %s (latent %d)", file, config.latent_dim)
    return model, training


def save_vposer(path: str | Path, model: VPoser, training: TrainingMetadata | None = None) -> Path:
    """Write our own VPoser format atomically (format, version, config, state dict, training metadata)."""
    path = Path(path)
    training = training or TrainingMetadata()
    payload = {
        "format": VPOSER_FORMAT,
        "version": VPOSER_VERSION,
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "training": training.to_dict(),
    }
    return save_checkpoint(path, payload)
