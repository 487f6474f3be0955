"""The estimate pipeline: decode -> detect -> track -> lift -> fit -> write (+ preview).

``estimate`` reads as the list of stages it runs; each stage's work lives in its room (``detect/``,
``lift/``, ``fit/``, ``record`` for the write stage, ``preview``). It takes ``report(event)`` and
``is_cancelled()`` and raises BadInput or Cancelled. Every output is staged under temporary names and
renamed into place only when the whole run succeeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backend import protocol, threads
from backend.body.factory import build_body
from backend.body.model import BodyModel
from backend.cancel import shielded
from backend.config import EstimateConfig
from backend.detect.run import detect_people, track_subjects
from backend.detect.types import DetectionResult, SubjectTrack
from backend.errors import BadInput, Cancelled
from backend.fit.optimize import FitResult, TemporalFitter
from backend.fit.windows import fit_windowed
from backend.io import motion as motion_io
from backend.io.outputs import StagedOutputs, check_output_paths
from backend.io.video import VideoInfo, probe
from backend.lift.base import LiftResult
from backend.pipeline.models import Loaded, Models, load_models, make_lifter
from backend.pipeline.preview import PreviewSource, write_preview
from backend.pipeline.record import Camera, RunFacts, fit_inputs, metrics, motion_meta, person_arrays

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "track", "lift", "fit", "write")
PREVIEW_SUFFIXES = (".mp4",)


@dataclass
class EstimateSummary:
    motion_path: Path
    preview_paths: list[Path] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    fps: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Run:
    """Stage events, timings and warnings of one run."""

    def __init__(self, report: protocol.Reporter) -> None:
        self.report = report
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if name in STAGES:
            self.report(protocol.stage(name, STAGES.index(name) + 1, len(STAGES)))
        clock = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - clock

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)
        self.report(protocol.warning(message))


@dataclass
class _Setup:
    """What the decode stage prepares: the device, the body, the learned models and the video."""

    device: torch.device
    body: BodyModel
    models: Models
    info: VideoInfo
    camera: Camera
    cores: int
    """Threads for detection: the cores other processes leave free, or ``DetectConfig.workers``."""


def output_targets(video: Path, out: Path, preview: Path | None) -> list[Path]:
    """The run's output files (motion file, then the preview MP4 and its PNG contact sheet), checked
    before any work: BadInput for a path that is the input, another output, a folder, or of the
    wrong kind (the motion file is an ``.npz``, the preview an ``.mp4``)."""
    targets = [out] + ([Path(preview), Path(preview).with_suffix(".png")] if preview is not None else [])
    labels = ["--out", "--preview", "the preview's contact sheet"][: len(targets)]
    check_output_paths(targets, [video], labels)
    if out.suffix.lower() != ".npz":
        raise BadInput(f"--out {out} must end with .npz (e.g. {out.with_suffix('').name}.motion.npz).")
    if preview is not None and Path(preview).suffix.lower() not in PREVIEW_SUFFIXES:
        raise BadInput(f"--preview {preview} must end with .mp4 (the preview is an MP4 video).")
    return targets


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda was asked for, but PyTorch sees no CUDA GPU: use --device cpu or auto.")
    return torch.device(name)


def _decode(video: Path, config: EstimateConfig, loaded: Loaded | None) -> _Setup:
    """Check and load everything the long stages need, so that a bad file fails at once (the models
    from ``loaded`` when a persistent worker already has them)."""
    device = resolve_device(config.device)
    cores = threads.configure()  # the cores other processes leave free (a CPU fit keeps re-checking)
    info = probe(video)
    if loaded is None:
        models = load_models(config.lift)
        body = build_body(config.body, config.model_path, config.gender, device)
    else:
        models = loaded.models_for(config.lift)
        body = loaded.body_for(config.body, config.model_path, config.gender, device)
    dcfg = config.decode
    focal = "--focal-px" if dcfg.focal_px is not None else f"default {dcfg.default_fov_deg:g} deg field of view (long side)"
    camera = Camera(info.intrinsics(dcfg.focal_px, dcfg.default_fov_deg), focal)
    return _Setup(device, body, models, info, camera, config.detect.workers or cores)


def _keep_parts(subjects: list[SubjectTrack], config: EstimateConfig) -> None:
    """``--no-hands`` / ``--no-face``: drop the landmarks the user does not want fitted."""
    for subject in subjects:
        if not config.detect.hands:
            subject.left_hand2d[:] = 0.0
            subject.right_hand2d[:] = 0.0
        if not config.detect.face:
            subject.face2d[:] = 0.0


def _fit(setup: _Setup, subjects: list[SubjectTrack], lifts: list[LiftResult], config: EstimateConfig,
         run: _Run, is_cancelled: protocol.CancelCheck) -> tuple[list[FitResult], dict]:  # fmt: skip
    """Fit every subject; the first one's metrics describe the run."""
    fitter = TemporalFitter(setup.body, config.fit, setup.device, setup.models.prior)
    fits, run_metrics = [], {}
    for subject, lift in zip(subjects, lifts, strict=True):
        inputs = fit_inputs(subject, lift, setup.camera, setup.info.height)
        result = fit_windowed(fitter, inputs, run.report, is_cancelled, config.fit.windows)
        for message in result.warnings:
            run.warn(message)
        fits.append(result)
        run_metrics = run_metrics or metrics(subject, result, inputs.conf2d)
    return fits, run_metrics


def _motion(video: Path, setup: _Setup, config: EstimateConfig, detection: DetectionResult,
            lifts: list[LiftResult], fits: list[FitResult], run: _Run, run_metrics: dict) -> motion_io.MotionFile:  # fmt: skip
    """The write stage's content: every person's arrays and the meta."""
    subjects = detection.subjects
    people: list[motion_io.PersonMotion] = []
    for s, f, lift in zip(subjects, fits, lifts, strict=True):
        shared = people[0]["world_from_camera"] if people else None  # one world (camera, ground) per clip
        arrays = person_arrays(s, f, lift, setup.body, setup.camera.rotations, shared)
        people.append(motion_io.PersonMotion(s.track_id, arrays))
    facts = RunFacts(
        video, setup.info, setup.camera, setup.body, config, lifts[0].method,
        "vposer" if setup.models.prior is not None else "none", str(setup.device), detection.n_tracks,
        detection.people,
    )  # fmt: skip
    meta = motion_meta(facts, len(subjects[0].frame_index), run.timings, run_metrics, fits[0].stats, run.warnings)
    return motion_io.MotionFile(meta, people, detection.thumbnails)


def estimate(
    video: Path,
    out: Path,
    config: EstimateConfig,
    preview: Path | None,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
    loaded: Loaded | None = None,
) -> EstimateSummary:
    """Run the whole pipeline on ``video`` and write ``out`` (and the preview, if asked); ``loaded``
    keeps the models of a persistent worker between clips.

    Output paths are checked before decoding; every output is staged under a temporary name and
    renamed into place only when the whole run has succeeded (``backend.io.outputs``).
    """
    out, run = Path(out), _Run(report)
    targets = output_targets(Path(video), out, preview)
    dcfg = config.decode
    with StagedOutputs() as staged:
        with run.stage("decode"):
            setup = _decode(video, config, loaded)
        with run.stage("detect"):
            found = detect_people(
                setup.info, dcfg.start, dcfg.end, config.detect, report, is_cancelled, setup.camera.intrinsics,
                setup.cores,
            )
            setup.camera = dataclasses.replace(setup.camera, rotations=found.camera_rotations)
        with run.stage("track"):
            detection = track_subjects(found, config.detect, config.track, report, is_cancelled, setup.cores)
            for message in detection.warnings:
                run.warn(message)
            _keep_parts(detection.subjects, config)
        with run.stage("lift"):
            lifter = make_lifter(setup.models, (setup.info.width, setup.info.height), config.lift)
            lifts = [lifter.lift(s) for s in detection.subjects]
        with run.stage("fit"):
            fits, run_metrics = _fit(setup, detection.subjects, lifts, config, run, is_cancelled)
        with run.stage("write"), staged.writing(out) as (tmp,):
            motion_io.write(tmp, _motion(video, setup, config, detection, lifts, fits, run, run_metrics), str(out))
        if preview is not None:
            with run.stage("preview"), staged.writing(*targets[1:]) as (video_tmp, sheet_tmp):
                _preview(setup, detection.subjects[0], fits[0], (video_tmp, sheet_tmp), report, is_cancelled)
        if is_cancelled():
            raise Cancelled()
        with shielded(is_cancelled):  # a cancel request now waits: the outputs are complete
            staged.commit()
    report(protocol.result(str(out)))
    n = len(detection.subjects[0].frame_index)
    fps = {name: n / max(run.timings[name], 1e-6) for name in ("detect", "lift", "fit")}
    return EstimateSummary(out, targets[1:], run.timings, fps, run_metrics, run.warnings)


def _preview(setup: _Setup, subject: SubjectTrack, fit: FitResult, paths: tuple[Path, Path],
             report: protocol.Reporter, is_cancelled: protocol.CancelCheck) -> None:  # fmt: skip
    """The fitted body drawn over the footage (MP4) and a contact sheet (PNG)."""
    body, device = setup.body, setup.device
    rest = body.rest_state(torch.as_tensor(fit.phenotypes, device=device))

    @torch.no_grad()
    def vertices(a: int, b: int) -> np.ndarray:
        return body.forward(fit.canonical_pose(a, b, device), rest, vertices=True).vertices.cpu().numpy()

    source = PreviewSource(
        frame_index=subject.frame_index, valid=subject.valid, projected=fit.projected,
        vertices=vertices, faces=body.faces.cpu().numpy(), intrinsics=setup.camera.intrinsics,
    )  # fmt: skip
    write_preview(setup.info, source, paths[0], paths[1], report, is_cancelled)
