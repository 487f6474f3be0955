"""Long clips: fit time per frame and peak memory against clip length, windowed or whole.

Each run is a fresh subprocess that fits a synthetic clip of N frames (Anny walking in place and
waving, exact 2D and 3D observations; a short schedule so that long clips finish in minutes) with
``fit_windowed`` and reports the fit's seconds and the process's peak resident memory.

Usage: .venv/bin/python bench/long_fit.py [--frames 900 3600] [--whole]   (--whole: one window for all)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CHILD = r"""
import json, math, resource, sys, time
import numpy as np, roma, torch
sys.path.insert(0, {root!r})
from backend import threads
threads.configure()
from backend.body.anny_body import AnnyBody
from backend.body.model import CanonicalPose
from backend.config import FitConfig, FitSchedule, WindowConfig
from backend.fit.losses import root_relative
from backend.fit.optimize import FitInputs, TemporalFitter
from backend.fit.windows import fit_windowed
from backend.geometry.camera import project
from backend.geometry.skeleton import KEYPOINT_NAMES
body = AnnyBody()
t = {frames}
s = torch.arange(t) / 30.0 * 2 * math.pi / 1.5
pose = torch.zeros(t, 21, 3); pose[:, 15, 2] = -1.0 + 0.5 * torch.sin(s); pose[:, 0, 0] = -0.5 * torch.sin(s).clamp(min=0)
pose[:, 3, 0] = 0.8 * torch.sin(s).clamp(min=0)
orient = roma.rotvec_to_rotmat(torch.tensor([math.pi, 0.0, 0.0])).expand(t, 3, 3)
transl = torch.stack([0.3 * torch.sin(s / 7), torch.full((t,), 0.1), torch.full((t,), 4.0)], 1)
k = torch.tensor([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
rest = body.rest_state(torch.full((6,), 0.5))
kp = torch.cat([body.forward(CanonicalPose(orient[a:a+500], roma.rotvec_to_rotmat(pose[a:a+500]), transl[a:a+500]), rest).keypoints.detach() for a in range(0, t, 500)])
inputs = FitInputs(kp2d=project(kp, k).numpy(), conf2d=np.full((t, len(KEYPOINT_NAMES)), 0.9),
    lifted=root_relative(kp, 11, 12).numpy(), conf3d=np.ones((t, len(KEYPOINT_NAMES))),
    times=np.arange(t) / 30.0, intrinsics=k.numpy(), image_height=720)
cfg = FitConfig(schedule=FitSchedule(iters_global=20, iters_pose3d=60, iters_body=60, iters_all=30, iters_contact=0))
windows = WindowConfig(frames=t if {whole} else 900, overlap=30)
start = time.perf_counter()
result = fit_windowed(TemporalFitter(body, cfg, torch.device("cpu")), inputs, lambda e: None, lambda: False, windows)
seconds = time.perf_counter() - start
err = (result.keypoints3d - kp.numpy())
print(json.dumps({{"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "windows": len(result.stats.get("windows", [[0, t]])), "mpjpe_mm": float(1000 * np.linalg.norm(err, axis=-1).mean())}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[900, 3600])
    parser.add_argument("--whole", action="store_true", help="one window for the whole clip (the old way)")
    args = parser.parse_args()
    print("| frames | windows | fit s | s per frame | peak memory MB | MPJPE mm |")
    print("|---|---|---|---|---|---|")
    for frames in args.frames:
        code = _CHILD.format(root=str(ROOT), frames=frames, whole=args.whole)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {frames} | {r['windows']} | {r['seconds']:.1f} | {r['seconds'] / frames:.4f} | {r['peak_mb']:.0f} "
              f"| {r['mpjpe_mm']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
