"""Fuzzing (issue 10): malformed motion files and bad command lines.

Every generated motion file must end as one ``BadInput`` line (backend) or ``MotionDataError`` (add-on),
change no file, and leave Blender's scene as it was; every bad argument set must exit 2 before any
work, create no file and change none. A fast subset runs by default; ``-m slow`` runs the full counts
(1000 files, every argument set).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backend.errors import BadInput
from backend.io import motion
from blender_addon import motion_data as md
from tests.fuzz_motion import malformed_files

FAST_FILES, SLOW_FILES = 150, 1000


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def _fuzz_motion_files(folder: Path, count: int, seed: int) -> dict[str, int]:
    files = list(malformed_files(folder, count, seed))
    before = _digest(folder)
    rejected: dict[str, int] = {}
    for name, path in files:
        with pytest.raises(BadInput) as backend_error:
            motion.load(path)
        assert "\n" not in str(backend_error.value)
        with pytest.raises(md.MotionDataError):
            md.read_motion(path)
        rejected[name] = rejected.get(name, 0) + 1
    assert _digest(folder) == before  # nothing changed, nothing added
    return rejected


def test_malformed_motion_files_fast(tmp_path: Path) -> None:
    rejected = _fuzz_motion_files(tmp_path, FAST_FILES, seed=10)
    assert sum(rejected.values()) == FAST_FILES and len(rejected) >= 10  # every kind of damage was tried


@pytest.mark.slow
def test_malformed_motion_files_full(tmp_path: Path) -> None:
    rejected = _fuzz_motion_files(tmp_path, SLOW_FILES, seed=11)
    print(f"fuzz: {sum(rejected.values())} malformed motion files, all BadInput: {rejected}")
    assert sum(rejected.values()) == SLOW_FILES


# ---------------------------------------------------------------------------------------- arguments
def _argument_sets(folder: Path) -> list[list[str]]:
    """Bad command lines for ``estimate``: each holds one mistake, among otherwise valid options."""
    import numpy as np

    video, text, empty = folder / "clip.mp4", folder / "notes.mp4", folder / "empty.mp4"
    out, old, sub = folder / "clip.motion.npz", folder / "old.motion.npz", folder / "sub"
    v, o = str(video), ["--out", str(out)]
    mistakes: list[list[str]] = [
        [v, "--out", v], [v, "--out", str(sub)], [v, *o, "--preview", str(sub)], [v, *o, "--preview", v],
        [v, *o, "--preview", str(out)], [v, "--out", str(folder / "x.mp4")], [v, *o, "--preview", str(folder / "p.png")],
        [v, "--out", str(folder / "missing" / "x.npz")], [v, "--out", "/proc/x.motion.npz"],
        [v, "--out", str(old), "--preview", str(folder / "old.png")], [v, "--out", str(sub / ".." / "clip.mp4")],
        [v, "--out", str(old), "--preview", str(folder / "old.motion.mp4"), "--start", "-1"],
        *[[v, *o, "--focal-px", bad] for bad in ("nan", "inf", "-inf", "0", "-3", "1e9", "abc", "", "0.5")],
        *[[v, *o, *bad] for bad in (["--start", "-1"], ["--end", "0"], ["--start", "4", "--end", "4"],
                                    ["--start", "6", "--end", "2"], ["--start", "x"], ["--end", "1.5"])],
        *[[v, *o, "--person", bad] for bad in ("abc", "-1", "1.5", "", "all,2")],
        *[[v, *o, "--fusion-weight", bad] for bad in ("nan", "-0.1", "1.5", "x")],
        *[[v, *o, *bad] for bad in (["--preset", "ultra"], ["--device", "tpu"], ["--lifter", "x"], ["--prior", "y"],
                                    ["--body", "smpl"], ["--body", "smplx", "--model-path", str(folder / "nope")],
                                    ["--gender", "x"], ["--collision", "maybe"], ["--foo"], ["--body", "anny", "--gender"])],
        *[[v, *o, flag, path] for flag in ("--lifter-weights", "--vposer") for path in (str(folder / "nope.pt"), str(text))],
        [str(folder / "nope.mp4"), *o], [str(sub), *o], [str(empty), *o], [str(text), *o], [v], [],
    ]  # fmt: skip
    rng = np.random.default_rng(3)
    extras = [
        ["--preset", "fast"],
        ["--no-hands"],
        ["--no-face"],
        ["--events"],
        ["--prior", "none"],
        ["--verbose"],
    ]
    sets = [list(m) for m in mistakes]
    for m in mistakes[:24]:  # the same mistakes again, among other valid options
        picked = [extras[i] for i in rng.choice(len(extras), size=2, replace=False)]
        sets.append(m + [a for e in picked for a in e])
    return sets


def _run_estimate(argv: list[str]) -> int:
    from backend.cli import main

    try:
        return main(["estimate", *argv])
    except SystemExit as exc:  # argparse's own errors (unknown flag, a word for a number)
        return int(exc.code or 0)


def test_bad_argument_sets_exit_2_and_touch_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import write_clip

    write_clip(tmp_path / "clip.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "old.motion.npz").write_bytes(b"an earlier motion file")
    (tmp_path / "old.mp4").write_bytes(b"an earlier preview")
    (tmp_path / "sub").mkdir()
    before = _digest(tmp_path)
    sets = _argument_sets(tmp_path)
    assert len(sets) >= 50
    for argv in sets:
        code = _run_estimate(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert "Traceback" not in err, argv
        assert _digest(tmp_path) == before, argv
        assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [], argv
