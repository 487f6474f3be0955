#!/usr/bin/env bash
# Set everything up (with the dev extras), then run the fast test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh dev
.venv/bin/python -m pytest -q "$@"
