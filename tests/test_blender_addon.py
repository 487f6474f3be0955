"""The Blender add-on: registration, the built extension, the backend job runner, the operators and
the batch command (FBX round trips and the real backend: ``test_blender_render.py``).

The backend is replaced by a small fake (``FAKE_BACKEND``, run as ``python -m backend`` from a
temporary folder) whose behaviour the "video" file's first word picks: SLOW (events for ~10 s,
honours ``cancel``), STUBBORN (ignores ``cancel``, dies on SIGTERM), CRASH (exits 1 without an
error event), GARBAGE (non-JSON on stdout), BAD (a bad-input error event, exit 2) and
GOOD <motion file> (copies that motion file to --out). The motion file is synthetic (Anny posed
by random rotations), as in ``test_blender_scene.py``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from blender_addon import job as jobs
from blender_addon.job_options import JobOptions, log_path_for

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402  (ships with bpy)

from blender_addon import motion_data  # noqa: E402
from tests.test_blender_scene import FIRST, T, _track_and_fit  # noqa: E402

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
ADDON = "blender_addon"
FAKE_BACKEND = """
import json, os, shutil, signal, sys, threading, time

def emit(**event):
    sys.stdout.write(json.dumps(event) + "\\n")
    sys.stdout.flush()

args = sys.argv[1:]
video, out = args[1], args[args.index("--out") + 1]
mode, _, rest = open(video).read().strip().partition(" ")
cancelled = threading.Event()

def watch():
    for line in sys.stdin:
        if line.strip() == "cancel" and mode != "STUBBORN":
            cancelled.set()

threading.Thread(target=watch, daemon=True).start()
print("fake backend starting", mode, file=sys.stderr, flush=True)
if mode == "GARBAGE":
    print("Hello from a program that is not the backend")
    sys.exit(0)
if mode == "CRASH":
    emit(event="stage", name="decode", index=1, count=6)
    print("Fatal Python error: Segmentation fault (pretend)", file=sys.stderr, flush=True)
    sys.exit(1)
if mode == "BAD":
    emit(event="error", kind="bad_input", message=f"Cannot decode {os.path.basename(video)}: not a video.")
    sys.exit(2)
names = ["decode", "detect", "track", "lift", "fit", "write"]
steps = 100 if mode in ("SLOW", "STUBBORN") else 2
for index, name in enumerate(names, 1):
    emit(event="stage", name=name, index=index, count=len(names))
    for done in range(1, steps + 1):
        if cancelled.is_set():
            emit(event="error", kind="cancelled", message="Cancelled; no output was written.")
            sys.exit(3)
        time.sleep(0.02 if steps > 2 else 0.0)
        emit(event="progress", stage=name, done=done, total=steps, fps=50.0)
emit(event="warning", message="fake warning")
shutil.copyfile(rest, out)
emit(event="result", path=out)
"""


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def motion_file(anny_body, tmp_path_factory) -> Path:
    """A synthetic motion file with the rig embedded (what the backend writes)."""
    from backend.geometry.skeleton import KEYPOINT_NAMES
    from backend.io import motion as motion_io
    from tests.conftest import recorded_arrays
    from tests.test_blender_scene import HEIGHT, WIDTH, K

    track, fit = _track_and_fit(anny_body)
    arrays = recorded_arrays(track, fit, anny_body)
    meta = {
        "body_model": {"name": "anny", "bone_labels": anny_body.bone_labels,
                       "phenotype_labels": anny_body.phenotype_labels},
        "fps": 25.0, "frame_count": T, "image_size": [WIDTH, HEIGHT], "intrinsics": K.tolist(),
        "keypoint_names": {"keypoints3d": list(KEYPOINT_NAMES)},
    }  # fmt: skip
    path = tmp_path_factory.mktemp("addon") / "synthetic.motion.npz"
    motion_io.save(path, motion_io.MotionFile(meta, [motion_io.PersonMotion(0, arrays)]))
    return path


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """A folder with a fake ``backend`` package."""
    root = tmp_path_factory.mktemp("fake_backend")
    (root / "backend").mkdir()
    (root / "backend" / "__init__.py").write_text("")
    (root / "backend" / "__main__.py").write_text(textwrap.dedent(FAKE_BACKEND))
    return root


def _video(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(content)
    return path


@pytest.fixture
def enabled(fake_root):
    """The add-on enabled (as Blender does it), its preferences pointing at the fake backend."""
    addon_utils.enable(ADDON, default_set=True, handle_error=None)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.python_path, prefs.backend_source = sys.executable, str(fake_root)
    yield prefs
    addon_utils.disable(ADDON, default_set=True, handle_error=None)


def _job(fake_root: Path, tmp_path: Path, mode: str, python: str = sys.executable) -> jobs.BackendJob:
    video = _video(tmp_path, f"{mode.lower()}.mp4", mode)
    options = JobOptions(video=video, out=tmp_path / "out" / f"{mode.lower()}.motion.npz")
    return jobs.BackendJob(options, Path(python), fake_root)


# ---------------------------------------------------------------------- add-on and package
@pytest.mark.parametrize(
    "vendored", ["protocol.py", "io/bounded_npz.py", "io/motion_schema.py", "io/motion_validate.py"]
)
def test_vendored_modules_match_the_backend(vendored: str) -> None:
    """The add-on imports its own copies of the backend's torch-free protocol and motion-file reader
    (it cannot import the backend): they must stay byte for byte the same."""
    backend_file = ROOT / "backend" / vendored
    assert (ROOT / ADDON / backend_file.name).read_bytes() == backend_file.read_bytes()


def test_register_and_unregister_twice() -> None:
    import blender_addon

    for _ in range(2):
        addon_utils.enable(ADDON, default_set=True, handle_error=None)
        assert ADDON in bpy.context.preferences.addons
        assert bpy.context.scene.video2anim.status == "IDLE"
        assert bpy.ops.video2anim.estimate.idname() == "VIDEO2ANIM_OT_estimate"
        addon_utils.disable(ADDON, default_set=True, handle_error=None)
        assert not hasattr(bpy.types.Scene, "video2anim")
        assert not hasattr(bpy.types, "VIDEO2ANIM_PT_estimate")
    for _ in range(2):
        blender_addon.register()
        blender_addon.unregister()


def test_built_extension_installs_into_headless_blender(tmp_path) -> None:
    """build_addon.py's zip installs with bpy.ops.extensions.package_install_files (a fresh bpy, own
    user folder) and registers every operator."""
    import build_addon

    zip_path = build_addon.build(tmp_path / "dist")
    assert zip_path.name == "video2anim-0.1.0.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"blender_manifest.toml", "__init__.py", "backend_src/backend/__main__.py"} <= set(names)
    assert "backend_src/requirements.txt" in names and "backend_src/backend/fit/optimize.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    assert not [n for n in names if "/train/" in n or "bench" in n]  # the add-on never runs them
    zipped = zipfile.ZipFile(zip_path)
    assert zipped.read("motion_validate.py") == (ROOT / "backend" / "io" / "motion_validate.py").read_bytes()
    script = textwrap.dedent(f"""
        import bpy, json
        result = bpy.ops.extensions.package_install_files(
            filepath={str(zip_path)!r}, repo="user_default", enable_on_install=True)
        import addon_utils
        from bl_ext.user_default.video2anim import backend_env
        name = "bl_ext.user_default.video2anim"
        for _ in range(2):  # disable and enable again, twice
            addon_utils.disable(name, default_set=True, handle_error=None)
            addon_utils.enable(name, default_set=True, handle_error=None)
        ops = ["estimate", "cancel", "import_motion", "export_fbx", "install_backend"]
        print(json.dumps({{
            "result": sorted(result),
            "enabled": "bl_ext.user_default.video2anim" in bpy.context.preferences.addons,
            "ops": [getattr(bpy.ops.video2anim, op).idname() for op in ops],
            "panel": hasattr(bpy.types, "VIDEO2ANIM_PT_estimate"),
            "device": bpy.context.preferences.addons[name].preferences.device,
            "backend_root": str(backend_env.backend_root()),
        }}))
    """)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["result"] == ["FINISHED"] and report["enabled"] and report["panel"]
    assert report["device"] == "auto"
    assert report["ops"] == [f"VIDEO2ANIM_OT_{op}" for op in ("estimate", "cancel", "import_motion",
                                                             "export_fbx", "install_backend")]  # fmt: skip
    installed = tmp_path / "user" / "extensions" / "user_default" / "video2anim"
    assert Path(report["backend_root"]) == installed / "backend_src"


# ---------------------------------------------------------------------- job runner
def test_argv_and_option_checks(tmp_path) -> None:
    video = _video(tmp_path, "clip.mp4", "GOOD")
    options = JobOptions(video, tmp_path / "clip.motion.npz", preset="fast", start=10, end=40,
                         person="2", preview=tmp_path / "p.mp4", face=False)  # fmt: skip
    argv = options.argv(Path("/py"))
    assert argv[:4] == ["/py", "-m", "backend", "estimate"] and "--events" in argv
    for flag, value in (("--preset", "fast"), ("--start", "10"), ("--end", "40"), ("--person", "2")):
        assert argv[argv.index(flag) + 1] == value
    assert "--no-face" in argv and "--no-hands" not in argv and "--model-path" not in argv
    assert options.problems() == []
    bad = JobOptions(tmp_path / "missing.mp4", tmp_path / "x.npz", preset="slow", start=5, end=5)
    assert len(bad.problems()) == 4
    assert log_path_for(tmp_path / "clip.motion.npz") == tmp_path / "clip.log"
    people = JobOptions(video, tmp_path / "clip.people.npz", start=10, end=40, command="people")
    assert people.problems() == [] and people.argv(Path("/py")) == [
        "/py", "-m", "backend", "people", str(video), "--out", str(tmp_path / "clip.people.npz"), "--events",
        "--start", "10", "--end", "40"]  # fmt: skip
    assert JobOptions(video, tmp_path / "clip.motion.npz", command="people").problems() != []
    spaced = JobOptions(video, tmp_path / "c.motion.npz", person="0, 2").argv(Path("/py"))
    assert spaced[spaced.index("--person") + 1] == "0,2"


def test_job_shows_progress_and_cancels_within_a_second(fake_root, tmp_path) -> None:
    job = _job(fake_root, tmp_path, "SLOW")
    snap = job.start()
    assert snap.status == "running"
    deadline = time.monotonic() + 20
    while (snap.stage_index < 2 or snap.done == 0) and time.monotonic() < deadline:
        time.sleep(0.05)
        snap = job.poll()
    assert snap.stage == "detect" and snap.stage_count == 6 and snap.fps == 50.0
    assert 16.0 < snap.percent < 34.0 and snap.eta_s is not None and snap.eta_s > 0
    assert "detect" in snap.summary() and "frames/s" in snap.summary()
    clock = time.monotonic()
    job.cancel()
    assert job.poll().status in ("cancelling", "cancelled")
    snap = job.wait(interval_s=0.02)
    took = time.monotonic() - clock
    log.info("cancelled in %.2f s", took)
    assert snap.status == "cancelled" and snap.returncode == 3 and took < 1.0
    text = job.log_path.read_text()
    assert "fake backend starting SLOW" in text and '"event":"stage"' in text and "cancel requested" in text
    assert not (tmp_path / "out" / "slow.motion.npz").exists()


def test_job_terminates_a_backend_that_ignores_cancel(fake_root, tmp_path) -> None:
    job = _job(fake_root, tmp_path, "STUBBORN")
    job.start()
    time.sleep(0.3)
    clock = time.monotonic()
    job.cancel()
    snap = job.wait(timeout_s=10, interval_s=0.05)
    assert snap.status == "cancelled" and snap.returncode == -15
    assert 1.5 < time.monotonic() - clock < 3.5


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("CRASH", r"stopped unexpectedly \(exit code 1\).*Segmentation fault \(pretend\).*full log"),
        ("GARBAGE", r"exited without reporting a result.*not the backend's event protocol.*Hello from"),
        ("BAD", r"^Cannot decode bad.mp4: not a video.$"),
    ],
)
def test_job_failures_give_a_clear_error(fake_root, tmp_path, mode, expected) -> None:
    job = _job(fake_root, tmp_path, mode)
    job.start()
    snap = job.wait(timeout_s=20, interval_s=0.02)
    assert snap.status == "failed" and re.search(expected, snap.error, re.S), snap.error


def test_job_without_a_python_fails_clearly(fake_root, tmp_path) -> None:
    snap = _job(fake_root, tmp_path, "GOOD", python=str(tmp_path / "no" / "python")).start()
    assert (
        snap.status == "failed" and "Cannot start the backend" in snap.error and "preferences" in snap.error
    )


def test_installer_runs_the_steps_in_order_and_stops_at_the_first_failure(tmp_path) -> None:
    from blender_addon.backend_env import Step
    from blender_addon.installer import InstallJob

    py = sys.executable
    steps = [
        Step("one", [py, "-c", "print('step one')"]),
        Step("two", [py, "-c", "import os, sys; print(os.environ['MARK']); sys.exit(4)"], {"MARK": "marked"}),
        Step("three", [py, "-c", "print('never')"]),
    ]
    job = InstallJob(steps, tmp_path / "install.log")
    snap = job.start()
    while not snap.finished:
        time.sleep(0.05)
        snap = job.poll()
    assert snap.status == "failed" and snap.step == "two" and "exit code 4" in snap.error
    text = (tmp_path / "install.log").read_text()
    assert "step one" in text and "marked" in text and "never" not in text


def test_install_steps_follow_the_setup_script(tmp_path) -> None:
    from blender_addon import backend_env

    steps = backend_env.install_steps(Path(sys.executable), tmp_path / "venv", ROOT, cuda=False)
    assert [s.title for s in steps][0] == "Create the environment" and len(steps) == 5
    assert steps[2].argv[-1] == "torch==2.13.0" and "anny==0.6.2" in steps[3].argv
    assert steps[4].argv[-3:] == ["-m", "backend", "prepare"] and steps[4].env["PYTHONPATH"] == str(ROOT)
    assert backend_env.backend_root() == ROOT


# ---------------------------------------------------------------------- operators
def test_estimate_operator_imports_the_result(enabled, motion_file, tmp_path) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)
    settings = bpy.context.scene.video2anim
    settings.source, settings.filepath = "FILE", str(_video(tmp_path, "walk.mp4", f"GOOD {motion_file}"))
    settings.output_dir = str(tmp_path / "motions")
    # INVOKE_DEFAULT runs modally with a window; headless (no window) it blocks like execute.
    assert bpy.ops.video2anim.estimate("INVOKE_DEFAULT") == {"FINISHED"}
    assert settings.status == "DONE" and settings.warning_count == 1 and settings.progress == 1.0
    assert Path(settings.motion_path) == tmp_path / "motions" / "walk.motion.npz"
    assert (tmp_path / "motions" / "walk.log").is_file()
    objects = bpy.data.collections["walk"].all_objects
    assert sorted(o.type for o in objects) == ["ARMATURE", "CAMERA", "MESH", "MESH"]  # + the ground plane
    assert bpy.context.view_layer.objects.active.type == "ARMATURE"
    (background,) = bpy.context.scene.camera.data.background_images  # the video the panel used
    assert Path(background.clip.filepath) == Path(settings.filepath)


@pytest.mark.parametrize("mode", ["CRASH", "GARBAGE"])
def test_estimate_operator_reports_a_broken_backend_and_blender_keeps_working(
    enabled, tmp_path, mode
) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)
    settings = bpy.context.scene.video2anim
    settings.source, settings.filepath = "FILE", str(_video(tmp_path, "clip.mp4", mode))
    with pytest.raises(RuntimeError, match="stopped unexpectedly|not the backend's event protocol"):
        bpy.ops.video2anim.estimate()
    assert settings.status == "FAILED" and settings.message
    assert bpy.ops.mesh.primitive_cube_add() == {"FINISHED"}
    assert bpy.ops.video2anim.estimate.poll()  # ready for another run


def test_estimate_operator_explains_a_missing_video(enabled) -> None:
    settings = bpy.context.scene.video2anim
    settings.source, settings.filepath = "FILE", "/nonexistent/clip.mp4"
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.video2anim.estimate()


def test_estimate_operator_takes_the_body_model_from_the_preferences(enabled, tmp_path) -> None:
    settings = bpy.context.scene.video2anim
    settings.source, settings.filepath = "FILE", str(_video(tmp_path, "clip.mp4", "GOOD"))
    enabled.body_model, enabled.smpl_folder, enabled.smpl_gender = "smplx", "", "female"
    try:
        with pytest.raises(RuntimeError, match="SMPLX body needs your own model files"):
            bpy.ops.video2anim.estimate()
        enabled.smpl_folder = str(tmp_path)
        options, problem = settings.job_options(
            enabled.device, "", enabled.body_model, enabled.smpl_folder, enabled.smpl_gender
        )
        assert problem == "" and options is not None
        argv = options.argv(Path(sys.executable))
        assert argv[argv.index("--body") + 1] == "smplx" and argv[argv.index("--gender") + 1] == "female"
        assert Path(argv[argv.index("--model-path") + 1]) == tmp_path
    finally:
        enabled.body_model, enabled.smpl_folder, enabled.smpl_gender = "anny", "", "neutral"


def test_find_people_lists_thumbnails_and_the_ticked_ids_are_fitted(enabled, tmp_path) -> None:
    """Issue 16: Find People runs the backend's ``people`` command, the panel lists everyone with a
    thumbnail, and the estimate fits the ticked ids."""
    import numpy as np

    from backend.io import motion as motion_io

    thumbs = np.zeros((3, 64, 64, 3), np.uint8)
    thumbs[:, :32, :, 0] = 255  # red top half, so the image's row order can be checked
    listed = [{"id": i, "frames": f"{10 * i}-{10 * i + 9}", "box_px": 100.0 + i} for i in range(3)]
    people_file = tmp_path / "found.people.npz"
    motion_io.write_people(people_file, {"tracked": listed}, thumbs)
    bpy.ops.wm.read_homefile(use_empty=True)
    settings = bpy.context.scene.video2anim
    settings.source, settings.filepath = "FILE", str(_video(tmp_path, "three.mp4", f"GOOD {people_file}"))
    settings.output_dir = str(tmp_path / "motions")
    assert bpy.ops.video2anim.find_people() == {"FINISHED"}
    assert (tmp_path / "motions" / "three.people.npz").is_file() and settings.motion_path == ""
    assert [p.person_id for p in settings.people] == [0, 1, 2] and settings.people[2].frames == "20-29"
    image = settings.people[1].image
    assert tuple(image.size) == (64, 64) and image.preview is not None
    pixels = np.array(image.pixels[:]).reshape(64, 64, 4)
    assert pixels[-1, 0, 0] == 1.0 and pixels[0, 0, 0] == 0.0  # Blender's rows go bottom up
    assert settings.person == "chosen"
    options, problem = settings.job_options("cpu")
    assert options is None and "Tick at least one person" in problem
    settings.people[2].use = settings.people[0].use = True
    options, problem = settings.job_options("cpu")
    assert problem == "" and options.person == "0,2" and "0,2" in options.argv(Path(sys.executable))
    drawn: list[str] = []
    from blender_addon.panels import VIDEO2ANIM_PT_estimate

    VIDEO2ANIM_PT_estimate.draw(SimpleNamespace(layout=_Layout(drawn)), bpy.context)
    assert drawn.count("use") == 3 and "video2anim.find_people" in drawn
    settings.use_range = True  # another range: the list no longer applies
    options, problem = settings.job_options("cpu")
    assert options is None and "Find People again" in problem


def test_a_file_saved_during_a_run_opens_idle(enabled, tmp_path) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.video2anim.status = "RUNNING"
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "running.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "running.blend"))
    assert bpy.context.scene.video2anim.status == "IDLE"
    assert bpy.ops.video2anim.estimate.poll()


class _Layout:
    """Stands in for bpy.types.UILayout: checks that every drawn property and operator exists."""

    def __init__(self, drawn: list[str]) -> None:
        self.drawn = drawn

    def __getattr__(self, name: str):  # column, row, box, label, separator, progress ...
        return lambda *args, **kwargs: _Layout(self.drawn)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def prop(self, data, name: str, **kwargs) -> None:
        assert name in data.bl_rna.properties, name
        self.drawn.append(name)

    def operator(self, idname: str, **kwargs):
        category, name = idname.split(".")
        assert getattr(getattr(bpy.ops, category), name).idname()
        self.drawn.append(idname)
        return _Layout(self.drawn)


@pytest.mark.parametrize("status", ["IDLE", "RUNNING", "FAILED", "DONE"])
def test_panel_and_preferences_draw_existing_properties_and_operators(enabled, status) -> None:
    from blender_addon.panels import VIDEO2ANIM_PT_estimate
    from blender_addon.preferences import Video2AnimPreferences

    settings = bpy.context.scene.video2anim
    settings.status, settings.message, settings.warning_count = status, "some message " * 20, 1
    drawn: list[str] = []
    VIDEO2ANIM_PT_estimate.draw(SimpleNamespace(layout=_Layout(drawn)), bpy.context)
    want = "video2anim.cancel" if status == "RUNNING" else "video2anim.estimate"
    assert want in drawn and "video2anim.export_fbx" in drawn and "preset" in drawn
    drawn.clear()
    values = {k: getattr(enabled, k) for k in enabled.bl_rna.properties.keys() if k != "rna_type"}
    Video2AnimPreferences.draw(
        SimpleNamespace(layout=_Layout(drawn), bl_rna=enabled.bl_rna, **values), bpy.context
    )
    assert "video2anim.install_backend" in drawn and "python_path" in drawn


def test_import_motion_operator_builds_the_armature(enabled, motion_file) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)
    assert bpy.ops.video2anim.import_motion(filepath=str(motion_file)) == {"FINISHED"}
    armature = bpy.context.view_layer.objects.active
    assert armature.type == "ARMATURE" and len(armature.data.bones) == len(
        motion_data.read_motion(motion_file)[0].bone_labels
    )
    assert armature.users_collection[0].name == "synthetic_person_0" and armature.animation_data.action is not None
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (FIRST + 1, FIRST + T)
    with pytest.raises(RuntimeError, match="not a video2anim.motion file|cannot be read"):
        bpy.ops.video2anim.import_motion(filepath=str(ROOT / "pyproject.toml"))


# ---------------------------------------------------------------------- batch
def test_batch_converts_good_clips_and_reports_bad_ones(fake_root, motion_file, tmp_path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    _video(clips, "good.mp4", f"GOOD {motion_file}")
    _video(clips, "bad.mp4", "BAD")
    (clips / "notes.txt").write_text("not a clip")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "blender_addon.batch", str(clips), str(out),
            "--python", sys.executable, "--backend-root", str(fake_root), "--fbx-preset", "unreal"]  # fmt: skip
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    summary = {Path(r["video"]).name: r for r in json.loads((out / "batch_summary.json").read_text())}
    assert sorted(summary) == ["bad.mp4", "good.mp4"]
    assert summary["good.mp4"]["ok"] and summary["good.mp4"]["warnings"] == ["fake warning"]
    for key in ("motion", "blend", "fbx"):
        assert Path(summary["good.mp4"][key]).is_file()
    assert (
        not summary["bad.mp4"]["ok"] and summary["bad.mp4"]["error"] == "Cannot decode bad.mp4: not a video."
    )
    assert "1 of 2 clip(s) converted" in run.stderr and "FAILED bad.mp4" in run.stderr
