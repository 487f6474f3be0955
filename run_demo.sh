#!/usr/bin/env bash
# Set everything up, then estimate the motion of the bundled demo clip:
# out/demo.motion.npz, out/demo_preview.mp4 and out/demo_preview.png.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
mkdir -p out
.venv/bin/python -m backend estimate demo/demo.mp4 --out out/demo.motion.npz --preview out/demo_preview.mp4 "$@"
