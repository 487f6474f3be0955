"""Issue 10: nothing the user owns is lost, bad paths fail before any work, faults leave old outputs.

One test per defect of the issue (the motion file's strict validation is in ``test_motion_io.py``,
the add-on's import and the batch in ``test_blender_safety.py``, fuzzing in ``test_fuzz.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend import protocol
from backend.cli import main
from backend.config import DecodeConfig, DetectConfig, EstimateConfig, TrackConfig, preset_detect, preset_fit
from backend.errors import BadInput, Cancelled
from tests.conftest import DEMO, write_clip

OLD_MOTION, OLD_PREVIEW, OLD_SHEET = b"an earlier motion file", b"an earlier preview", b"an earlier sheet"


def _events(capfd: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]


def _demo_copy(folder: Path) -> Path:
    video = folder / "v.mp4"
    shutil.copyfile(DEMO, video)
    return video


def test_out_equal_to_the_input_video_is_refused_and_the_video_kept(tmp_path, capfd) -> None:
    video = _demo_copy(tmp_path)
    before = video.read_bytes()
    code = main(["estimate", str(video), "--out", str(video), "--preview", str(tmp_path / "p.mp4"),
                 "--end", "5", "--events"])  # fmt: skip
    events = _events(capfd)
    assert code == 2 and events[-1]["kind"] == "bad_input" and "input video" in events[-1]["message"]
    assert not [e for e in events if e["event"] == "stage"]  # refused before decoding
    assert video.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


@pytest.mark.parametrize("which", ["out", "preview"])
def test_preview_equal_to_out_or_a_folder_is_refused_before_decoding(tmp_path, capfd, which) -> None:
    clip = write_clip(tmp_path / "c.mp4")
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "folder.mp4").mkdir()
    out = tmp_path / ("folder.npz" if which == "out" else "o.npz")
    for preview in (tmp_path / "o.npz", tmp_path / "folder.mp4"):
        code = main(["estimate", str(clip), "--out", str(out), "--preview", str(preview), "--events"])
        events = _events(capfd)
        assert code == 2 and not [e for e in events if e["event"] == "stage"], events
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "folder.mp4", "folder.npz"]


@pytest.mark.parametrize("focal", ["nan", "inf", "-inf", "1e300"])
def test_focal_length_must_be_finite(tmp_path, capsys, focal) -> None:
    clip = write_clip(tmp_path / "c.mp4")
    code = main(["estimate", str(clip), "--out", str(tmp_path / "o.npz"), f"--focal-px={focal}"])
    assert code == 2 and "--focal-px" in capsys.readouterr().err


def _run_keeping_old_outputs(tmp_path: Path, is_cancelled, expect: type[BaseException]) -> None:
    """Run the pipeline on 12 demo frames over existing outputs; the run must fail with ``expect`` and
    leave the existing outputs byte for byte, with no temporary file behind."""
    from backend.pipeline import estimate

    out, preview = tmp_path / "d.motion.npz", tmp_path / "p.mp4"
    out.write_bytes(OLD_MOTION)
    preview.write_bytes(OLD_PREVIEW)
    preview.with_suffix(".png").write_bytes(OLD_SHEET)
    config = EstimateConfig(
        preset="fast", decode=DecodeConfig(end=12), detect=preset_detect("fast"), fit=preset_fit("fast")
    )
    with pytest.raises(expect):
        estimate(DEMO, out, config, preview, protocol.null_reporter, is_cancelled)
    assert out.read_bytes() == OLD_MOTION and preview.read_bytes() == OLD_PREVIEW
    assert preview.with_suffix(".png").read_bytes() == OLD_SHEET
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.motion.npz", "p.mp4", "p.png"]


def test_cancel_during_the_preview_keeps_the_earlier_outputs(tmp_path) -> None:
    import backend.pipeline.preview as preview_module

    calls = {"n": 0}
    render = preview_module.render_frames

    def counting(*args, **kwargs):
        for item in render(*args, **kwargs):
            calls["n"] += 1
            yield item

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preview_module, "render_frames", counting)
        _run_keeping_old_outputs(tmp_path, lambda: calls["n"] >= 2, Cancelled)
    assert calls["n"] >= 2  # the preview had started: the motion file was already written (staged)


def test_preview_on_a_full_disk_is_bad_input_and_keeps_the_earlier_outputs(tmp_path) -> None:
    """A full disk makes OpenCV's writer drop frames silently; the read-back check catches it."""
    import backend.pipeline.preview as preview_module

    real_writer = cv2.VideoWriter

    class DiskFullWriter:
        def __init__(self, *args) -> None:
            self.inner, self.frames = real_writer(*args), 0

        def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
            return self.inner.isOpened()

        def write(self, frame: np.ndarray) -> None:
            self.frames += 1
            if self.frames <= 2:
                self.inner.write(frame)

        def release(self) -> None:
            self.inner.release()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(preview_module.cv2, "VideoWriter", DiskFullWriter)
        patch.setattr(
            preview_module.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0)
        )
        _run_keeping_old_outputs(tmp_path, lambda: False, BadInput)


def test_truncated_video_warns_about_the_missing_frames(tmp_path) -> None:
    from backend.detect.run import detect_subjects
    from backend.io.video import probe

    data = DEMO.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(0.3 * len(data))])
    info = probe(cut)
    config = DetectConfig(holistic=False)
    result = detect_subjects(info, 0, None, config, TrackConfig(), protocol.null_reporter, lambda: False)
    decoded = len(result.subjects[0].frame_index)
    assert decoded < info.frame_count == 230
    assert any("truncated" in w and f"only {decoded} of the 230" in w for w in result.warnings), (
        result.warnings
    )
