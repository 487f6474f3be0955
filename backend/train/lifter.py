"""Training the temporal lifter on synthetic Anny sequences (``synth.py``) with detector noise.

Input: the 23 ``KEYPOINT_NAMES`` keypoints as (x, y, confidence), screen-normalised like
VideoPose3D; output: 23 root-relative (mid-hip) 3D keypoints in camera axes, metres. Batches are
windows of ``chunk`` output frames (``chunk + R - 1`` input frames, edges replicated as in
`lift_sequence`), with fresh detector noise at every step. Loss: MPJPE plus ``bone_weight`` times
the mean absolute bone-length error. Evaluation: MPJPE in mm over every frame of the held-out
TEST-split sequences with one fixed-seed noise draw, lifted with `lift_sequence`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.body.skeleton import KEYPOINT_NAMES
from backend.lift.checkpoints import TrainingMetadata, save_lifter_checkpoint
from backend.lift.videopose import TemporalLifter, TemporalLifterConfig, lift_sequence
from backend.train.data import DataConfig, hash_of, load_clipset
from backend.train.noise import NoiseConfig, detector_inputs
from backend.train.synth import LifterPairs, SynthConfig, load_or_synthesize, root_relative

log = logging.getLogger(__name__)

_BONE_NAMES = (
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_ankle", "left_heel"), ("right_ankle", "right_heel"), ("left_ankle", "left_big_toe"),
    ("right_ankle", "right_big_toe"),
)  # fmt: skip
BONES = torch.tensor([[KEYPOINT_NAMES.index(a), KEYPOINT_NAMES.index(b)] for a, b in _BONE_NAMES])
RECEPTIVE_WIDTHS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}


@dataclass(frozen=True)
class LifterTrainConfig:
    """Hyper-parameters of a lifter training run."""

    receptive_field: int = 81
    channels: int = 256
    dropout: float = 0.15
    epochs: int = 20
    batch_size: int = 32
    chunk: int = 32
    lr: float = 1e-3
    lr_final: float = 5e-5
    bone_weight: float = 0.5
    max_minutes: float = 15.0
    seed: int = 0
    threads: int = 1
    synth: SynthConfig = SynthConfig()
    eval_synth_seed: int = 1234
    noise: NoiseConfig = NoiseConfig()

    def lifter_config(self) -> TemporalLifterConfig:
        if self.receptive_field not in RECEPTIVE_WIDTHS:
            raise ValueError(f"receptive field must be one of {sorted(RECEPTIVE_WIDTHS)}")
        n = len(KEYPOINT_NAMES)
        return TemporalLifterConfig(
            num_joints_in=n,
            num_joints_out=n,
            in_features=3,
            filter_widths=RECEPTIVE_WIDTHS[self.receptive_field],
            dropout=self.dropout,
            channels=self.channels,
        )

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LifterResult:
    """Outcome of `train_lifter`: held-out MPJPE (mm), steps, seconds, data hash."""

    model: TemporalLifter
    test_mpjpe_mm: float
    test_mpjpe_clean_mm: float
    steps: int
    seconds: float
    data_hash: str


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error (same unit as the inputs) over (..., K, 3)."""
    return (pred - target).norm(dim=-1).mean()


def bone_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute bone-length error over `BONES`, (..., K, 3) inputs."""
    lp = (pred[..., BONES[:, 0], :] - pred[..., BONES[:, 1], :]).norm(dim=-1)
    lt = (target[..., BONES[:, 0], :] - target[..., BONES[:, 1], :]).norm(dim=-1)
    return (lp - lt).abs().mean()


def sample_windows(
    pairs: LifterPairs, batch: int, chunk: int, receptive: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random training windows.

    Returns (exact pixels (B, chunk + R - 1, K, 2), image sizes (B, 2), root-relative targets
    (B, chunk, K, 3)); frames beyond a sequence's ends repeat its first / last frame.
    """
    starts = torch.as_tensor(pairs.starts)
    seq = torch.randint(pairs.n_sequences, (batch,), generator=gen)
    length = starts[seq + 1] - starts[seq]
    first = (torch.rand(batch, generator=gen) * (length - chunk).clamp(min=1)).long()
    half = (receptive - 1) // 2
    offs = torch.arange(chunk + receptive - 1) - half
    idx_in = (first[:, None] + offs[None]).clamp(min=0)
    idx_in = torch.minimum(idx_in, (length - 1)[:, None]) + starts[seq][:, None]
    idx_out = (
        torch.minimum(first[:, None] + torch.arange(chunk)[None], (length - 1)[:, None])
        + starts[seq][:, None]
    )
    xy = torch.as_tensor(pairs.xy)[idx_in]
    target = torch.as_tensor(root_relative(pairs.kp3d[idx_out.numpy()]))
    return xy, torch.as_tensor(pairs.image_wh)[seq], target


def fit_lifter(
    model: TemporalLifter, pairs: LifterPairs, config: LifterTrainConfig, steps: int | None = None
) -> list[float]:
    """Optimise `model` on synthetic pairs with fresh noise; `steps` overrides epochs and time budget."""
    gen = torch.Generator().manual_seed(config.seed)
    frames = int(pairs.starts[-1])
    per_epoch = max(frames // (config.batch_size * config.chunk), 1)
    total = steps if steps is not None else config.epochs * per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4, amsgrad=True)
    decay = (config.lr_final / config.lr) ** (1.0 / max(total, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, decay)
    r = model.receptive_field()
    losses: list[float] = []
    clock = time.perf_counter()
    model.train()
    for step in range(total):
        xy, wh, target = sample_windows(pairs, config.batch_size, config.chunk, r, gen)
        inputs = detector_inputs(xy, wh, config.noise, gen)
        pred = model(inputs)
        err = mpjpe(pred, target)
        loss = err + config.bone_weight * bone_error(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        momentum = 0.1 * (0.001 / 0.1) ** (step / max(total, 1))  # VideoPose3D's BN momentum decay
        model.set_bn_momentum(momentum)
        losses.append(float(loss.detach()))
        if (step + 1) % 200 == 0 or step + 1 == total:
            recent = float(np.mean(losses[-200:]))
            log.info(
                "lifter step %d/%d: loss %.4f (%.0f s)", step + 1, total, recent, time.perf_counter() - clock
            )
        if steps is None and time.perf_counter() - clock > 60 * config.max_minutes:
            log.info(
                "lifter: time budget of %.1f min reached at step %d/%d", config.max_minutes, step + 1, total
            )
            break
    return losses


def evaluate_lifter(model: TemporalLifter, pairs: LifterPairs, noise: NoiseConfig | None, seed: int) -> float:
    """MPJPE in mm over every frame of every sequence, one fixed-seed noise draw (None: exact 2D)."""
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    targets = root_relative(pairs.kp3d)
    for s in range(pairs.n_sequences):
        a, b = int(pairs.starts[s]), int(pairs.starts[s + 1])
        xy = torch.as_tensor(pairs.xy[a:b])[None]
        inputs = detector_inputs(xy, torch.as_tensor(pairs.image_wh[s : s + 1]), noise, gen)[0]
        pred = lift_sequence(model, inputs)
        total += float((pred - torch.as_tensor(targets[a:b])).norm(dim=-1).sum())
        count += (b - a) * targets.shape[1]
    return 1000.0 * total / max(count, 1)


def train_lifter(config: LifterTrainConfig, data: DataConfig, out: Path | None) -> LifterResult:
    """Synthesise (cached) train and test pairs, train, evaluate on test, save to `out` if given."""
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(config.threads)
    clock = time.perf_counter()
    from backend.body.anny_body import AnnyBody

    body = AnnyBody()
    train_pairs = load_or_synthesize(load_clipset("train", data), config.synth, data.cache, body)
    eval_synth = dataclasses.replace(config.synth, seed=config.eval_synth_seed, with_mirror=False)
    test_pairs = load_or_synthesize(load_clipset("test", data), eval_synth, data.cache, body)
    data_hash = hash_of(train_pairs.data_hash, test_pairs.data_hash)
    log.info(
        "lifter data: %d train frames (%d sequences), %d test frames; hash %s; %.0f s",
        train_pairs.starts[-1], train_pairs.n_sequences, test_pairs.starts[-1], data_hash,
        time.perf_counter() - clock,
    )  # fmt: skip
    model = TemporalLifter(config.lifter_config())
    losses = fit_lifter(model, train_pairs, config)
    test_mm = evaluate_lifter(model, test_pairs, config.noise, config.eval_synth_seed)
    clean_mm = evaluate_lifter(model, test_pairs, None, config.eval_synth_seed)
    seconds = time.perf_counter() - clock
    log.info("lifter: test MPJPE %.1f mm (noisy 2D), %.1f mm (exact 2D); %.0f s", test_mm, clean_mm, seconds)
    if out is not None:
        per_epoch = max(int(train_pairs.starts[-1]) // (config.batch_size * config.chunk), 1)
        meta = TrainingMetadata(
            seed=config.seed,
            train_config={
                **config.to_dict(),
                "steps": len(losses),
                "test_mpjpe_mm": test_mm,
                "test_mpjpe_exact2d_mm": clean_mm,
                "seconds": seconds,
            },
            data_hash=data_hash,
            epoch=int(math.ceil(len(losses) / per_epoch)),
        )
        save_lifter_checkpoint(out, model.eval(), None, meta)
        log.info("wrote %s (%.1f MB)", out, Path(out).stat().st_size / 1e6)
    return LifterResult(model, test_mm, clean_mm, len(losses), seconds, data_hash)
