"""A failed import leaves the scene as it was: datablocks it made are removed, settings restored (bpy).

``with unchanged_on_failure(scene): ...`` records which datablocks exist and the scene settings an
import changes (timing, resolution, camera, active object, mode); if the block raises, every datablock
created inside it is deleted and those settings are put back before the exception goes on. Datablocks
that existed before are never deleted here, so an import must build its new objects first and remove
the ones it replaces only once the build has succeeded (see ``build_scene.build_person``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import bpy

log = logging.getLogger(__name__)

ID_COLLECTIONS = ("objects", "meshes", "armatures", "actions", "cameras", "collections", "movieclips",
                  "images", "materials", "shape_keys")  # fmt: skip
"""The kinds of datablock an import may create."""
_SCENE_SETTINGS = ("frame_start", "frame_end", "frame_current", "camera")
_RENDER_SETTINGS = ("fps", "fps_base", "resolution_x", "resolution_y")


@dataclass(frozen=True)
class _Snapshot:
    ids: dict[str, frozenset[int]]
    scene: dict[str, Any]
    render: dict[str, Any]
    linked: frozenset[int]
    """Collections linked to the scene's master collection."""
    active: bpy.types.Object | None


def _take(scene: bpy.types.Scene) -> _Snapshot:
    return _Snapshot(
        ids={kind: frozenset(i.as_pointer() for i in getattr(bpy.data, kind)) for kind in ID_COLLECTIONS},
        scene={name: getattr(scene, name) for name in _SCENE_SETTINGS},
        render={name: getattr(scene.render, name) for name in _RENDER_SETTINGS},
        linked=frozenset(c.as_pointer() for c in scene.collection.children),
        active=bpy.context.view_layer.objects.active,
    )


def _restore(scene: bpy.types.Scene, before: _Snapshot) -> None:
    if bpy.context.object is not None and bpy.context.object.mode != "OBJECT":
        with contextlib.suppress(RuntimeError):
            bpy.ops.object.mode_set(mode="OBJECT")
    for child in list(scene.collection.children):
        if child.as_pointer() not in before.linked:
            scene.collection.children.unlink(child)
    new = [
        block
        for kind in ID_COLLECTIONS
        if kind != "shape_keys"  # they go with their meshes
        for block in getattr(bpy.data, kind)
        if block.as_pointer() not in before.ids[kind]
    ]
    if new:
        bpy.data.batch_remove(new)
    for name, value in before.render.items():
        setattr(scene.render, name, value)
    for name, value in before.scene.items():
        setattr(scene, name, value)
    with contextlib.suppress(ReferenceError, RuntimeError):
        bpy.context.view_layer.objects.active = before.active
    log.info("import failed: removed %d new datablock(s), scene settings restored", len(new))


@contextlib.contextmanager
def unchanged_on_failure(scene: bpy.types.Scene) -> Iterator[None]:
    """Undo what the block added to ``scene`` and ``bpy.data`` if it raises (see the module doc)."""
    before = _take(scene)
    try:
        yield
    except BaseException:
        _restore(scene, before)
        raise
