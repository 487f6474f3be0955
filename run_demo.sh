#!/usr/bin/env bash
# Set everything up, then estimate the motion of the bundled demo clip and build the Blender scene:
# out/demo.motion.npz, out/demo_preview.mp4 (+ .png), out/demo.blend and out/demo.fbx.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh dev   # dev extras include bpy (headless Blender) for the .blend and the FBX
mkdir -p out
.venv/bin/python -m backend estimate demo/demo.mp4 --out out/demo.motion.npz --preview out/demo_preview.mp4 "$@"
.venv/bin/python -m blender_addon.scene_cli out/demo.motion.npz --video demo/demo.mp4 \
    --blend out/demo.blend --fbx out/demo.fbx
