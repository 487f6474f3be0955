"""How still planted feet stay in a motion file (no ground truth needed; the README's demo numbers).

A "run" is a stretch of at least ``--min-frames`` consecutive frames in which a foot point (heel or big
toe) has a contact probability above 0.5 and its world height is at least ``--min-height`` metres
(e.g. 1.0 keeps the demo's runs on the box). For every run, the spread is the largest distance of the
point (world keypoints) from the run's mean spot; the script prints the median and the largest spread
over runs, the number of runs, the median height the runs stand at, and the highest the lowest foot point
gets between ``--air`` frames (a jump or flip must still leave the ground).

Usage: .venv/bin/python bench/planted_feet.py OUT.motion.npz [--min-height 1.0] [--air 165 190]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.errors import BadInput  # noqa: E402
from backend.geometry.frames import FOOT_POINTS  # noqa: E402
from backend.io import motion as motion_io  # noqa: E402


def contact_runs(contact: np.ndarray, min_frames: int) -> list[tuple[int, int, int]]:
    """(point, first, last + 1) of every run of at least ``min_frames`` True frames of contact (T, 4)."""
    runs = []
    for p in range(contact.shape[1]):
        edges = np.diff(np.concatenate([[0], contact[:, p].astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs += [(p, int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= min_frames]
    return runs


def spreads_mm(world: np.ndarray, runs: list[tuple[int, int, int]]) -> list[float]:
    """Largest distance (mm) of each run's point (world keypoints (T, K, 3)) from the run's mean spot."""
    out = []
    for p, a, b in runs:
        points = world[a:b, FOOT_POINTS[p]]
        out.append(float(np.linalg.norm(points - points.mean(0), axis=-1).max() * 1000.0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("motion", type=Path)
    parser.add_argument("--min-height", type=float, default=None, help="metres; runs lower are ignored")
    parser.add_argument("--min-frames", type=int, default=5)
    parser.add_argument("--air", type=int, nargs=2, default=None, help="first and last frame of a jump")
    args = parser.parse_args()
    try:
        person = motion_io.load(args.motion).person()
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    world = person["keypoints3d_world"].astype(np.float64)
    contact = person["contacts"] > 0.5
    if args.min_height is not None:
        contact &= world[:, list(FOOT_POINTS), 2] >= args.min_height
    runs = contact_runs(contact, args.min_frames)
    spread = spreads_mm(world, runs)
    report: dict[str, object] = {
        "runs": len(runs),
        "spread_median_mm": round(float(np.median(spread)), 1) if spread else None,
        "spread_max_mm": round(max(spread), 1) if spread else None,
        "support_height_m": round(float(np.median([world[a:b, FOOT_POINTS[p], 2].mean() for p, a, b in runs])), 3)
        if runs else None,
    }
    if args.air is not None:
        index = person["frame_index"].astype(np.int64)
        air = (index >= args.air[0]) & (index <= args.air[1])
        report["lowest_foot_in_air_m"] = round(float(world[air][:, list(FOOT_POINTS), 2].min(1).max()), 3)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
