#!/usr/bin/env bash
# Set up the project's environment in .venv (idempotent; quick when nothing changed).
# Usage: scripts/setup.sh [dev]   ("dev" adds pytest, ruff, bpy for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 is needed (mediapipe 0.10.21 and bpy 5.0.1 require it); set PYTHON=/path/to/python3.11" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${extra:+-$extra}"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip
  if ! python -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      python -m pip install -q "torch>=2.4,<2.14"          # CUDA build where there is a GPU
    else
      python -m pip install -q "torch==2.13.0"             # CPU build, pinned (no CUDA download)
    fi
  fi
  if [ "$extra" = "dev" ]; then
    python -m pip install -q -e ".[dev]"
  else
    python -m pip install -q -e .
  fi
  # mediapipe brings opencv-contrib-python; a second OpenCV wheel would shadow it.
  if python -m pip show -q opencv-python-headless >/dev/null 2>&1 || python -m pip show -q opencv-python >/dev/null 2>&1; then
    python -m pip uninstall -q -y opencv-python-headless opencv-python || true
    python -m pip install -q --force-reinstall --no-deps "opencv-contrib-python==$(python -m pip show opencv-contrib-python | awk '/^Version/{print $2}')"
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# The tests read our FBX files back with Assimp (Debian's assimp-utils), a reader we did not write.
if [ "$extra" = "dev" ] && ! command -v assimp >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q assimp-utils >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q assimp-utils >/dev/null 2>&1; } ||
      echo "warning: could not install assimp-utils; the FBX reader test will fail" >&2
  else
    echo "warning: install Debian's assimp-utils (sudo apt-get install assimp-utils) for the FBX reader test" >&2
  fi
fi
# One-time caches (Anny's model data, MediaPipe's multi-person bundle); quick once built.
python -m backend prepare
