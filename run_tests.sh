#!/usr/bin/env bash
# Set everything up (with the dev extras), then lint and run the fast test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh dev
.venv/bin/ruff check backend blender_addon tests bench build_addon.py
.venv/bin/python -m pytest -q "$@"
