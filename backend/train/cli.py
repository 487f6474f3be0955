"""``python -m backend train-prior|train-lifter``: argument parsing and dispatch (no heavy imports)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from backend.io.checkpoints import WEIGHTS_DIR

log = logging.getLogger(__name__)

WEIGHTS = WEIGHTS_DIR


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-prior`` and ``train-lifter`` sub-commands to a sub-parser set."""
    prior = sub.add_parser("train-prior", help="train the VPoser-architecture pose prior on ../shared/mocap")
    prior.add_argument("--epochs", type=int, default=40)
    prior.add_argument("--seed", type=int, default=0)
    prior.add_argument("--max-minutes", type=float, default=8.0, help="stop after this much training time")
    prior.add_argument("--out", type=Path, default=WEIGHTS / "vposer_anny.pt")
    lifter = sub.add_parser("train-lifter", help="train the temporal lifter on synthetic Anny sequences")
    lifter.add_argument("--receptive-field", type=int, choices=[27, 81, 243], default=81)
    lifter.add_argument("--channels", type=int, default=256)
    lifter.add_argument("--epochs", type=int, default=20)
    lifter.add_argument("--dropout", type=float, default=0.05)
    lifter.add_argument("--lr", type=float, default=1e-3, help="initial learning rate (decays to 5e-5)")
    lifter.add_argument("--init-from", type=Path, default=None, help="continue training this checkpoint")
    lifter.add_argument("--causal", action="store_true", help="causal convolutions (streaming)")
    lifter.add_argument("--trajectory", action="store_true", help="also train the root trajectory model")
    lifter.add_argument(
        "--semi-supervised",
        action="store_true",
        help="add the back-projection loss on unlabelled 2D (needs --trajectory)",
    )
    lifter.add_argument(
        "--fixed-cameras", action="store_true",
        help="train on a few fixed cameras per segment (the old way) instead of a new camera per window",
    )
    lifter.add_argument(
        "--proportion-sigma", type=float, default=0.0,
        help="spread (log scale) of each window's random body proportions; 0 (default) keeps Anny's; 0.08 was tried",
    )
    lifter.add_argument(
        "--root-weight", type=float, default=0.0,
        help="weight of the multi-root loss (keypoints relative to shoulders and hips too); 0: off",
    )
    lifter.add_argument(
        "--ema-decay", type=float, default=0.0,
        help="keep an exponential moving average of the weights (e.g. 0.999) and save it; 0: off",
    )
    lifter.add_argument("--batch-size", type=int, default=32)
    lifter.add_argument(
        "--bias-frac", type=float, default=None,
        help="per-sequence constant offset of each 2D keypoint, in box sizes (detector definitions differ "
        "from the body model's keypoints; default: the noise model's)",
    )
    lifter.add_argument("--seed", type=int, default=0)
    lifter.add_argument("--max-minutes", type=float, default=15.0, help="stop after this much training time")
    lifter.add_argument("--out", type=Path, default=WEIGHTS / "lifter.pt")
    for p in (prior, lifter):
        p.add_argument("--mocap-root", type=Path, default=None, help="default: ../shared/mocap")
        p.add_argument("--cache-dir", type=Path, default=None, help="default: ~/.cache/video2anim/train")
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        p.add_argument("--verbose", action="store_true")


def run_train(args: argparse.Namespace) -> int:
    """Run the chosen training command; returns the exit code (0)."""
    from backend.train.data import DataConfig

    data = DataConfig(cache_dir=args.cache_dir)
    if args.mocap_root is not None:
        data = dataclasses.replace(data, mocap_root=args.mocap_root)
    if args.command == "train-prior":
        from backend.train.prior import PriorTrainConfig, train_prior

        cfg = PriorTrainConfig(
            epochs=args.epochs, seed=args.seed, max_minutes=args.max_minutes, threads=args.threads
        )
        res = train_prior(cfg, data, args.out)
        log.info("val reconstruction %.2f deg/joint, KL %.2f", res.val_geodesic_deg, res.val_kl)
        return 0
    from backend.train.lifter import LifterTrainConfig, train_lifter
    from backend.train.proportions import ProportionConfig

    cfg = LifterTrainConfig(
        receptive_field=args.receptive_field,
        channels=args.channels,
        epochs=args.epochs,
        dropout=args.dropout,
        lr=args.lr,
        causal=args.causal,
        trajectory=args.trajectory,
        semi_supervised=args.semi_supervised,
        batch_size=args.batch_size,
        fresh_cameras=not args.fixed_cameras,
        seed=args.seed,
        max_minutes=args.max_minutes,
        threads=args.threads,
        proportions=ProportionConfig(sigma=args.proportion_sigma),
        root_weight=args.root_weight,
        ema_decay=args.ema_decay,
    )
    if args.bias_frac is not None:
        cfg = dataclasses.replace(cfg, noise=dataclasses.replace(cfg.noise, bias_frac=args.bias_frac))
    res = train_lifter(cfg, data, args.out, args.init_from)
    log.info("held-out test MPJPE %.1f mm (exact 2D: %.1f mm)", res.test_mpjpe_mm, res.test_mpjpe_clean_mm)
    return 0
