"""The people *Find People* found: the people file (``python -m backend people``) into the panel's list,
with each person's thumbnail as a Blender image (bpy-thin: the file is read by ``motion_validate``)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .motion_validate import read_thumbnails

IMAGE_PREFIX = "video2anim_person_"


def thumbnail_pixels(thumb: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 RGB, top row first -> Blender's flat RGBA floats, bottom row first."""
    rgba = np.concatenate([thumb[::-1].astype(np.float32) / 255.0, np.ones((*thumb.shape[:2], 1), np.float32)], -1)
    return rgba.ravel()


def _image(name: str, thumb: np.ndarray) -> bpy.types.Image:
    """The image ``name`` (made, or resized and refilled) showing ``thumb``."""
    size = thumb.shape[0]
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.new(name, size, size)
    elif tuple(image.size) != (size, size):
        image.scale(size, size)
    image.pixels.foreach_set(thumbnail_pixels(thumb))
    image.update()
    image.preview_ensure()
    return image


def load_people(settings: bpy.types.PropertyGroup, path: str | Path, key: str) -> int:
    """Fill ``settings.people`` from the people file ``path`` (the list made for ``key``: video and
    range); ticks carry over for ids listed before. Returns the number of people.

    Raises:
        motion_validate.MotionFileError: not a readable people (or motion) file.
    """
    listed, thumbs = read_thumbnails(path)
    ticked = {p.person_id for p in settings.people if p.use} if settings.people_of == key else set()
    settings.people.clear()
    for k, person in enumerate(listed):
        item = settings.people.add()
        item.person_id = int(person["id"])
        item.frames = str(person.get("frames", ""))
        item.box_px = float(person.get("box_px", 0.0))
        item.use = item.person_id in ticked
        if thumbs is not None:
            item.image = _image(f"{IMAGE_PREFIX}{item.person_id}", thumbs[k])
    settings.people_of = key
    return len(listed)
