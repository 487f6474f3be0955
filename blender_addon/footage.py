"""The source footage behind the imported camera, and a ground plane under the subject (bpy only).

Blender keys motion frame ``f`` (the video's 0-based frame number) on scene frame ``f + 1``; a
MovieClip whose ``frame_start`` is 1 and ``frame_offset`` 0 shows video frame ``f`` on scene frame
``f + 1`` too, so the footage lines up with the keys whatever ``--start`` the estimate used.
Camera background images show in the viewport's camera view, not in renders (``bench/render_demo.py``
composites renders over the footage instead).
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np

from . import motion_data as md
from . import rig_math

log = logging.getLogger(__name__)

FOOTAGE_FRAME_START = 1
"""Scene frame showing the video's first frame (frame_index 0), as ``build_scene`` keys it."""


def resolve_clip(
    clip: md.PersonClip,
    motion_path: Path,
    video_path: str | Path | None = None,
    movie_clip: bpy.types.MovieClip | None = None,
) -> bpy.types.MovieClip | None:
    """The footage as a MovieClip: the given one, else ``video_path``, else the video next to the file.

    Returns None (and logs why) when no footage is found; that is not an error.
    """
    if movie_clip is not None:
        return movie_clip
    if video_path is not None:
        path: Path | None = Path(video_path)
        if not path.is_file():
            log.warning("footage %s does not exist: the camera gets no background", path)
            return None
    else:
        path = md.find_source_video(motion_path, clip.source_video)
        if path is None:
            why = f"{clip.source_video} is not next to it" if clip.source_video else "it names no video"
            log.info("no footage for %s (%s): the camera gets no background", motion_path.name, why)
            return None
    try:
        return bpy.data.movieclips.load(str(path), check_existing=True)
    except RuntimeError as exc:  # not a movie Blender can read
        log.warning("cannot load %s as a movie clip (%s): the camera gets no background", path, exc)
        return None


def set_camera_background(camera: bpy.types.Object, movie: bpy.types.MovieClip, clip: md.PersonClip) -> None:
    """Show ``movie`` behind the camera view, frame-aligned with the keys."""
    if (movie.frame_start, movie.frame_offset) != (FOOTAGE_FRAME_START, 0):
        log.info("%s: frame start %d -> %d so that the footage lines up with the keys",
                 movie.name, movie.frame_start, FOOTAGE_FRAME_START)  # fmt: skip
        movie.frame_start, movie.frame_offset = FOOTAGE_FRAME_START, 0
    if tuple(movie.size) not in ((0, 0), clip.image_size):
        log.warning("%s is %dx%d but the motion was estimated on %dx%d frames",
                    movie.name, *movie.size, *clip.image_size)  # fmt: skip
    if clip.rotation_deg:
        log.warning("the backend rotated %s by %d degrees; the background may show it unrotated",
                    movie.name, clip.rotation_deg)  # fmt: skip
    data = camera.data
    data.show_background_images = True
    data.background_images.clear()
    background = data.background_images.new()
    background.source = "MOVIE_CLIP"
    background.use_camera_clip = False
    background.clip = movie
    background.frame_method = "FIT"
    background.alpha = 1.0
    background.display_depth = "BACK"


def build_ground(clip: md.PersonClip, name: str, collection: bpy.types.Collection) -> bpy.types.Object:
    """A plane at z = 0 covering the subject's path (with a margin), named ``<name>_ground``."""
    centre, half = rig_math.ground_rectangle(clip.transl, clip.world_from_camera)
    corners = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float64)
    corners[:, :2] = corners[:, :2] * half + centre
    mesh = bpy.data.meshes.new(f"{name}_ground")
    mesh.from_pydata(corners.tolist(), [], [(0, 1, 2, 3)])
    mesh.update()
    obj = bpy.data.objects.new(f"{name}_ground", mesh)
    collection.objects.link(obj)
    return obj
