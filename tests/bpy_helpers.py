"""Helpers shared by the Blender tests (import only after ``pytest.importorskip("bpy")``)."""

from __future__ import annotations

import bpy
import numpy as np

from blender_addon import rig_math


def body_mesh(armature: bpy.types.Object) -> bpy.types.Object:
    """The skinned body mesh parented to an imported armature."""
    return next(o for o in armature.children if o.type == "MESH")


def evaluated_vertices(mesh_obj: bpy.types.Object) -> np.ndarray:
    """World-space vertices (V, 3) of the evaluated (skinned, shape-keyed) mesh."""
    evaluated = mesh_obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    return rig_math.apply(np.array(mesh_obj.matrix_world), co.reshape(-1, 3).astype(np.float64))
