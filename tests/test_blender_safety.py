"""Issue 10 in Blender: a failed import leaves the scene as it was, errors are messages, batch outputs
never collide, an unwritable output folder is one clear error, and exports never clobber on failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fuzz_motion import malformed_files
from tests.motion_fixture import npz_entries, write_tiny_motion

bpy = pytest.importorskip("bpy")
from blender_addon import api, batch, build_scene  # noqa: E402  (needs bpy)
from blender_addon import motion_data as md  # noqa: E402
from blender_addon.safe_files import OutputPathError  # noqa: E402
from blender_addon.scene_guard import ID_COLLECTIONS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _scene_state() -> dict:
    """Names of every datablock an import may touch, the scene's settings and each object's state."""
    scene = bpy.context.scene
    objects = {
        o.name: (tuple(np.round(np.array(o.matrix_world), 6).ravel()), o.parent.name if o.parent else None,
                 o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
        for o in bpy.data.objects
    }  # fmt: skip
    return {
        "ids": {kind: sorted(b.name for b in getattr(bpy.data, kind)) for kind in ID_COLLECTIONS},
        "scene": (scene.frame_start, scene.frame_end, scene.frame_current, scene.camera and scene.camera.name,
                  scene.render.fps, scene.render.fps_base, scene.render.resolution_x, scene.render.resolution_y),
        "objects": objects,
        "linked": sorted(c.name for c in scene.collection.children),
    }  # fmt: skip


@pytest.fixture
def earlier_import(tmp_path) -> Path:
    """An empty file holding an earlier import of the tiny motion file (collection "tiny")."""
    bpy.ops.wm.read_homefile(use_empty=True)
    path = write_tiny_motion(tmp_path / "tiny.motion.npz")
    api.import_people(path, "tiny", ground_plane=True)
    return path


def test_malformed_files_leave_the_scene_unchanged(earlier_import, tmp_path) -> None:
    before = _scene_state()
    files = list(malformed_files(tmp_path, 60, seed=5))
    for _, path in files:
        with pytest.raises(md.MotionDataError):
            api.import_people(path, "tiny", ground_plane=True)
        assert _scene_state() == before, path


def test_failure_during_the_build_restores_the_scene_and_keeps_the_earlier_import(
    earlier_import, monkeypatch
) -> None:
    before = _scene_state()
    for step in ("_animate", "_build_camera"):
        with monkeypatch.context() as patch:
            patch.setattr(build_scene, step, lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
            with pytest.raises(RuntimeError, match="boom"):
                api.import_people(earlier_import, "tiny", ground_plane=True)
        assert _scene_state() == before, step


def test_reimport_replaces_the_earlier_objects_under_the_same_names(earlier_import) -> None:
    names = sorted(o.name for o in bpy.data.objects)
    api.import_people(earlier_import, "tiny", ground_plane=True)
    assert sorted(o.name for o in bpy.data.objects) == names == [
        "tiny_camera", "tiny_ground", "tiny_p0_armature", "tiny_p0_body"
    ]  # fmt: skip
    assert not [a.name for a in bpy.data.actions if a.name.endswith(".001")]


def test_import_operator_reports_a_message_and_keeps_the_scene(earlier_import, tmp_path) -> None:
    import addon_utils

    addon_utils.enable("blender_addon", default_set=True, handle_error=None)
    try:
        entries = npz_entries()
        entries["p0/anny_pose"] = np.full_like(entries["p0/anny_pose"], np.nan)
        bad = tmp_path / "nan.motion.npz"
        np.savez(bad, **entries)
        before = _scene_state()
        with pytest.raises(RuntimeError) as info:  # bpy.ops turns an ERROR report into RuntimeError
            bpy.ops.video2anim.import_motion(filepath=str(bad))
        assert (
            "anny_pose" in str(info.value) and "NaN" in str(info.value) and "Traceback" not in str(info.value)
        )
        assert _scene_state() == before
    finally:
        addon_utils.disable("blender_addon", default_set=True, handle_error=None)


def test_batch_gives_clips_with_one_stem_their_own_outputs(tmp_path) -> None:
    clips = [tmp_path / n for n in ("clip.mp4", "clip.mov", "Clip.MKV", "other clip.mp4", "other_clip.mp4")]
    names = batch.output_names(clips)
    assert len({n.lower() for n in names.values()}) == len(clips)
    assert names[tmp_path / "clip.mp4"] == "clip_mp4" and names[tmp_path / "clip.mov"] == "clip_mov"
    assert batch.output_names([tmp_path / "solo.mp4"]) == {tmp_path / "solo.mp4": "solo"}


def test_batch_with_an_unwritable_output_folder_is_one_clear_error(tmp_path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    with pytest.raises(OutputPathError, match="Cannot write to the output folder"):
        batch.run_batch(clips, Path("/proc/video2anim_out"))
    run = subprocess.run(
        [sys.executable, "-m", "blender_addon.batch", str(clips), "/proc/video2anim_out"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "Cannot write to the output folder" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_failed_fbx_export_keeps_the_earlier_file(earlier_import, tmp_path, monkeypatch) -> None:
    from blender_addon import export

    target = tmp_path / "tiny.fbx"
    target.write_bytes(b"an earlier export")
    armature = bpy.data.objects["tiny_p0_armature"]

    class FailingOps:
        @staticmethod
        def fbx(**kwargs):
            Path(kwargs["filepath"]).write_bytes(b"half")
            raise RuntimeError("exporter crashed")

    monkeypatch.setattr(export.bpy.ops, "export_scene", FailingOps)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        api.export_fbx(armature, target)
    assert target.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.fbx", "tiny.motion.npz"]


def test_several_people_export_as_several_armatures_in_one_fbx(tmp_path) -> None:
    """Two people imported from one file -> one FBX with two armatures, each with its body and its own
    take, as Assimp (a reader we did not write) reads it."""
    from tests import assimp_reader

    if assimp_reader.assimp_command() is None:
        pytest.fail("the assimp command is missing: scripts/setup.sh dev installs Debian's assimp-utils")
    bpy.ops.wm.read_homefile(use_empty=True)
    armatures = api.import_people(write_tiny_motion(tmp_path / "two.motion.npz", people=(0, 1)), "two")
    path = api.export_fbx(armatures, tmp_path / "two.fbx", "unity")
    scene = assimp_reader.dump(path, tmp_path)
    top = {node["name"] for node in scene["rootnode"]["children"]}
    assert {"two_p0_armature", "two_p1_armature"} <= top and len(scene["meshes"]) == 2
    assert {b["name"] for m in scene["meshes"] for b in m["bones"]} == {"root", "spine", "head"}


def test_three_people_get_collections_of_their_own_and_export_each_or_together(tmp_path) -> None:
    """Issue 16: three people -> three armatures, each with its body in ``<clip>_person_<id>`` inside the
    clip's collection, one shared camera and ground; FBX per person or all in one; a chosen subset."""
    from tests import assimp_reader

    bpy.ops.wm.read_homefile(use_empty=True)
    path = write_tiny_motion(tmp_path / "three.motion.npz", people=(0, 1, 2))
    armatures = api.import_people(path, "three", ground_plane=True)
    clip = bpy.data.collections["three"]
    assert sorted(c.name for c in clip.children) == ["three_person_0", "three_person_1", "three_person_2"]
    assert sorted(o.name for o in clip.objects) == ["three_camera", "three_ground"]  # shared by all
    for pid, armature in enumerate(armatures):
        own = bpy.data.collections[f"three_person_{pid}"]
        assert sorted(o.name for o in own.objects) == [f"three_p{pid}_armature", f"three_p{pid}_body"]
        assert armature.name == f"three_p{pid}_armature" and armature.animation_data.action is not None
        body = bpy.data.objects[f"three_p{pid}_body"]
        assert body.parent == armature or any(m.type == "ARMATURE" and m.object == armature for m in body.modifiers)
    assert sum(o.type == "CAMERA" for o in bpy.data.objects) == 1
    armatures = api.import_people(path, "three", ground_plane=True)  # again: replaced, nothing doubled
    assert len(bpy.data.objects) == 8 and len(clip.children) == 3
    each = api.export_fbx_each(armatures, tmp_path)
    assert [p.name for p in each] == [f"three_p{pid}_armature.fbx" for pid in range(3)]
    together = api.export_fbx(armatures, tmp_path / "three.fbx", "unreal")
    if assimp_reader.assimp_command() is None:
        pytest.fail("the assimp command is missing: scripts/setup.sh dev installs Debian's assimp-utils")
    scene = assimp_reader.dump(together, tmp_path)
    assert {f"three_p{pid}_armature" for pid in range(3)} <= {n["name"] for n in scene["rootnode"]["children"]}
    assert len(scene["meshes"]) == 3
    single = assimp_reader.dump(each[1], tmp_path)
    assert len(single["meshes"]) == 1 and "three_p1_armature" in {n["name"] for n in single["rootnode"]["children"]}
    bpy.ops.wm.read_homefile(use_empty=True)
    chosen = api.import_people(path, "three", people=[2, 0])
    assert [a.name for a in chosen] == ["three_p2_armature", "three_p0_armature"]
    before = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(md.MotionDataError, match="cannot be imported"):
        api.import_people(path, "three", people=[5])
    assert sorted(o.name for o in bpy.data.objects) == before


def test_scene_files_refuse_outputs_that_are_inputs(earlier_import, tmp_path) -> None:
    with pytest.raises(OutputPathError):
        batch.scene_files(earlier_import, None, earlier_import, tmp_path / "x.fbx", "unity")
    with pytest.raises(OutputPathError):
        batch.scene_files(earlier_import, None, tmp_path / "x.blend", tmp_path / "x.blend", "unity")
    assert json.loads(str(np.load(earlier_import)["meta"]))["format"] == "video2anim.motion"
