"""Batch: a folder of clips -> one ``.motion.npz``, ``.blend`` and ``.fbx`` per clip, and a summary.

Run it in a fresh Blender or Python (it replaces the open file with an empty one per clip)::

    python -m blender_addon.batch CLIPS/ OUT/ [--preset fast] [--fbx-preset unreal]   # from the repository
    blender -b --python-expr "from bl_ext.user_default.video2anim import batch; batch.main(['CLIPS/', 'OUT/'])"

A clip that fails does not stop the batch: the summary (logged, and written to
``OUT/batch_summary.json``) says which clips failed and why; the exit status is 1 if any did.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import bpy

from . import api
from . import motion_data as md
from .export import PRESETS as FBX_PRESETS
from .job import JobSnapshot
from .job_options import PRESETS
from .properties import MOVIE_SUFFIXES
from .safe_files import OutputPathError, atomic_target, check_outputs

log = logging.getLogger(__name__)


@dataclass
class ClipResult:
    video: str
    ok: bool = False
    motion: str = ""
    blend: str = ""
    fbx: str = ""
    error: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class BatchReport:
    results: list[ClipResult]

    @property
    def failed(self) -> list[ClipResult]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        lines = [f"{len(self.results) - len(self.failed)} of {len(self.results)} clip(s) converted."]
        lines += [f"FAILED {Path(r.video).name}: {r.error}" for r in self.failed]
        return "\n".join(lines)


def find_clips(folder: Path) -> list[Path]:
    """The video files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in MOVIE_SUFFIXES)


def scene_files(
    motion: Path, video: Path | None, blend: Path, fbx: Path, fbx_preset: str
) -> tuple[Path, Path]:
    """Import ``motion`` into an empty file (footage behind the camera, ground plane), save the
    ``.blend`` and export the ``.fbx`` (each written to a temporary name, then renamed)."""
    check_outputs([blend, fbx], [motion] + ([video] if video is not None else []))
    bpy.ops.wm.read_homefile(use_empty=True)
    armatures = api.import_people(
        motion, bpy.path.clean_name(blend.stem), video_path=video, ground_plane=True
    )
    with atomic_target(blend, ".blend") as tmp:
        tmp.unlink()  # Blender would keep the empty placeholder as a ".blend1" backup next to the outputs
        result = bpy.ops.wm.save_as_mainfile(filepath=str(tmp), check_existing=False, copy=True)
        if "FINISHED" not in result:
            raise RuntimeError(f"Blender did not save {blend}")
    return blend, api.export_fbx(armatures, fbx, fbx_preset)


def output_names(clips: Sequence[Path]) -> dict[Path, str]:
    """The output base name of each clip: its cleaned stem, or ``stem_ext`` (then a number) where two
    clips would share one (``clip.mp4`` and ``clip.mov``; names compared ignoring case)."""
    stems = {clip: bpy.path.clean_name(clip.stem) for clip in clips}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for clip, stem in stems.items():
        name = stem if counts[stem.lower()] == 1 else bpy.path.clean_name(f"{clip.stem}_{clip.suffix.lstrip('.')}")
        candidate, n = name, 2
        while candidate.lower() in taken:
            candidate, n = f"{name}_{n}", n + 1
        taken.add(candidate.lower())
        names[clip] = candidate
    return names


def prepare_out_folder(out_folder: Path) -> None:
    """Create the output folder and check that files can be written there (OutputPathError if not)."""
    try:
        out_folder.mkdir(parents=True, exist_ok=True)
        with atomic_target(out_folder / ".write-test") as tmp:
            tmp.write_bytes(b"ok")
        (out_folder / ".write-test").unlink()
    except OSError as exc:
        raise OutputPathError(
            f"Cannot write to the output folder {out_folder} ({exc.strerror or exc}): choose another folder."
        ) from exc


def convert_clip(
    video: Path, out_folder: Path, fbx_preset: str, name: str | None = None, **estimate_options: object
) -> ClipResult:
    """Estimate one clip, import it into an empty file, save the .blend and the .fbx (named ``name``,
    by default after the clip)."""
    result = ClipResult(str(video))
    name = name or bpy.path.clean_name(video.stem)
    try:
        last: deque[JobSnapshot] = deque(maxlen=1)
        motion = api.estimate_clip(
            video, out_folder / f"{name}.motion.npz", on_progress=last.append, **estimate_options
        )  # type: ignore[arg-type]
        result.motion = str(motion)
        result.warnings = list(last[0].warnings) if last else []
        blend, fbx = scene_files(
            motion, video, out_folder / f"{name}.blend", out_folder / f"{name}.fbx", fbx_preset
        )
        result.blend, result.fbx = str(blend), str(fbx)
        result.ok = True
    except (api.EstimateError, md.MotionDataError, OutputPathError) as exc:  # the message says it all
        result.error = str(exc)
        log.error("%s failed: %s", video.name, exc)
    except Exception as exc:  # noqa: BLE001 - one bad clip must not stop the batch
        result.error = f"{type(exc).__name__}: {exc}"
        log.exception("%s failed", video.name)
    return result


def run_batch(
    folder: str | Path, out_folder: str | Path, fbx_preset: str = "unity", **estimate_options: object
) -> BatchReport:
    """Convert every clip in ``folder``; ``estimate_options`` go to :func:`api.estimate_clip`.

    Raises OutputPathError when the output folder cannot be written (before any clip is run).
    """
    folder, out_folder = Path(folder), Path(out_folder)
    prepare_out_folder(out_folder)
    clips = find_clips(folder)
    if not clips:
        log.warning("no video files (%s) in %s", ", ".join(MOVIE_SUFFIXES), folder)
    names = output_names(clips)
    results = []
    for index, video in enumerate(clips, 1):
        log.info("[%d/%d] %s -> %s.*", index, len(clips), video.name, names[video])
        results.append(convert_clip(video, out_folder, fbx_preset, names[video], **estimate_options))
    report = BatchReport(results)
    summary = out_folder / "batch_summary.json"
    with atomic_target(summary, ".json") as tmp:
        tmp.write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
    log.info("%s (details: %s)", report.summary(), summary)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blender_addon.batch", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="folder of video clips")
    parser.add_argument("out_folder", type=Path, help="where the .motion.npz, .blend and .fbx files go")
    parser.add_argument("--preset", choices=PRESETS, default="balanced")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--person", default="auto", help="auto, all or a track id")
    parser.add_argument("--fbx-preset", choices=sorted(FBX_PRESETS), default="unity")
    parser.add_argument("--python", type=Path, default=None, help="the backend's Python (default: found)")
    parser.add_argument("--backend-root", type=Path, default=None, help="folder holding the backend package")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per clip before cancelling it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    if not args.folder.is_dir():
        log.error("%s is not a folder", args.folder)
        return 2
    try:
        report = run_batch(
            args.folder,
            args.out_folder,
            fbx_preset=args.fbx_preset,
            preset=args.preset,
            device=args.device,
            person=args.person,
            python=args.python,
            backend_root=args.backend_root,
            timeout_s=args.timeout,
        )
    except OutputPathError as exc:
        log.error("%s", exc)
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
