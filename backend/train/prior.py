"""Training the VPoser-architecture pose prior on the train split's canonical body poses.

Loss per sample: the squared Frobenius distance between decoded and input joint rotation matrices,
summed over the 21 joints, plus ``kl_weight`` times KL(q(z|pose) || N(0, I)). Mirrored poses are
added as augmentation. Validation reports the mean geodesic error in degrees per joint of the
reconstruction from the posterior mean, and the KL. The checkpoint is written with `save_vposer`
(seed, training config and data hash in its metadata).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from backend.body.vposer import VPoser, VPoserConfig, kl_to_standard_normal, save_vposer
from backend.io.checkpoints import TrainingMetadata
from backend.train.data import DataConfig, body_poses_aa, hash_of, load_clipset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriorTrainConfig:
    """Hyper-parameters of a pose-prior training run."""

    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    kl_weight: float = 5e-3
    latent_dim: int = 32
    hidden: int = 512
    dropout: float = 0.1
    with_mirror: bool = True
    max_minutes: float = 8.0
    seed: int = 0
    threads: int = 1

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PriorResult:
    """Outcome of `train_prior`: val geodesic error (deg/joint), val KL, epochs, seconds, data hash."""

    model: VPoser
    val_geodesic_deg: float
    val_kl: float
    epochs: int
    seconds: float
    data_hash: str


def prior_loss(
    model: VPoser, pose_aa: torch.Tensor, kl_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss for a batch of (B, 63) axis-angle poses; returns (loss, {'rec', 'kl'})."""
    out = model(pose_aa)
    target = roma.rotvec_to_rotmat(pose_aa.reshape(-1, model.config.num_joints, 3))
    rec = (out["pose_body_matrot"] - target).pow(2).sum((-1, -2, -3)).mean()
    kl = kl_to_standard_normal(out["q_z"])
    return rec + kl_weight * kl, {"rec": float(rec.detach()), "kl": float(kl.detach())}


def evaluate_prior(model: VPoser, poses: np.ndarray, batch: int = 4096) -> tuple[float, float]:
    """(mean geodesic error in degrees per joint, mean KL) of posterior-mean reconstructions.

    poses: (N, 63) axis-angle. The model is evaluated in eval mode, without gradients.
    """
    was = model.training
    model.eval()
    errs, kls = [], []
    with torch.no_grad():
        for i in range(0, len(poses), batch):
            x = torch.as_tensor(poses[i : i + batch])
            q = model.encode(x)
            dec = model.decode(q.mean)["pose_body_matrot"]
            gt = roma.rotvec_to_rotmat(x.reshape(len(x), -1, 3))
            errs.append(torch.rad2deg(roma.rotmat_geodesic_distance(dec, gt)).reshape(-1))
            kls.append(torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1))
    model.train(was)
    return float(torch.cat(errs).mean()), float(torch.cat(kls).mean())


def fit_prior(
    model: VPoser, train: np.ndarray, config: PriorTrainConfig, steps: int | None = None
) -> list[float]:
    """Optimise `model` on (N, 63) poses; `steps` overrides the epoch count. Returns batch losses."""
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(train)
    per_epoch = max(n // config.batch_size, 1)
    total = steps if steps is not None else config.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / max(total, 1), 1.0)))
    )
    data = torch.as_tensor(train)
    losses: list[float] = []
    start = time.perf_counter()
    model.train()
    step = 0
    while step < total:
        order = torch.randperm(n, generator=gen)
        for i in range(0, max(n - config.batch_size + 1, 1), config.batch_size):
            if step >= total:
                break
            batch = data[order[i : i + config.batch_size]]
            loss, parts = prior_loss(model, batch, config.kl_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % (per_epoch * 5) == 0 or step == total:
                log.info("prior step %d/%d: rec %.4f kl %.2f", step, total, parts["rec"], parts["kl"])
            if steps is None and time.perf_counter() - start > 60 * config.max_minutes:
                log.info("prior: time budget of %.1f min reached at step %d", config.max_minutes, step)
                return losses
    return losses


def train_prior(config: PriorTrainConfig, data: DataConfig, out: Path | None) -> PriorResult:
    """Train on the train split, evaluate on val, save to `out` (when given) with `save_vposer`."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(config.threads)
    clock = time.perf_counter()
    train_clips = load_clipset("train", data)
    val_clips = load_clipset("val", data)
    train = body_poses_aa(train_clips, with_mirror=config.with_mirror)
    val = body_poses_aa(val_clips)
    data_hash = hash_of(train_clips.data_hash, val_clips.data_hash, config.with_mirror)
    log.info("prior data: %d train poses, %d val poses (hash %s)", len(train), len(val), data_hash)
    model = VPoser(VPoserConfig(latent_dim=config.latent_dim, hidden=config.hidden, dropout=config.dropout))
    losses = fit_prior(model, train, config)
    epochs_done = round(len(losses) / max(len(train) // config.batch_size, 1), 2)
    geo, kl = evaluate_prior(model, val)
    seconds = time.perf_counter() - clock
    log.info(
        "prior: val geodesic %.2f deg/joint, val KL %.2f, %.1f epochs, %.0f s", geo, kl, epochs_done, seconds
    )
    if out is not None:
        meta = TrainingMetadata(
            seed=config.seed,
            train_config={**config.to_dict(), "val_geodesic_deg": geo, "val_kl": kl, "seconds": seconds},
            data_hash=data_hash,
            epoch=int(math.ceil(epochs_done)),
        )
        save_vposer(out, model.eval(), meta)
        log.info("wrote %s (%.1f MB)", out, Path(out).stat().st_size / 1e6)
    return PriorResult(model, geo, kl, int(math.ceil(epochs_done)), seconds, data_hash)
