"""A motion file made headless -> ``.blend`` + ``.fbx`` (used by ``run_demo.sh``)::

python -m blender_addon.scene_cli OUT.motion.npz --video CLIP.mp4 --blend OUT.blend --fbx OUT.fbx
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import motion_data as md
from .batch import scene_files
from .export import PRESETS as FBX_PRESETS
from .safe_files import OutputPathError

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m blender_addon.scene_cli", description=__doc__.split("\n")[0]
    )
    parser.add_argument("motion", type=Path)
    parser.add_argument("--video", type=Path, default=None, help="the clip, shown behind the camera")
    parser.add_argument("--blend", type=Path, required=True)
    parser.add_argument("--fbx", type=Path, required=True)
    parser.add_argument("--fbx-preset", choices=sorted(FBX_PRESETS), default="unity")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        for path in (args.blend, args.fbx):
            path.resolve().parent.mkdir(parents=True, exist_ok=True)
        blend, fbx = scene_files(
            args.motion, args.video, args.blend.resolve(), args.fbx.resolve(), args.fbx_preset
        )
    except (md.MotionDataError, OutputPathError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("wrote %s and %s", blend, fbx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
