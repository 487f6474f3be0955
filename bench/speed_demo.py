"""Speed and quality benchmark on the bundled demo clip (the README table).

Runs the real command line in a subprocess, as a user would, and prints a markdown table:
wall time, per-stage frames/s and seconds, peak memory, reprojection error and jitter.

Usage: .venv/bin/python bench/speed_demo.py [--preset balanced] [--device auto] [--no-preview]
       [--fit-set SECTION.FIELD=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.io import motion  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--video", type=Path, default=ROOT / "demo" / "demo.mp4")
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-preview", action="store_true")
    parser.add_argument("--fit-set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="passed to the estimate (e.g. schedule.rel_tol=1e-5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.motion.npz"
        cmd = [sys.executable, "-m", "backend", "estimate", str(args.video), "--out", str(out),
               "--preset", args.preset, "--device", args.device, "--events"]  # fmt: skip
        if not args.no_preview:
            cmd += ["--preview", str(Path(tmp) / "bench.mp4")]
        for setting in args.fit_set:
            cmd += ["--fit-set", setting]
        clock = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - clock
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        meta = motion.load(out).meta
    timings, fps, metrics = meta["timings_s"], meta["fps_per_stage"], meta["metrics"]
    frames = meta["frame_count"]
    estimate_s = sum(v for k, v in timings.items() if k != "preview")
    rows = [
        (
            "clip",
            f"{Path(args.video).name}: {frames} frames, {meta['image_size'][0]}x{meta['image_size'][1]}",
        ),
        ("preset / device", f"{args.preset} / {meta['device']}"),
        ("wall time, whole command", f"{wall:.1f} s ({frames / wall:.1f} frames/s)"),
        ("stages decode..write", f"{estimate_s:.1f} s"),
    ]
    for stage in ("detect", "fit"):
        rows.append((f"  {stage}", f"{fps.get(stage, 0):.1f} frames/s ({timings.get(stage, 0):.1f} s)"))
    rows.append((f"  lift ({meta['lifter']})", f"{1000 * timings.get('lift', 0):.0f} ms"))
    if "preview" in timings:
        rows.append(
            (
                "  preview (mp4 + png)",
                f"{frames / max(timings['preview'], 1e-6):.1f} frames/s ({timings['preview']:.1f} s)",
            )
        )
    rows += [
        ("peak memory (RSS)", f"{peak_mb:.0f} MB"),
        (
            "reprojection median / mean (conf > 0.5)",
            f"{metrics['reprojection_median_px']:.2f} / {metrics['reprojection_mean_px']:.2f} px",
        ),
        ("jitter: mean 3D acceleration, fitted", f"{metrics['accel_fitted_mm']:.1f} mm/frame²"),
        ("jitter: MediaPipe world landmarks", f"{metrics['accel_mediapipe_world_mm']:.1f} mm/frame²"),
        (
            "jitter ratio (fitted / MediaPipe)",
            f"{metrics['accel_fitted_mm'] / metrics['accel_mediapipe_world_mm']:.3f}",
        ),
        ("subject frames with detections", f"{metrics['valid_frames']} / {frames}"),
    ]
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(
        json.dumps({"timings_s": timings, "fps": fps, "metrics": metrics, "wall_s": round(wall, 2)}),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
