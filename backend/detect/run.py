"""The detect stage: multi-person landmarks, tracking, subject choice, then Holistic on the subject.

Two streamed passes over the frames (never all held in memory):
1. ``PoseLandmarker`` finds everyone's body in every frame (:mod:`backend.detect.multi`);
   detections are linked into tracks, tracks of one person lost for a while re-linked by
   appearance, and the subject(s) chosen (:mod:`backend.detect.track`).
2. MediaPipe Holistic on a crop around each subject adds hands, face and silhouette
   (:mod:`backend.detect.holistic`); skipped when ``DetectConfig.holistic`` is False.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from backend import protocol
from backend.config import DetectConfig, TrackConfig
from backend.detect.holistic import SubjectHolistic, effective_complexity
from backend.detect.multi import FramePeople, MultiPoseDetector
from backend.detect.track import Track, associate, choose_subjects, keypoint_bbox, relink
from backend.detect.types import N_BODY, N_FACE, N_HAND, DetectionResult, SubjectTrack
from backend.errors import BadInput, Cancelled
from backend.io.video import VideoInfo, iter_frames

log = logging.getLogger(__name__)

MAX_MISSING_SHARE = 0.2
"""Warn when the subject is missing in more than this share of the frames."""
_PROGRESS_PERIOD_S = 0.2


class _Progress:
    """Throttled ``progress`` events for the detect stage (at most one per 0.2 s)."""

    def __init__(self, report: protocol.Reporter, total: int) -> None:
        self.report = report
        self.total = max(total, 1)
        self._last = 0.0
        self._pass_start = time.perf_counter()
        self._pass_done = 0

    def new_pass(self) -> None:
        self._pass_start = time.perf_counter()
        self._pass_done = 0

    def step(self, done: int, force: bool = False) -> None:
        """``done`` frames processed over both passes; one more frame in this pass."""
        self._pass_done += 1
        now = time.perf_counter()
        if force or now - self._last >= _PROGRESS_PERIOD_S:
            self._last = now
            fps = self._pass_done / max(now - self._pass_start, 1e-6)
            self.report(protocol.progress("detect", min(done, self.total), self.total, fps))


def frame_ranges(frame_index: np.ndarray, mask: np.ndarray) -> str:
    """'a-b, c, ...': runs of source frame numbers where ``mask`` (T,) is True."""
    runs: list[str] = []
    idx = np.asarray(frame_index)[np.asarray(mask, bool)]
    if len(idx) == 0:
        return ""
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(idx) - 1]])
    for a, b in zip(starts, ends, strict=True):
        runs.append(f"{idx[a]}" if a == b else f"{idx[a]}-{idx[b]}")
    return ", ".join(runs)


def _subject_arrays(
    track: Track, people: list[FramePeople], info: VideoInfo, silhouette_size: int
) -> SubjectTrack:
    """A SubjectTrack with body, world and box from pass 1; hands, face, silhouette zero."""
    n = len(people)
    body2d = np.zeros((n, N_BODY, 3), np.float32)
    world = np.zeros((n, N_BODY, 3), np.float32)
    for t in np.flatnonzero(track.det >= 0):
        body2d[t] = people[t].body2d[track.det[t]]
        world[t] = people[t].world[track.det[t]]
    valid = track.det >= 0
    bbox = keypoint_bbox(body2d, pad=0.1)
    bbox[:, [0, 2]] = np.clip(bbox[:, [0, 2]], 0, info.width)
    bbox[:, [1, 3]] = np.clip(bbox[:, [1, 3]], 0, info.height)
    bbox[~valid] = 0.0
    return SubjectTrack(
        track_id=track.track_id,
        frame_index=np.array([p.index for p in people], np.int64),
        time_s=np.array([p.time_s for p in people], np.float64),
        valid=valid,
        body2d=body2d,
        body_world=world,
        left_hand2d=np.zeros((n, N_HAND, 3), np.float32),
        right_hand2d=np.zeros((n, N_HAND, 3), np.float32),
        face2d=np.zeros((n, N_FACE, 3), np.float32),
        bbox=bbox.astype(np.float32),
        silhouette=np.zeros((n, silhouette_size, silhouette_size), np.uint8),
    )


def _holistic_pass(
    info: VideoInfo,
    subjects: list[SubjectTrack],
    detect: DetectConfig,
    progress: _Progress,
    done: int,
    is_cancelled: protocol.CancelCheck,
    warnings: list[str],
) -> None:
    """Fill hands, face and silhouette of every subject in place (one Holistic each)."""
    complexity, note = effective_complexity(detect.model_complexity)
    if note:
        warnings.append(note)
    position = {int(f): t for t, f in enumerate(subjects[0].frame_index)}
    # Decode only the span where some subject is valid; the frames around it count as done.
    seen = np.flatnonzero(np.any([s.valid for s in subjects], axis=0))
    first, last = int(subjects[0].frame_index[seen[0]]), int(subjects[0].frame_index[seen[-1]])
    done += int(seen[0])
    graphs = [SubjectHolistic(detect, complexity) for _ in subjects]
    try:
        progress.new_pass()
        for frame in iter_frames(info, first, last + 1):
            if is_cancelled():
                raise Cancelled()
            t = position.get(frame.index)
            if t is None:
                continue
            for subject, graph in zip(subjects, graphs, strict=True):
                if not subject.valid[t]:
                    continue
                out = graph.process(frame.rgb, subject.body2d[t], subject.bbox[t])
                subject.left_hand2d[t] = out.left_hand
                subject.right_hand2d[t] = out.right_hand
                subject.face2d[t] = out.face
                subject.silhouette[t] = out.silhouette
            done += 1
            progress.step(done)
        for subject, graph in zip(subjects, graphs, strict=True):
            if graph.disagreements:
                log.info(
                    "Holistic saw someone other than subject %d in %d frames (hands and face dropped there)",
                    subject.track_id, graph.disagreements,
                )  # fmt: skip
    finally:
        for graph in graphs:
            graph.close()


def detect_subjects(
    info: VideoInfo,
    start: int,
    end: int | None,
    detect: DetectConfig,
    track: TrackConfig,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
) -> DetectionResult:
    """Detect, track and choose the subject(s) of ``info``'s frames ``start <= index < end``.

    Emits throttled ``progress`` events (total counts both passes), checks ``is_cancelled``
    every frame. Frames where a subject is missing are kept with ``valid == False``.

    Raises:
        BadInput: no frame in the range, no person in any frame, or an unknown ``--person``.
        Cancelled: ``is_cancelled()`` returned True.
    """
    clock = time.perf_counter()
    name = Path(info.path).name
    stop = info.frame_count if end is None else min(end, info.frame_count)
    passes = 2 if detect.holistic else 1
    progress = _Progress(report, passes * max(stop - start, 1))

    people: list[FramePeople] = []
    with MultiPoseDetector(detect) as detector:
        for frame in iter_frames(info, start, end):
            if is_cancelled():
                raise Cancelled()
            people.append(detector.detect(frame))
            progress.step(len(people))
    pass1_s = time.perf_counter() - clock
    n = len(people)
    if n == 0:
        raise BadInput(
            f"No frames to process in {name} from frame {start}"
            f"{'' if end is None else f' to {end}'}: the clip has about {info.frame_count} frames; "
            "check --start and --end."
        )
    progress.total = passes * n
    if not any(len(p.body2d) for p in people):
        raise BadInput(
            f"No person was detected in {name}: use a clip where one person is fully visible, "
            "well lit and not too small in the frame."
        )

    tracks = associate([p.body2d for p in people], track)
    tracks = relink(tracks, [p.colour for p in people], [p.ratios for p in people])
    frame_index = np.array([p.index for p in people], np.int64)
    chosen, warnings = choose_subjects(tracks, track.person, frame_index)
    log.info(
        "Tracks: %s",
        ", ".join(f"id {t.track_id} ({t.n_frames} frames, prominence {t.prominence:.3g})" for t in tracks),
    )
    subjects = [_subject_arrays(t, people, info, detect.silhouette_size) for t in chosen]
    del people

    pass2_s = 0.0
    if detect.holistic:
        t2 = time.perf_counter()
        _holistic_pass(info, subjects, detect, progress, n, is_cancelled, warnings)
        pass2_s = time.perf_counter() - t2
    progress.step(progress.total, force=True)

    for subject in subjects:
        missing = ~subject.valid
        if missing.mean() > MAX_MISSING_SHARE:
            warnings.append(
                f"Person {subject.track_id} was not detected in {int(missing.sum())} of {n} frames "
                f"({frame_ranges(subject.frame_index, missing)}); those frames are marked invalid."
            )
    elapsed = time.perf_counter() - clock
    log.info(
        "Detect: %d frames, pass 1 %.1f s (%.1f fps), pass 2 %.1f s (%.1f fps), total %.1f s",
        n, pass1_s, n / max(pass1_s, 1e-6), pass2_s, n / max(pass2_s, 1e-6) if pass2_s else 0.0, elapsed,
    )  # fmt: skip
    return DetectionResult(
        subjects=subjects, n_tracks=len(tracks), warnings=warnings, fps=n / max(elapsed, 1e-6)
    )
