"""Command line: ``python -m backend estimate|prepare|info``.

Exit codes: 0 done, 1 internal error, 2 bad input (the message says what to do), 3 cancelled.
With ``--events`` stdout carries only JSON lines; logs go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib
import logging
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from backend import protocol
from backend.cancel import CancelToken, CancelWatch
from backend.config import (
    PRESETS,
    DecodeConfig,
    EstimateConfig,
    FitConfig,
    LiftConfig,
    TrackConfig,
    preset_detect,
    preset_fit,
    with_setting,
)
from backend.errors import BadInput, Cancelled
from backend.io.outputs import remove_temporaries

log = logging.getLogger("backend")
MAX_FOCAL_PX = 1e5


class _EventsStream:
    """Keep the real stdout for events only: while open, fd 1 (and sys.stdout) go to stderr, so
    that whatever a library prints (Python or C) cannot corrupt the JSON-lines stream."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._saved_stdout = sys.stdout
        self._saved_fd = os.dup(1)
        self.stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self._saved_fd, 1)
        os.close(self._saved_fd)
        sys.stdout = self._saved_stdout
        self.stream.close()


class _Events:
    """The reporter: JSON lines on the events stream (``--events``), else stage lines in the log."""

    def __init__(self, stream: _EventsStream | None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: protocol.Event) -> None:
        if self.stream is not None:
            with self._lock:
                self.stream.write(protocol.encode(event) + "\n")
        elif event.get("event") == "stage":
            log.info("stage %d/%d: %s", event["index"], event["count"], event["name"])

    def last_words(self, event: protocol.Event) -> None:
        """From another thread as the process is ended: never wait long for the main thread's lock."""
        if self.stream is not None and self._lock.acquire(timeout=0.2):
            try:
                self.stream.write(protocol.encode(event) + "\n")
            finally:
                self._lock.release()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description="Video to 3D body motion.")
    sub = parser.add_subparsers(dest="command", required=True)
    est = sub.add_parser("estimate", help="estimate the motion of the person in a video")
    est.add_argument("video", type=Path)
    est.add_argument("--out", type=Path, required=True, help="output .motion.npz")
    _estimate_options(est)
    est.add_argument(
        "--preview", type=Path, default=None, help="write an MP4 preview (and a PNG contact sheet)"
    )
    est.add_argument("--events", action="store_true", help="JSON-lines events on stdout")
    est.add_argument("--verbose", action="store_true")
    ppl = sub.add_parser("people", help="who is in a video: every tracked person with a thumbnail, no fit")
    ppl.add_argument("video", type=Path)
    ppl.add_argument("--out", type=Path, required=True, help="output .people.npz")
    ppl.add_argument("--start", type=int, default=0, help="first frame (0-based)")
    ppl.add_argument("--end", type=int, default=None, help="last frame, exclusive")
    ppl.add_argument("--events", action="store_true", help="JSON-lines events on stdout")
    batch = sub.add_parser("batch", help="a folder of clips -> one motion file each, on every core, resumable")
    batch.add_argument("folder", type=Path, help="folder of video clips")
    batch.add_argument("out_folder", type=Path, help="where the .motion.npz files and batch_summary.json go")
    batch.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per core)")
    batch.add_argument("--force", action="store_true", help="redo clips whose motion file is already there")
    batch.add_argument("--ray", metavar="ADDRESS", default=None,
                       help="run the clips as Ray tasks: 'local' starts Ray here, 'auto' or ray://host:port joins "
                       "a cluster (needs the [ray] extra)")  # fmt: skip
    _estimate_options(batch)
    batch.add_argument("--verbose", action="store_true")
    sub.add_parser("prepare", help="one-time set-up: build caches so that the first estimate is fast")
    sub.add_parser("info", help="versions and devices")
    for optional in (_optional_cli("backend.train.cli"), _optional_cli("bench.cli")):
        if optional is not None:
            optional.add_parsers(sub)
    return parser


def _estimate_options(est: argparse.ArgumentParser) -> None:
    """The options an estimate takes (the ``estimate`` and ``batch`` commands)."""
    est.add_argument(
        "--body",
        choices=["anny", "smpl", "smplh", "smplx"],
        default="anny",
        help="body model: anny (shipped, default) or your own SMPL / SMPL-H / SMPL-X files (--model-path)",
    )
    est.add_argument(
        "--model-path",
        type=Path,
        default=None,
        help="folder (or file) of your SMPL / SMPL-H / SMPL-X model files",
    )
    est.add_argument(
        "--gender",
        choices=["neutral", "male", "female"],
        default="neutral",
        help="SMPL-family model file to use",
    )
    est.add_argument(
        "--collision",
        choices=["auto", "on", "off", "mesh"],
        default="auto",
        help="self-collision penalty of the fit: on = capsules on the skeleton; mesh = capsules and a "
        "last stage with the mesh term (triangle pairs, SMPLify-X style); auto = the preset's choice "
        "(accurate: mesh; otherwise on for the SMPL family, off for Anny)",
    )
    est.add_argument(
        "--fit-set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="change one fit setting, e.g. weights.w_3d=3000, schedule.iters_body=300, collision.w_mesh=1e5 "
        "(repeat for several; see backend/config.py)",
    )
    est.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    est.add_argument("--preset", choices=PRESETS, default="balanced")
    est.add_argument("--person", default="auto",
                     help="auto (the most prominent), all, a track id, or ids separated by commas (0,2)")  # fmt: skip
    est.add_argument("--start", type=int, default=0, help="first frame (inclusive)")
    est.add_argument("--end", type=int, default=None, help="last frame (exclusive)")
    est.add_argument("--focal-px", type=float, default=None, help="focal length in pixels")
    est.add_argument(
        "--lifter",
        choices=["fused", "videopose", "mediapipe"],
        default=LiftConfig().method,
        help="3D evidence: our learned temporal lifter, MediaPipe's world landmarks, or their "
        "confidence-weighted mean (fused)",
    )
    est.add_argument("--lifter-weights", type=Path, default=None, help="lifter checkpoint (default: shipped)")
    est.add_argument(
        "--fusion-weight", type=float, default=LiftConfig().fusion_weight, help="share of the learned lifter (fused)"
    )
    est.add_argument(
        "--prior", choices=["vposer", "none"], default="vposer", help="pose prior of the fit (default: vposer)"
    )
    est.add_argument(
        "--vposer", type=Path, default=None, help="pose prior checkpoint, ours or official VPoser v2 (.ckpt or folder)"
    )
    est.add_argument("--no-hands", action="store_true", help="do not keep hand landmarks")
    est.add_argument(
        "--still-camera", action="store_true", help="the camera stands still: do not estimate its rotation"
    )
    est.add_argument("--no-face", action="store_true", help="do not keep face landmarks")


def _optional_cli(module: str) -> ModuleType | None:
    """Commands that exist only in a repository checkout: training (``backend/train``, left out of the
    add-on's copy of the backend) and the benchmarks (``bench/``, outside the package; ``python -m
    backend`` run from the repository root finds them). Loaded by name, so the backend never imports
    the bench statically; None where the module is absent."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise


def _config(args: argparse.Namespace) -> EstimateConfig:
    if args.start < 0 or (args.end is not None and args.end <= args.start):
        raise BadInput("--start must be >= 0 and --end greater than --start.")
    if args.focal_px is not None and not (math.isfinite(args.focal_px) and 1.0 <= args.focal_px <= MAX_FOCAL_PX):
        raise BadInput(f"--focal-px must be a focal length in pixels between 1 and {MAX_FOCAL_PX:g}, not {args.focal_px}.")
    if not (math.isfinite(args.fusion_weight) and 0.0 <= args.fusion_weight <= 1.0):
        raise BadInput(f"--fusion-weight is the learned lifter's share, between 0 and 1, not {args.fusion_weight}.")
    person = str(args.person).replace(" ", "")
    if person not in ("auto", "all") and not all(part.isdigit() for part in person.split(",")):
        raise BadInput(
            "--person takes auto, all, a track id or ids separated by commas (numbers listed in the "
            "warnings and in the motion file's meta 'tracked')."
        )
    from backend.body.factory import check_body_choice  # numpy only; the model itself loads in estimate

    model_path = str(args.model_path) if args.model_path is not None else None
    check_body_choice(args.body, model_path, args.gender)
    return EstimateConfig(
        preset=args.preset,
        device=args.device,
        body=args.body,
        model_path=model_path,
        gender=args.gender,
        decode=DecodeConfig(start=args.start, end=args.end, focal_px=args.focal_px),
        detect=dataclasses.replace(
            preset_detect(args.preset),
            hands=not args.no_hands,
            face=not args.no_face,
            camera_motion=not args.still_camera,
        ),
        track=TrackConfig(person=person),
        lift=LiftConfig(
            method=args.lifter,
            fusion_weight=args.fusion_weight,
            weights=str(args.lifter_weights) if args.lifter_weights is not None else None,
            prior=args.prior,
            prior_weights=str(args.vposer) if args.vposer is not None else None,
        ),
        fit=_fit_config(args),
    )


def _fit_config(args: argparse.Namespace) -> FitConfig:
    """The preset's fit, ``--collision`` if not auto, then each ``--fit-set SECTION.FIELD=VALUE``."""
    fit = preset_fit(args.preset)
    if args.collision != "auto":
        fit = dataclasses.replace(fit, collision=dataclasses.replace(fit.collision, mode=args.collision))
    for assignment in args.fit_set:
        fit = with_setting(fit, assignment)
    return fit


def _people(args: argparse.Namespace, token: CancelToken, report: protocol.Reporter) -> int:
    from backend.pipeline.people import find_people

    if args.start < 0 or (args.end is not None and args.end <= args.start):
        raise BadInput("--start must be >= 0 and --end greater than --start.")
    find_people(args.video, args.out, DecodeConfig(start=args.start, end=args.end), report, token)
    return protocol.EXIT_OK


def _estimate(args: argparse.Namespace, token: CancelToken, report: protocol.Reporter) -> int:
    from backend.pipeline import estimate

    clock = time.perf_counter()
    summary = estimate(args.video, args.out, _config(args), args.preview, report, token)
    total = time.perf_counter() - clock
    n = summary.metrics.get("valid_frames", 0)
    log.info("wrote %s in %.1f s", summary.motion_path, total)
    for name, value in summary.fps.items():
        log.info("  %-7s %7.1f frames/s (%.1f s)", name, value, summary.timings_s.get(name, 0.0))
    for name, value in summary.metrics.items():
        log.info("  %s: %s", name, round(value, 3) if isinstance(value, float) else value)
    for path in summary.preview_paths:
        log.info("preview: %s", path)
    del n
    return protocol.EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    """``batch``: every clip of a folder; exit 1 if any clip failed, 2 if one was refused."""
    from backend.pipeline.batch import run_batch

    if not args.folder.is_dir():
        raise BadInput(f"{args.folder} is not a folder of clips.")
    if args.jobs < 0:
        raise BadInput(f"--jobs must be 0 (one per core) or more, not {args.jobs}.")
    if args.ray is not None:
        from backend.pipeline.ray_batch import run_batch_ray

        outcomes = run_batch_ray(args.folder, args.out_folder, _config(args), args.ray, args.force)
    else:
        outcomes = run_batch(args.folder, args.out_folder, _config(args), args.jobs, args.force)
    if any(o.status == "failed" for o in outcomes):
        return protocol.EXIT_INTERNAL
    return protocol.EXIT_BAD_INPUT if any(o.status == "refused" for o in outcomes) else protocol.EXIT_OK


def _prepare() -> int:
    from backend.prepare import prepare

    prepare()
    return protocol.EXIT_OK


def _info() -> int:
    import torch

    import backend

    print(
        f"backend {backend.__version__}; torch {torch.__version__}; cuda available: {torch.cuda.is_available()}"
    )
    return protocol.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(message)s",
    )
    for noisy in ("anny", "absl", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stream = _EventsStream() if getattr(args, "events", False) else None
    report = _Events(stream)
    token = CancelToken()
    watch = CancelWatch(token, lambda: _cancelled_hard(args, report))
    try:
        watch.install()
        if args.command == "estimate":
            return _estimate(args, token, report)
        if args.command == "batch":
            return _batch(args)
        if args.command == "people":
            return _people(args, token, report)
        if args.command == "prepare":
            return _prepare()
        if args.command in ("train-prior", "train-lifter"):
            return _optional_cli("backend.train.cli").run_train(args)
        if args.command == "bench":
            return _optional_cli("bench.cli").run_bench(args)
        return _info()
    except BadInput as exc:
        report(protocol.error("bad_input", str(exc)))
        print(f"error: {exc}", file=sys.stderr)
        return protocol.EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        report(protocol.error("cancelled", "Cancelled; no output was written."))
        print("cancelled: no output was written", file=sys.stderr)
        return protocol.EXIT_CANCELLED
    except MemoryError:
        message = "Out of memory: process a shorter range with --start/--end or use --preset fast."
        report(protocol.error("bad_input", message))
        print(f"error: {message}", file=sys.stderr)
        return protocol.EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            message = "The disk is full: free some space and run again."
            report(protocol.error("bad_input", message))
            print(f"error: {message}", file=sys.stderr)
            return protocol.EXIT_BAD_INPUT
        return _internal(exc, report, verbose)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one clear line, exit 1
        return _internal(exc, report, verbose)
    finally:
        watch.uninstall()
        if stream is not None:
            stream.close()


def _cancelled_hard(args: argparse.Namespace, report: _Events) -> None:
    """The cancel deadline passed inside a long native call: report, remove this run's temporary files."""
    if getattr(args, "command", "") in ("estimate", "people"):
        targets = [Path(args.out)]
        if getattr(args, "preview", None) is not None:
            targets += [Path(args.preview), Path(args.preview).with_suffix(".png")]
        remove_temporaries(targets)
    report.last_words(protocol.error("cancelled", "Cancelled; no output was written."))
    print("cancelled: no output was written", file=sys.stderr, flush=True)
    if report.stream is not None:
        report.stream.close()


def _internal(exc: BaseException, report: protocol.Reporter, verbose: bool) -> int:
    detail = "".join(traceback.format_exception(exc))
    report(protocol.error("internal", f"Internal error: {exc}", detail))
    print(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for details)", file=sys.stderr)
    if verbose:
        print(detail, file=sys.stderr)
    return protocol.EXIT_INTERNAL
