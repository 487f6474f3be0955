"""``python -m backend bench accuracy|collision``: argument parsing and dispatch (no heavy imports)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from backend.config import PRESETS
from backend.errors import BadInput

log = logging.getLogger(__name__)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command (with its ``accuracy`` and ``collision`` sub-commands) to a sub-parser set."""
    bench = sub.add_parser("bench", help="benchmarks against exact ground truth")
    kinds = bench.add_subparsers(dest="bench", required=True)
    acc = kinds.add_parser(
        "accuracy",
        help="render held-out mocap on Anny with Blender, estimate it, score against the ground truth",
    )
    acc.add_argument("--subset", choices=["ci", "full"], default="ci", help="ci: one small case; full: all")
    acc.add_argument("--cases", type=int, default=None, help="run only the first N cases of the subset")
    acc.add_argument("--out", type=Path, default=None, help="JSON report (default: none, table in the log)")
    acc.add_argument("--lifter", choices=["videopose", "mediapipe"], default="videopose")
    acc.add_argument("--lifter-weights", type=Path, default=None, help="lifter checkpoint (default: shipped)")
    acc.add_argument("--preset", choices=PRESETS, default="balanced")
    acc.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    acc.add_argument(
        "--cache-dir", type=Path, default=None, help="rendered clips (default: ~/.cache/video2anim/bench)"
    )
    acc.add_argument("--keep-motions", type=Path, default=None, help="keep the motion files in this folder")
    acc.add_argument("--verbose", action="store_true")
    col = kinds.add_parser(
        "collision",
        help="fit the rendered clips with the self-collision term off and on, measure the fitted meshes",
    )
    col.add_argument("--subset", choices=["ci", "full"], default="ci", help="ci: one small case; full: all")
    col.add_argument("--cases", type=int, default=None, help="run only the first N cases of the subset")
    col.add_argument("--out", type=Path, default=None, help="JSON report (default: none, table in the log)")
    col.add_argument(
        "--w-collision",
        type=float,
        nargs="+",
        default=None,
        help="weights of the 'on' fits (default: FitConfig's)",
    )
    col.add_argument(
        "--w-mesh-collision",
        type=float,
        nargs="+",
        default=None,
        help="weights of the 'mesh' fits: capsules plus the mesh collision stage (default: FitConfig's)",
    )
    col.add_argument(
        "--cache-dir", type=Path, default=None, help="rendered clips (default: ~/.cache/video2anim/bench)"
    )
    col.add_argument("--verbose", action="store_true")


def run_bench(args: argparse.Namespace) -> int:
    """Run the chosen bench; returns the exit code (0)."""
    if args.cases is not None and args.cases < 1:
        raise BadInput("--cases must be at least 1.")
    if args.bench == "collision":
        from bench.collision import CollisionBenchConfig, run_collision

        if args.w_collision is not None and min(args.w_collision) <= 0:
            raise BadInput("--w-collision weights must be positive.")
        if args.w_mesh_collision is not None and min(args.w_mesh_collision) <= 0:
            raise BadInput("--w-mesh-collision weights must be positive.")
        weights = tuple(args.w_collision) if args.w_collision is not None else ()
        mesh_weights = tuple(args.w_mesh_collision) if args.w_mesh_collision is not None else ()
        config = CollisionBenchConfig(args.subset, args.cases, weights, args.cache_dir, mesh_weights)
        run_collision(config, args.out)
        return 0
    from bench.accuracy import BenchConfig, run_accuracy

    config = BenchConfig(
        subset=args.subset,
        max_cases=args.cases,
        lifter=args.lifter,
        lifter_weights=str(args.lifter_weights) if args.lifter_weights is not None else None,
        preset=args.preset,
        device=args.device,
        cache_dir=args.cache_dir,
        motion_dir=args.keep_motions,
    )
    run_accuracy(config, args.out)
    return 0
