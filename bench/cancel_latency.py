"""Cancel latency: send ``cancel`` to ``python -m backend estimate --events`` at many moments of a run
and measure how long the process takes to exit (the contract: within one second, exit code 3).

    .venv/bin/python bench/cancel_latency.py [--step 0.5] [--until 30] [--end 60]

Prints one line per try (the stage running when cancel was sent) and the worst case per stage.
Run it on an idle machine: it starts one backend at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "demo.mp4"


def cancel_once(delay_s: float, end: int, folder: Path) -> tuple[str, int, float, list[str]]:
    """(stage at the cancel, exit code, seconds from cancel to exit, files left in ``folder``)."""
    argv = [sys.executable, "-m", "backend", "estimate", str(DEMO), "--out", str(folder / "d.motion.npz"),
            "--preview", str(folder / "p.mp4"), "--events", "--end", str(end), "--preset", "fast"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    events: list[tuple[float, dict]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append((time.perf_counter(), json.loads(line)))

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(delay_s)
    sent = time.perf_counter()
    try:
        assert proc.stdin is not None
        proc.stdin.write("cancel\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass
    code = proc.wait()
    elapsed = time.perf_counter() - sent
    reader.join()
    stage = "start-up"
    for when, event in events:
        if when > sent:
            break
        if event["event"] == "stage":
            stage = event["name"]
        elif event["event"] == "progress":
            stage = event["stage"]
        elif event["event"] == "result":
            stage = "finished"
    return stage, code, elapsed, sorted(p.name for p in folder.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=float, default=0.5, help="seconds between cancel moments")
    parser.add_argument("--until", type=float, default=30.0, help="last cancel moment (s after start)")
    parser.add_argument("--end", type=int, default=60, help="frames of the demo to process")
    args = parser.parse_args()
    worst: dict[str, float] = {}
    bad = 0
    delay = args.step
    while delay <= args.until:
        with tempfile.TemporaryDirectory() as tmp:
            stage, code, elapsed, left = cancel_once(delay, args.end, Path(tmp))
        ok = (code == 3 and not left) or (stage == "finished" and code == 0)
        bad += not ok
        if stage != "finished":
            worst[stage] = max(worst.get(stage, 0.0), elapsed)
        print(f"cancel at {delay:5.1f} s  stage {stage:9s}  exit {code}  after {elapsed:.2f} s  left {left}"
              f"{'' if ok else '  <-- WRONG'}", flush=True)  # fmt: skip
        delay += args.step
    print("worst exit time after cancel, per stage: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in worst.items()))  # fmt: skip
    print(f"worst overall: {max(worst.values()):.2f} s over {len(worst)} stages; wrong outcomes: {bad}")
    return 1 if bad or max(worst.values()) > 1.0 else 0


if __name__ == "__main__":
    sys.exit(main())
