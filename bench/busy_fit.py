"""How the fit slows down when another process competes for the cores (as Blender does while the
backend runs), per thread setting.

Runs the temporal fit (Anny, a synthetic 120-frame clip, a fixed schedule) in a fresh subprocess per
setting, once on an idle machine and once while ``--hogs`` busy-looping processes run beside it, and
prints a table of fit seconds and slowdowns. A setting is the backend's own thread choice
(``auto``, see ``backend/threads.py``) or a fixed torch thread count (``2p``: 2 threads with
``OMP_WAIT_POLICY=PASSIVE``).

Usage: .venv/bin/python bench/busy_fit.py [--settings auto 1 2] [--hogs 1] [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CHILD = r"""
import json, math, os, sys, time
import numpy as np, roma, torch
sys.path.insert(0, {root!r})
from backend import threads
setting = {setting!r}
used = threads.configure() if setting == "auto" else (torch.set_num_threads(int(setting.rstrip("p").split("s")[0])) or setting)
from backend.body.anny_body import AnnyBody
from backend.body.model import CanonicalPose
from backend.config import FitConfig, FitSchedule
from backend.fit.losses import root_relative
from backend.fit.optimize import FitInputs, TemporalFitter
from backend.geometry.camera import project
from backend.geometry.skeleton import KEYPOINT_NAMES
body = AnnyBody()
t = {frames}
s = torch.linspace(0, 4 * math.pi, t)
pose = torch.zeros(t, 21, 3); pose[:, 15, 2] = -1.0 + 0.4 * torch.sin(s); pose[:, 3, 0] = 0.5 * torch.sin(s).clamp(min=0)
orient = roma.rotvec_to_rotmat(torch.tensor([math.pi, 0.0, 0.0])).expand(t, 3, 3)
transl = torch.stack([0.3 * torch.sin(s), torch.full((t,), 0.1), torch.full((t,), 4.0)], 1)
k = torch.tensor([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
rest = body.rest_state(torch.full((6,), 0.5))
with torch.no_grad():
    kp = body.forward(CanonicalPose(orient, roma.rotvec_to_rotmat(pose), transl), rest).keypoints
inputs = FitInputs(kp2d=project(kp, k).numpy(), conf2d=np.full((t, len(KEYPOINT_NAMES)), 0.9),
    lifted=root_relative(kp, 11, 12).numpy(), conf3d=np.ones((t, len(KEYPOINT_NAMES))),
    times=np.arange(t) / 30.0, intrinsics=k.numpy(), image_height=720)
cfg = FitConfig(schedule=FitSchedule(iters_global=20, iters_pose3d=60, iters_body=60, iters_all=30, iters_contact=0))
start = time.perf_counter()
TemporalFitter(body, cfg, torch.device("cpu")).fit(inputs, lambda e: None, lambda: False)
print(json.dumps({{"seconds": time.perf_counter() - start, "threads": used}}))
"""


def _hog() -> None:
    while True:
        pass


def run(setting: str, frames: int) -> dict:
    code = _CHILD.format(root=str(ROOT), setting=setting, frames=frames)
    env = dict(os.environ)
    if setting != "auto":  # a fixed count: the fit's governor keeps it
        env["VIDEO2ANIM_THREADS"] = setting.rstrip("p").split("s")[0]
    if setting.endswith("p"):  # OpenMP threads sleep instead of spinning while they wait
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif "s" in setting:  # "2s10000": 2 threads spinning at most 10000 times before they sleep
        env["GOMP_SPINCOUNT"] = setting.split("s")[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=["auto", "1", "2"])
    parser.add_argument("--hogs", type=int, default=1, help="busy-looping processes beside the fit")
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args()
    print(f"| torch threads | idle: fit s | {args.hogs} busy process(es): fit s (threads chosen) | slowdown |")
    print("|---|---|---|---|")
    for setting in args.settings:
        idle = run(setting, args.frames)
        hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(args.hogs)]
        for hog in hogs:
            hog.start()
        time.sleep(1.0)
        try:
            busy = run(setting, args.frames)
        finally:
            for hog in hogs:
                hog.terminate()
        print(f"| {setting} | {idle['seconds']:.1f} ({idle['threads']}) | {busy['seconds']:.1f} ({busy['threads']}) "
              f"| {busy['seconds'] / idle['seconds']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
