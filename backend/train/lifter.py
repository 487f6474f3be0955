"""Training the temporal lifter on synthetic Anny sequences (``synth.py``) with detector noise.

Input: the 23 ``KEYPOINT_NAMES`` keypoints as (x, y, confidence), screen-normalised like
VideoPose3D; output: 23 root-relative (mid-hip) 3D keypoints in camera axes, metres. Batches are
windows of ``chunk`` output frames (``chunk + R - 1`` input frames, edges replicated as in
`lift_sequence`; ``batches.py``), each seen by a new random camera (``views.py``; or by the fixed
cameras of ``synth.py``), with fresh detector noise at every step. Loss: MPJPE plus ``bone_weight`` times
the mean absolute bone-length error. Evaluation: MPJPE in mm over every frame of the held-out
TEST-split sequences with one fixed-seed noise draw, lifted with `lift_sequence`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.io.checkpoints import TrainingMetadata
from backend.lift.checkpoints import load_lifter_checkpoint, save_lifter_checkpoint
from backend.lift.inputs import encode_inputs
from backend.lift.videopose import TemporalLifter, TemporalLifterConfig, TrajectoryModel, lift_sequence
from backend.train.batches import Windows, sample_fresh_windows, sample_windows
from backend.train.data import DataConfig, hash_of, load_clipset
from backend.train.lifter_losses import (
    back_projection_error,
    bone_consistency,
    bone_error,
    bone_lengths,
    mpjpe,
    multi_root_mpjpe,
    trajectory_error,
)
from backend.train.noise import NoiseConfig, observe
from backend.train.proportions import ProportionConfig
from backend.train.synth import MID_HIP, LifterPairs, SynthConfig, load_or_synthesize
from backend.train.views import WorldSequences, load_or_synthesize_world

__all__ = ["LifterTrainConfig", "Windows", "fit_lifter", "sample_windows", "train_lifter"]

log = logging.getLogger(__name__)

RECEPTIVE_WIDTHS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}


@dataclass(frozen=True)
class LifterTrainConfig:
    """Hyper-parameters of a lifter training run."""

    receptive_field: int = 81
    input_norm: str = "person"
    causal: bool = False
    """Outputs depend only on past and current frames (streaming); default: centred windows."""
    trajectory: bool = False
    """Also train a trajectory model (root position in the camera frame, "person_focal" inputs)."""
    traj_weight: float = 1.0
    semi_supervised: bool = False
    """With a trajectory model: add the back-projection loss on the validation split's 2D only."""
    semi_weight: float = 1.0
    channels: int = 256
    dropout: float = 0.05
    epochs: int = 20
    batch_size: int = 32
    chunk: int = 32
    lr: float = 1e-3
    lr_final: float = 5e-5
    bone_weight: float = 0.5
    root_weight: float = 0.0
    """Weight of the multi-root MPJPE (`lifter_losses.multi_root_mpjpe`: relative to shoulders and hips)."""
    ema_decay: float = 0.0
    """Above 0: snapshots, evaluation and the saved model use an exponential moving average of the pose
    lifter's weights (and batch-norm statistics) with this decay per step (a trajectory model is kept as
    trained)."""
    max_minutes: float = 15.0
    snapshot_minutes: float = 10.0
    seed: int = 0
    threads: int = 1
    synth: SynthConfig = SynthConfig()
    fresh_cameras: bool = True
    """Draw a new random camera for every training window (`views.random_views`; ``synth.views`` is then
    the number of bodies posed per segment) instead of ``synth.views`` fixed cameras per segment."""
    proportions: ProportionConfig = ProportionConfig()
    """With fresh cameras: every window's body proportions drawn anew (`proportions.regrow`)."""
    eval_synth_seed: int = 1234
    noise: NoiseConfig = NoiseConfig()

    def lifter_config(self) -> TemporalLifterConfig:
        if self.receptive_field not in RECEPTIVE_WIDTHS:
            raise ValueError(f"receptive field must be one of {sorted(RECEPTIVE_WIDTHS)}")
        n = len(KEYPOINT_NAMES)
        return TemporalLifterConfig(
            num_joints_in=n + 1 if self.input_norm == "person" else n,
            num_joints_out=n,
            in_features=3,
            filter_widths=RECEPTIVE_WIDTHS[self.receptive_field],
            dropout=self.dropout,
            channels=self.channels,
            input_norm=self.input_norm,
            causal=self.causal,
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


def _trim(x: torch.Tensor, model: TemporalLifter) -> torch.Tensor:
    """The output frames (B, chunk, ...) of an input window batch (B, chunk + R - 1, ...)."""
    before = model.output_shift()
    return x[:, before : x.shape[1] - (model.receptive_field() - 1 - before)]


def _encode(
    model: TemporalLifter, xy: torch.Tensor, conf: torch.Tensor, image_wh: torch.Tensor, focal: torch.Tensor
) -> torch.Tensor:
    """`encode_inputs` with `model`'s encoding: (B, T, K, 2), (B, T, K), (B, 2), (B,) -> network input."""
    cfg = model.config
    return encode_inputs(xy, conf, image_wh.float(), cfg.input_norm, cfg.in_features, focal)


def _anneal(opt: torch.optim.Optimizer, nets: list, config: LifterTrainConfig, progress: float) -> None:
    """Exponential decays of the learning rate and (as in VideoPose3D) the BN momentum, driven by the
    share of the step budget or of the time budget used (``progress`` in [0, 1]), whichever is further."""
    for group in opt.param_groups:
        group["lr"] = config.lr * (config.lr_final / config.lr) ** progress
    for net in nets:
        net.set_bn_momentum(0.1 * (0.001 / 0.1) ** progress)


def fit_lifter(
    model: TemporalLifter,
    pairs: LifterPairs | WorldSequences,
    config: LifterTrainConfig,
    steps: int | None = None,
    on_interval: Callable[[int], None] | None = None,
    trajectory: TrajectoryModel | None = None,
    unlabelled: LifterPairs | None = None,
    ema: AveragedModel | None = None,
) -> list[float]:
    """Optimise `model` (and `trajectory`) on synthetic pairs with fresh detector noise every step
    (`WorldSequences`: and a fresh random camera for every window).

    Loss: MPJPE + ``bone_weight`` x bone-length error; with a trajectory model, plus ``traj_weight``
    x its inverse-depth weighted root error; with `unlabelled` pairs (their 3D is never read) and
    a trajectory model, plus ``semi_weight`` x (back-projection error + bone-length consistency),
    VideoPose3D's semi-supervised objective; plus ``root_weight`` x the multi-root MPJPE. `ema`, if
    given, is updated after every step. `steps` overrides epochs and the time budget;
    on_interval(step) is called every ``config.snapshot_minutes`` (e.g. to save a snapshot).
    """
    gen = torch.Generator().manual_seed(config.seed)
    frames = int(pairs.starts[-1])
    per_epoch = max(frames // (config.batch_size * config.chunk), 1)
    total = steps if steps is not None else config.epochs * per_epoch
    nets = [model] + ([trajectory] if trajectory is not None else [])
    params = [p for net in nets for p in net.parameters()]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-4, amsgrad=True)
    r, causal = model.receptive_field(), model.config.causal
    reference_bones = bone_lengths(torch.as_tensor(pairs.targets()[:: max(frames // 5000, 1)])).mean(0)
    losses: list[float] = []
    clock = last_snapshot = time.perf_counter()
    for net in nets:
        net.train()
    for step in range(total):
        if isinstance(pairs, WorldSequences):
            w = sample_fresh_windows(pairs, config.batch_size, config.chunk, r, config.synth, gen, causal, config.proportions)  # fmt: skip
        else:
            w = sample_windows(pairs, config.batch_size, config.chunk, r, gen, causal)
        xy, conf = observe(w.xy, w.image_wh, config.noise, gen)
        pred = model(_encode(model, xy, conf, w.image_wh, w.focal))
        loss = mpjpe(pred, w.pose) + config.bone_weight * bone_error(pred, w.pose)
        if config.root_weight > 0:
            loss = loss + config.root_weight * multi_root_mpjpe(pred, w.pose)
        if trajectory is not None:
            loss = loss + config.traj_weight * trajectory_error(
                trajectory(_encode(trajectory, xy, conf, w.image_wh, w.focal)), w.root
            )
            if unlabelled is not None:
                u = sample_windows(unlabelled, config.batch_size, config.chunk, r, gen, causal)
                xy_u, conf_u = observe(u.xy, u.image_wh, config.noise, gen)
                pred_u = model(_encode(model, xy_u, conf_u, u.image_wh, u.focal))
                root_u = trajectory(_encode(trajectory, xy_u, conf_u, u.image_wh, u.focal))
                semi = back_projection_error(
                    pred_u, root_u, _trim(xy_u, model), _trim(conf_u, model), u.focal, u.image_wh
                ) + bone_consistency(pred_u, reference_bones)
                loss = loss + config.semi_weight * semi
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(model)
        progress = (step + 1) / max(total, 1)
        if steps is None:
            progress = max(progress, (time.perf_counter() - clock) / (60 * config.max_minutes))
        _anneal(opt, nets, config, min(progress, 1.0))
        losses.append(float(loss.detach()))
        if on_interval is not None and time.perf_counter() - last_snapshot > 60 * config.snapshot_minutes:
            on_interval(step + 1)
            last_snapshot = time.perf_counter()
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


def evaluate_lifter(
    model: TemporalLifter,
    pairs: LifterPairs,
    noise: NoiseConfig | None,
    seed: int,
    trajectory: TrajectoryModel | None = None,
) -> tuple[float, float | None]:
    """(pose MPJPE, root error or None) in mm over every frame of every sequence, one fixed-seed
    noise draw (None: exact 2D)."""
    gen = torch.Generator().manual_seed(seed)
    total, count, root_total = 0.0, 0, 0.0
    targets = pairs.targets()
    for s in range(pairs.n_sequences):
        a, b = int(pairs.starts[s]), int(pairs.starts[s + 1])
        wh, focal = torch.as_tensor(pairs.image_wh[s : s + 1]), torch.as_tensor(pairs.focal[s : s + 1])
        xy, conf = observe(torch.as_tensor(pairs.xy[a:b])[None], wh, noise, gen)
        pred = lift_sequence(model, _encode(model, xy, conf, wh, focal)[0])
        total += float((pred - torch.as_tensor(targets[a:b])).norm(dim=-1).sum())
        count += (b - a) * targets.shape[1]
        if trajectory is not None:
            root = lift_sequence(trajectory, _encode(trajectory, xy, conf, wh, focal)[0])[:, 0]
            truth = torch.as_tensor(pairs.kp3d[a:b][:, list(MID_HIP)].mean(1))
            root_total += float((root - truth).norm(dim=-1).sum())
    n_frames = max(int(pairs.starts[-1]), 1)
    return 1000.0 * total / max(count, 1), (
        1000.0 * root_total / n_frames if trajectory is not None else None
    )


@dataclass
class _LifterData:
    train: LifterPairs | WorldSequences
    test: LifterPairs
    unlabelled: LifterPairs | None
    data_hash: str


def _lifter_data(config: LifterTrainConfig, data: DataConfig) -> _LifterData:
    """Synthesise (cached) the train, test and (semi-supervised) unlabelled pairs."""
    from backend.body.anny_body import AnnyBody

    clock = time.perf_counter()
    body = AnnyBody()
    train_clips = load_clipset("train", data)
    if config.fresh_cameras:
        train_pairs = load_or_synthesize_world(train_clips, config.synth, data.cache, body)
    else:
        train_pairs = load_or_synthesize(train_clips, config.synth, data.cache, body)
    eval_synth = dataclasses.replace(config.synth, seed=config.eval_synth_seed, with_mirror=False)
    test_pairs = load_or_synthesize(load_clipset("test", data), eval_synth, data.cache, body)
    data_hash = hash_of(train_pairs.data_hash, test_pairs.data_hash)
    unlabelled = None
    if config.semi_supervised:
        if not config.trajectory:
            raise ValueError("the semi-supervised loss needs the trajectory model (--trajectory)")
        val_synth = dataclasses.replace(config.synth, seed=config.eval_synth_seed + 1, with_mirror=False)
        unlabelled = load_or_synthesize(load_clipset("val", data), val_synth, data.cache, body)
        data_hash = hash_of(data_hash, unlabelled.data_hash)
    log.info(
        "lifter data: %d train frames (%d sequences), %d test frames; hash %s; %.0f s",
        train_pairs.starts[-1], train_pairs.n_sequences, test_pairs.starts[-1], data_hash,
        time.perf_counter() - clock,
    )  # fmt: skip
    return _LifterData(train_pairs, test_pairs, unlabelled, data_hash)


def _models(config: LifterTrainConfig, init_from: Path | None) -> tuple[TemporalLifter, TrajectoryModel | None]:
    """Fresh networks, or ours from ``init_from`` (its network configuration must match)."""
    model = TemporalLifter(config.lifter_config())
    trajectory = None
    if config.trajectory:
        traj_cfg = dataclasses.replace(config.lifter_config(), input_norm="person_focal")
        trajectory = TrajectoryModel.for_lifter(traj_cfg)
    if init_from is not None:
        start, start_traj, _ = load_lifter_checkpoint(init_from)
        if start.config != model.config:
            raise ValueError(f"{init_from} was trained with {start.config}, not {model.config}")
        model.load_state_dict(start.state_dict())
        if trajectory is not None and start_traj is not None:
            trajectory.load_state_dict(start_traj.state_dict())
        log.info("lifter: continuing from %s", init_from)
    return model, trajectory


def train_lifter(
    config: LifterTrainConfig, data: DataConfig, out: Path | None, init_from: Path | None = None
) -> LifterResult:
    """Synthesise (cached) train and test pairs, train, evaluate on test, save to `out` if given.

    init_from: continue from this checkpoint of ours (its network configuration must match).
    """
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(config.threads)
    clock = time.perf_counter()
    pairs = _lifter_data(config, data)
    model, trajectory = _models(config, init_from)

    ema = None
    if config.ema_decay > 0:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)

    def kept() -> TemporalLifter:
        """The model a snapshot or the result holds: the moving average where there is one."""
        return ema.module if ema is not None else model

    def save(path: Path, extra: dict, epoch: int | None = None) -> None:
        meta = TrainingMetadata(config.seed, {**config.to_dict(), **extra}, pairs.data_hash, epoch)
        save_lifter_checkpoint(path, kept().eval(), trajectory.eval() if trajectory else None, meta)

    def snapshot(step: int) -> None:
        if out is not None:
            save(out.with_name(f"{out.stem}.step{step}.pt"), {"steps": step})
            model.train()
            if trajectory is not None:
                trajectory.train()
            log.info("lifter: snapshot at step %d", step)

    losses = fit_lifter(model, pairs.train, config, None, snapshot, trajectory, pairs.unlabelled, ema)
    model = kept()
    test_mm, root_mm = evaluate_lifter(model, pairs.test, config.noise, config.eval_synth_seed, trajectory)
    clean_mm, _ = evaluate_lifter(model, pairs.test, None, config.eval_synth_seed)
    seconds = time.perf_counter() - clock
    log.info("lifter: test MPJPE %.1f mm (noisy 2D), %.1f mm (exact 2D); %.0f s", test_mm, clean_mm, seconds)
    if root_mm is not None:
        log.info("trajectory: test root error %.1f mm (noisy 2D)", root_mm)
    if out is not None:
        per_epoch = max(int(pairs.train.starts[-1]) // (config.batch_size * config.chunk), 1)
        extra = {"steps": len(losses), "test_mpjpe_mm": test_mm, "test_mpjpe_exact2d_mm": clean_mm,
                 "test_root_error_mm": root_mm, "init_from": str(init_from) if init_from is not None else None,
                 "seconds": seconds}  # fmt: skip
        save(out, extra, int(math.ceil(len(losses) / per_epoch)))
        log.info("wrote %s (%.1f MB)", out, Path(out).stat().st_size / 1e6)
    return LifterResult(model, test_mm, clean_mm, len(losses), seconds, pairs.data_hash)
