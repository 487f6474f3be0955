"""``python -m backend batch``: a folder of clips on worker processes, per-clip outcomes, one retry for
internal errors, none for bad input, and a rerun that skips what is done."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.errors import BadInput
from backend.io import motion as motion_io
from backend.pipeline.batch import ClipOutcome, motion_paths, record_outcome
from tests.conftest import DEMO, ROOT, run_ffmpeg


def test_clips_sharing_a_name_get_distinct_motion_files(tmp_path) -> None:
    clips = [tmp_path / "a.mp4", tmp_path / "A.mov", tmp_path / "b.mp4"]
    names = {c.name: p.name for c, p in motion_paths(clips, tmp_path).items()}
    assert names == {"a.mp4": "a_mp4.motion.npz", "A.mov": "A_mov.motion.npz", "b.mp4": "b.motion.npz"}


def test_internal_errors_are_retried_once_and_bad_input_never() -> None:
    def fails(exc: Exception):
        def result():
            raise exc

        return result

    outcome = ClipOutcome("clip.mp4", "clip.motion.npz")
    assert record_outcome(outcome, fails(RuntimeError("worker died"))) is True  # first failure: once more
    assert record_outcome(outcome, fails(RuntimeError("worker died"))) is False and outcome.status == "failed"
    refused = ClipOutcome("bad.mp4", "bad.motion.npz")
    assert record_outcome(refused, fails(BadInput("not a video"))) is False and refused.status == "refused"
    assert refused.attempts == 1 and "not a video" in refused.error


def _batch(clips: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "backend", "batch", str(clips), str(out), "--preset", "fast", "--device", "cpu",
            *extra]  # fmt: skip
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_batch_converts_a_folder_on_two_workers_and_a_rerun_skips_what_is_done(tmp_path) -> None:
    if not DEMO.is_file():
        pytest.skip("the demo clip is missing")
    clips, out = tmp_path / "clips", tmp_path / "out"
    clips.mkdir()
    for name, start in (("jump", "1.2"), ("walk", "3.6")):  # two 12-frame clips of the man
        run_ffmpeg("-ss", start, "-i", str(DEMO), "-frames:v", "12", "-an", str(clips / f"{name}.mp4"))
    (clips / "broken.mp4").write_bytes(b"not a video at all")
    run = _batch(clips, out, "--jobs", "2")
    assert run.returncode == 2, run.stderr[-3000:]  # one clip refused, the others converted
    summary = json.loads((out / "batch_summary.json").read_text())
    status = {Path(c["video"]).name: c for c in summary["clips"]}
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 0, "refused": 1}
    assert status["broken.mp4"]["attempts"] == 1 and status["broken.mp4"]["error"]
    for name in ("jump", "walk"):
        motion = motion_io.load(out / f"{name}.motion.npz")
        assert motion.people[0].arrays["transl"].shape == (12, 3)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.motion.npz")}
    again = _batch(clips, out, "--jobs", "2")
    summary = json.loads((out / "batch_summary.json").read_text())
    assert again.returncode == 2 and summary["counts"] == {"done": 0, "skipped": 2, "failed": 0, "refused": 1}
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.motion.npz")} == stamps  # untouched
    assert "Traceback" not in run.stderr + again.stderr


def test_the_ray_batch_on_a_local_cluster_gives_the_local_batch_outputs(tmp_path) -> None:
    """One Ray task per clip on a local cluster the test starts: the same clips done, the same motion (to
    floating-point noise) as the local batch, the same summary; Ray's worker processes are reused."""
    ray = pytest.importorskip("ray", reason="the [ray] extra (scripts/setup.sh dev installs it)")
    import numpy as np

    from backend.cli import _build_parser, _config
    from backend.pipeline.batch import run_batch
    from backend.pipeline.ray_batch import run_batch_ray

    if not DEMO.is_file():
        pytest.skip("the demo clip is missing")
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, start in (("jump", "1.2"), ("walk", "3.6")):
        run_ffmpeg("-ss", start, "-i", str(DEMO), "-frames:v", "10", "-an", str(clips / f"{name}.mp4"))
    config = _config(_build_parser().parse_args(["batch", str(clips), str(tmp_path), "--preset", "fast", "--device", "cpu"]))
    local = run_batch(clips, tmp_path / "local", config, jobs=1)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        remote = run_batch_ray(clips, tmp_path / "ray", config)
    finally:
        ray.shutdown()
    assert [o.status for o in remote] == [o.status for o in local] == ["done", "done"]
    for name in ("jump", "walk"):
        a = motion_io.load(tmp_path / "local" / f"{name}.motion.npz").people[0].arrays
        b = motion_io.load(tmp_path / "ray" / f"{name}.motion.npz").people[0].arrays
        assert a["keypoints3d"].shape == b["keypoints3d"].shape
        # Ray tasks run torch on one thread, the local worker on two: float noise that the fit carries into
        # the depth (the person is 6 m away; up to 10.3 mm seen), never another clip or person.
        assert np.abs(a["keypoints3d"] - b["keypoints3d"]).max() < 0.02
    summary = json.loads((tmp_path / "ray" / "batch_summary.json").read_text())
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 0, "refused": 0}
