"""Retarget the demo's motion onto a generated Rigify rig and a Mixamo-named T-pose rig 15% larger, measure
how well the target follows, and render the Rigify rig over the footage.

Measures over every frame: per end effector (wrists, ankles, head) the distance between where the target's
and the source's put it relative to the limb's length (``tests/retarget_rigs.effector_errors``), how far
an ankle sinks below where the source's ankle puts it (scaled), and the time taken. Renders (Workbench,
composited over the video frame): the source body in blue with the target's deforming bones as orange
sticks (``retarget_<frame>.png``), and the sticks alone (``retarget_rig_only_<frame>.png``).

Usage::

    ./run_demo.sh      # or: .venv/bin/python -m backend estimate demo/demo.mp4 --out out/demo.motion.npz
    .venv/bin/python bench/retarget_demo.py out/demo.motion.npz OUT/ [--video demo/demo.mp4] [--frames 40 110 205]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

from bench.render_demo import composite, setup_render, video_frame  # noqa: E402
from blender_addon import api  # noqa: E402
from tests import retarget_rigs as rr  # noqa: E402

log = logging.getLogger("retarget_demo")
RIGIFY_JOINTS = {s: f"ORG-{b}" for s, b in (("upper_arm.L", "upper_arm.L"), ("forearm.L", "forearm.L"),
                 ("hand.L", "hand.L"), ("upper_arm.R", "upper_arm.R"), ("forearm.R", "forearm.R"), ("hand.R", "hand.R"),
                 ("thigh.L", "thigh.L"), ("shin.L", "shin.L"), ("foot.L", "foot.L"), ("thigh.R", "thigh.R"),
                 ("shin.R", "shin.R"), ("foot.R", "foot.R"), ("neck", "spine.004"), ("head", "spine.006"))}  # fmt: skip


def measure(source, target, joints: dict[str, str], frames: range) -> dict[str, float]:
    """Effector errors (share of limb length, max and mean over frames and effectors) and ankle sink (mm)."""
    e, sink = rr.follow(source, target, joints, frames)
    out = {"max": float(e.max()), "mean": float(e.mean()), "sink_mm": 1000 * float(sink.max())}
    out |= {f"max_{name}": float(v) for name, v in zip(rr.EFFECTORS, e.max(0), strict=True)}
    return out


def _sticks(target: bpy.types.Object, prefix: str) -> list[tuple[bpy.types.Object, str]]:
    mesh = bpy.data.meshes.new("stick")
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, segments=8, radius1=0.02, radius2=0.012, depth=1.0)
    bmesh.ops.translate(bm, verts=bm.verts, vec=(0.0, 0.0, 0.5))
    bm.to_mesh(mesh)
    out = []
    for bone in target.data.bones:
        if bone.name.startswith(prefix):
            obj = bpy.data.objects.new(f"stick_{bone.name}", mesh)
            obj.color = (1.0, 0.45, 0.05, 1.0)
            bpy.context.scene.collection.objects.link(obj)
            out.append((obj, bone.name))
    return out


def _place(sticks, target) -> None:
    from mathutils import Vector

    world = target.matrix_world
    for obj, name in sticks:
        pb = target.pose.bones[name]
        head, tail = world @ pb.head, world @ pb.tail
        axis = tail - head
        obj.matrix_world = (Vector((0, 0, 1)).rotation_difference(axis.normalized()).to_matrix().to_4x4())
        obj.location, obj.scale = head, (1.0, 1.0, max(axis.length, 1e-4))


def render(source, target, video: Path, frames: list[int], out: Path) -> None:
    scene = bpy.context.scene
    setup_render(scene, 50)
    scene.display.shading.color_type = "OBJECT"
    for child in source.children:
        child.color = (0.2, 0.75, 1.0, 1.0)
    sticks = _sticks(target, "DEF-" if any(b.name.startswith("DEF-") for b in target.data.bones) else "")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for frame in frames:
            scene.frame_set(frame + 1)
            _place(sticks, target)
            for name, body in (("retarget", False), ("retarget_rig_only", True)):  # with and without the body
                for child in source.children:
                    child.hide_render = body
                scene.render.filepath = str(Path(tmp) / f"layer_{frame}.png")
                bpy.ops.render.render(write_still=True)
                rgba = cv2.cvtColor(cv2.imread(scene.render.filepath, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
                cv2.imwrite(str(out / f"{name}_{frame}.png"), composite(rgba, video_frame(video, frame)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("motion", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--video", type=Path, default=ROOT / "demo" / "demo.mp4")
    parser.add_argument("--frames", type=int, nargs="+", default=[40, 110, 205])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    for kind in ("mixamo", "rigify"):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        source = api.import_motion(args.motion, video_path=args.video, ground_plane=False)
        # Rigify's metarig scaled to the body's hip height, as a user fits it to a character; its limb
        # proportions stay Rigify's
        target = rr.build_mixamo_rig(source, 1.15) if kind == "mixamo" else rr.build_rigify_rig(0.8)
        start = time.perf_counter()
        result = api.retarget_motion(source, target, kind)
        seconds = time.perf_counter() - start
        joints = {s: result.slots[s] for s in RIGIFY_JOINTS} if kind == "mixamo" else RIGIFY_JOINTS
        numbers = measure(source, target, joints, range(result.frames[0], result.frames[1] + 1))
        print(f"{kind}: {result.frames[1] - result.frames[0] + 1} frames in {seconds:.1f} s, motion scale "
              f"{result.scale:.3f}, floor lift max {1000 * result.floor_lift:.1f} mm; "
              + ", ".join(f"{k} {v:.4f}" for k, v in numbers.items()))  # fmt: skip
        if kind == "rigify":
            render(source, target, args.video, args.frames, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
