"""``python -m backend bench accuracy|collision|real|build-real|crowd``: argument parsing and dispatch (no heavy imports)."""

from __future__ import annotations

import argparse
import dataclasses
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
    acc.add_argument("--lifter", choices=["fused", "videopose", "mediapipe"], default=None,
                     help="3D evidence (default: the estimate's default)")  # fmt: skip
    acc.add_argument("--fit-set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    acc.add_argument("--fusion-weight", type=float, default=None, help="share of the learned lifter (fused)")
    acc.add_argument("--agreement", type=float, default=None, help="fused: agreement scale in metres (0: off)")
    acc.add_argument("--lifter-weights", type=Path, default=None, help="lifter checkpoint (default: shipped)")
    acc.add_argument("--still-camera", action="store_true", help="estimate without the camera-motion stage")
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
    real = kinds.add_parser(
        "real", help="run the real footage of ../shared/realbench (calibrated 3D ground truth) as monocular clips"
    )
    real.add_argument("--data", type=Path, default=None, help="the realbench folder (default: ../shared/realbench)")
    real.add_argument("--views", nargs="+", default=None, help="views to run (default: all)")
    real.add_argument("--intrinsics", choices=["none", "true", "both"], default="both",
                      help="pipeline runs without intrinsics (as users run it), with the calibrated ones, or both")  # fmt: skip
    real.add_argument("--rows", nargs="+", choices=["default", "fused", "videopose", "mediapipe"],
                      default=["default", "fused", "videopose", "mediapipe"], help="pipeline runs by lifter")  # fmt: skip
    real.add_argument("--preset", choices=PRESETS, default="balanced")
    real.add_argument("--lifter-weights", type=Path, default=None, help="lifter checkpoint (default: shipped)")
    real.add_argument("--fusion-weight", type=float, default=None, help="share of the learned lifter (fused)")
    real.add_argument("--agreement", type=float, default=None, help="fused: agreement scale in metres (0: off)")
    real.add_argument("--fit-set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                      help="change one fit setting (as estimate --fit-set)")  # fmt: skip
    real.add_argument("--out", type=Path, default=None, help="JSON report (default: none, table in the log)")
    real.add_argument("--verbose", action="store_true")
    build = kinds.add_parser(
        "build-real",
        help="build a second real-footage bench (two people, four calibrated cameras) from the pose2sim wheel",
    )
    build.add_argument("--out", type=Path, default=None, help="default: ~/.cache/video2anim/realbench_multi")
    build.add_argument("--cache-dir", type=Path, default=None, help="default: ~/.cache/video2anim/pose2sim")
    build.add_argument("--check", type=Path, default=None,
                       help="a realbench folder to compare the builder with on the single-person capture")  # fmt: skip
    build.add_argument("--verbose", action="store_true")
    crowd = kinds.add_parser(
        "crowd", help="render two and three people crossing (exact identities), score identity switches"
    )
    crowd.add_argument("--cases", type=int, default=None, help="run only the first N cases")
    crowd.add_argument("--cache-dir", type=Path, default=None, help="rendered clips (default: ~/.cache/video2anim/bench)")
    crowd.add_argument("--out", type=Path, default=None, help="JSON report (default: none, table in the log)")
    crowd.add_argument("--verbose", action="store_true")


def _run_crowd(args: argparse.Namespace) -> int:
    import json

    from backend.io.atomic import atomic_path
    from bench.crowd import run_crowd, table

    rows = run_crowd(args.cases, args.cache_dir)
    log.info("crowd bench (identities, frame by frame against the rendered people):\n%s", table(rows))
    if args.out is not None:
        with atomic_path(args.out, suffix=".json") as tmp:
            tmp.write_text(json.dumps(rows, indent=1))
    return 0


def _run_real(args: argparse.Namespace) -> int:
    from backend.config import preset_fit, with_setting
    from bench.real import DEFAULT_DATA, RealBenchConfig, run_real

    fit = preset_fit(args.preset)
    for assignment in args.fit_set:
        fit = with_setting(fit, assignment)
    data = args.data or DEFAULT_DATA
    if not (data / "gt.npz").is_file():
        raise BadInput(f"No realbench at {data}: pass --data with the folder holding gt.npz and the videos.")
    config = RealBenchConfig(
        data=data, views=tuple(args.views) if args.views else None, preset=args.preset, fit=fit,
        lifter_weights=str(args.lifter_weights) if args.lifter_weights else None,
        intrinsics=args.intrinsics, rows=tuple(args.rows),
    )  # fmt: skip
    if args.fusion_weight is not None:
        config = dataclasses.replace(config, fusion_weight=args.fusion_weight)
    if args.agreement is not None:
        config = dataclasses.replace(config, agreement_m=args.agreement)
    run_real(config, args.out)
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Run the chosen bench; returns the exit code (0)."""
    if args.bench == "real":
        return _run_real(args)
    if args.bench == "build-real":
        from bench.real_build import build

        cache = Path.home() / ".cache" / "video2anim"
        out = args.out or cache / "realbench_multi"
        views = build(out, args.cache_dir or cache / "pose2sim", args.check)
        log.info("wrote %s: views %s (run it: python -m backend bench real --data %s)", out, " ".join(views), out)
        return 0
    if args.cases is not None and args.cases < 1:
        raise BadInput("--cases must be at least 1.")
    if args.bench == "crowd":
        return _run_crowd(args)
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
    from backend.config import LiftConfig, preset_fit, with_setting
    from bench.accuracy import BenchConfig, run_accuracy

    fit = preset_fit(args.preset)
    for assignment in args.fit_set:
        fit = with_setting(fit, assignment)
    config = BenchConfig(
        subset=args.subset,
        max_cases=args.cases,
        lifter=args.lifter or LiftConfig().method,
        fusion_weight=LiftConfig().fusion_weight if args.fusion_weight is None else args.fusion_weight,
        agreement_m=LiftConfig().agreement_m if args.agreement is None else args.agreement,
        fit=fit,
        lifter_weights=str(args.lifter_weights) if args.lifter_weights is not None else None,
        preset=args.preset,
        device=args.device,
        cache_dir=args.cache_dir,
        motion_dir=args.keep_motions,
        camera_motion=not args.still_camera,
    )
    run_accuracy(config, args.out)
    return 0
