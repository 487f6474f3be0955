"""A batch of short clips: ``python -m backend batch`` on worker processes against one ``estimate``
command per clip, one after another (what a script did before), in the same run.

Cuts ``--clips`` clips of ``--frames`` frames from the demo (the man), runs both ways with the fast
preset, and prints the wall times and their ratio, plus which worker processes ran which clips.

Usage: .venv/bin/python bench/batch_speed.py [--clips 8] [--frames 30] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "demo.mp4"


def cut(folder: Path, clips: int, frames: int) -> list[Path]:
    import imageio_ffmpeg

    out = []
    for i in range(clips):
        path = folder / f"clip{i}.mp4"
        start = 0.5 + i * (6.0 / clips)
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-ss", f"{start:.2f}", "-i",
                        str(DEMO), "-frames:v", str(frames), "-an", str(path)], check=True)  # fmt: skip
        out.append(path)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        clips = cut(folder, args.clips, args.frames)
        (Path(tmp) / "seq").mkdir()
        clock = time.perf_counter()
        for clip in clips:
            subprocess.run([sys.executable, "-m", "backend", "estimate", str(clip), "--out",
                            str(Path(tmp) / "seq" / f"{clip.stem}.motion.npz"), "--preset", "fast", "--device", "cpu"],
                           cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        sequential = time.perf_counter() - clock
        clock = time.perf_counter()
        subprocess.run([sys.executable, "-m", "backend", "batch", str(folder), str(Path(tmp) / "batch"), "--jobs",
                        str(args.jobs), "--preset", "fast", "--device", "cpu"], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        batch = time.perf_counter() - clock
        summary = json.loads((Path(tmp) / "batch" / "batch_summary.json").read_text())
    workers = sorted({c["worker"] for c in summary["clips"]})
    print(f"| {args.clips} clips x {args.frames} frames, fast preset | wall s |")
    print("|---|---|")
    print(f"| one `estimate` command per clip, one after another | {sequential:.1f} |")
    print(f"| `batch --jobs {args.jobs}` ({len(workers)} worker processes, {summary['counts']['done']} clips done) "
          f"| {batch:.1f} |")
    print(f"| ratio | {sequential / batch:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
