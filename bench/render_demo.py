"""Render the imported demo motion over its footage: does the body sit on the person?

Imports a motion file into a fresh scene with the add-on's API (armature, skinned body, camera),
renders chosen frames with Workbench from the imported camera on a transparent film, and
alpha-composites each render over the matching video frame (OpenCV), writing
``OUT/render_<frame>.png`` (frames in the clip's 0-based numbering).

Usage::

    .venv/bin/python -m backend estimate demo/demo.mp4 --out /tmp/demo_addon/demo.motion.npz
    .venv/bin/python bench/render_demo.py /tmp/demo_addon/demo.motion.npz OUT/ [--frames 40 110 205]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

from blender_addon import api  # noqa: E402
from blender_addon import motion_data as md  # noqa: E402

log = logging.getLogger("render_demo")
BODY_COLOUR = (0.2, 0.75, 1.0)


def video_frame(video: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of a video as BGR uint8."""
    capture = cv2.VideoCapture(str(video))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise ValueError(f"{video} has no frame {index}")
    return frame


def composite(render_rgba: np.ndarray, background_bgr: np.ndarray, opacity: float = 0.75) -> np.ndarray:
    """``render_rgba`` (H, W, 4, uint8, straight alpha) over the background, resized to the render."""
    h, w = render_rgba.shape[:2]
    back = cv2.resize(background_bgr, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    front = render_rgba[..., 2::-1].astype(np.float32)  # RGB -> BGR
    alpha = opacity * render_rgba[..., 3:4].astype(np.float32) / 255.0
    return np.clip(front * alpha + back * (1.0 - alpha), 0, 255).astype(np.uint8)


def setup_render(scene: bpy.types.Scene, percentage: int) -> None:
    """Workbench, solid colour, studio light, transparent film, PNG RGBA."""
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.film_transparent = True
    scene.render.resolution_percentage = percentage
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    shading = scene.display.shading
    shading.light, shading.color_type, shading.single_color = "STUDIO", "SINGLE", BODY_COLOUR


PERSON_COLOURS = ((0.2, 0.75, 1.0, 1.0), (1.0, 0.45, 0.2, 1.0), (0.4, 1.0, 0.3, 1.0))
"""Body colours of the people, in the file's order (``--all``)."""


def render_frames(
    motion: Path, out: Path, frames: Sequence[int], video: Path | None = None, percentage: int = 50,
    everyone: bool = False,
) -> list[Path]:  # fmt: skip
    """Import ``motion`` (``everyone``: every person in it, each body in its own colour) into an empty
    scene and write one composite PNG per frame; return their paths."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    clip, _ = md.read_motion(motion)
    video = video or md.find_source_video(motion, clip.source_video)
    if video is None:
        raise FileNotFoundError(f"{clip.source_video!r} is not next to {motion}: pass --video")
    scene = bpy.context.scene
    if everyone:
        armatures = api.import_people(motion, video_path=video, ground_plane=False)
        setup_render(scene, percentage)
        scene.display.shading.color_type = "OBJECT"
        for k, armature in enumerate(armatures):
            for child in armature.children:
                child.color = PERSON_COLOURS[k % len(PERSON_COLOURS)]
    else:
        api.import_motion(motion, video_path=video, ground_plane=False)
        setup_render(scene, percentage)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for frame in frames:
            if frame not in set(clip.frame_index.tolist()):
                log.warning("frame %d is outside the motion (%d..%d); skipped",
                            frame, clip.frame_index[0], clip.frame_index[-1])  # fmt: skip
                continue
            scene.frame_set(frame + 1)  # build_scene keys frame_index f on Blender frame f + 1
            scene.render.filepath = str(Path(tmp) / f"layer_{frame}.png")
            bpy.ops.render.render(write_still=True)
            layer = cv2.imread(scene.render.filepath, cv2.IMREAD_UNCHANGED)  # BGRA
            rgba = cv2.cvtColor(layer, cv2.COLOR_BGRA2RGBA)
            path = out / f"render_{frame}.png"
            cv2.imwrite(str(path), composite(rgba, video_frame(video, frame)))
            log.info("wrote %s (body covers %.1f%% of the frame)", path, 100.0 * (rgba[..., 3] > 0).mean())
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("motion", type=Path, help="a .motion.npz of the demo clip (or any clip)")
    parser.add_argument("out", type=Path, help="folder for render_<frame>.png")
    parser.add_argument("--frames", type=int, nargs="+", default=[40, 110, 205])
    parser.add_argument("--video", type=Path, default=None, help="footage (default: found next to the file)")
    parser.add_argument("--percentage", type=int, default=50, help="render size, percent of the clip's")
    parser.add_argument("--all", action="store_true", help="every person in the file, each in its own colour")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    written = render_frames(args.motion, args.out, args.frames, args.video, args.percentage, args.all)
    return 0 if len(written) == len(args.frames) else 1


if __name__ == "__main__":
    sys.exit(main())
