"""The detect stage: multi-person landmarks, tracking, subject choice, then Holistic on the subject.

Two streamed passes over the frames (never all held in memory):
1. ``PoseLandmarker`` finds everyone's body in every frame (:mod:`backend.detect.multi`);
   detections are linked into tracks, tracks of one person lost for a while re-linked by
   appearance (:mod:`backend.detect.reid`), and the subject(s) chosen (:mod:`backend.detect.track`).
2. For the subject(s) only (:mod:`backend.detect.subject_pass`): the frames next to those
   where pass 1 found a subject, but where it did not, are backfilled by a single-person graph
   on a crop around his nearest box (:mod:`backend.detect.backfill`), and MediaPipe Holistic
   on a crop around him adds hands, face and silhouette (:mod:`backend.detect.holistic`;
   skipped when ``DetectConfig.holistic`` is False).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend import protocol
from backend.config import DetectConfig, TrackConfig
from backend.detect.camera_motion import still_or_turning
from backend.detect.handover import Board, assemble, run_stretch
from backend.detect.identity import split_by_appearance
from backend.detect.keypoints import TrackKeypoints
from backend.detect.multi import FramePeople
from backend.detect.parallel import run_tasks, spans
from backend.detect.people_list import frame_ranges, list_people, lost_and_found
from backend.detect.reid import relink
from backend.detect.subject_pass import subject_pass
from backend.detect.track import Track, associate, choose_subjects, keypoint_bbox
from backend.detect.types import N_BODY, N_FACE, N_HAND, DetectionResult, SubjectTrack
from backend.errors import BadInput
from backend.io.video import VideoInfo

log = logging.getLogger(__name__)

MAX_MISSING_SHARE = 0.2
"""Warn when the subject is missing in more than this share of the frames."""
OTHER_GAP_S = 1.0
"""Longest time (s) another person may go undetected and still have a box there, interpolated
between their detections on either side (``_other_boxes``)."""
_PROGRESS_PERIOD_S = 0.2


class _Progress:
    """Throttled ``progress`` events of one stage (at most one per 0.2 s)."""

    def __init__(self, report: protocol.Reporter, stage: str, total: int) -> None:
        self.report, self.stage = report, stage
        self.total = max(total, 1)
        self._last = 0.0
        self._start = time.perf_counter()

    def step(self, done: int, force: bool = False) -> None:
        """``done`` frames processed in this stage."""
        now = time.perf_counter()
        if force or now - self._last >= _PROGRESS_PERIOD_S:
            self._last = now
            fps = done / max(now - self._start, 1e-6)
            self.report(protocol.progress(self.stage, min(done, self.total), self.total, fps))


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


def _other_boxes(tracks: list[Track], subject: Track, people: list[FramePeople]) -> np.ndarray:
    """(T, M, 4) float32 boxes of the M tracks other than ``subject``, NaN where absent.

    Where another person goes undetected for at most ``OTHER_GAP_S`` between two detections, their box is
    interpolated: the multi-person pass often finds only one of two people standing close together (one
    per frame, in turns), and the subject's crop then holds the other one, whom the subject pass must not
    take for the subject (``backfill.reject_reason``).
    """
    out = np.full((len(people), max(len(tracks) - 1, 0), 4), np.nan, np.float32)
    others = [tr for tr in tracks if tr.track_id != subject.track_id]
    times = np.array([p.time_s for p in people], np.float64)
    for m, tr in enumerate(others):
        seen = np.flatnonzero(tr.det >= 0)
        if len(seen):
            out[seen, m] = keypoint_bbox(np.stack([people[t].body2d[tr.det[t]] for t in seen]), pad=0.1)
        for a, b in zip(seen[:-1], seen[1:], strict=True):
            if b - a > 1 and times[b] - times[a] <= OTHER_GAP_S:
                share = ((times[a + 1 : b] - times[a]) / (times[b] - times[a]))[:, None]
                out[a + 1 : b, m] = (1.0 - share) * out[a, m] + share * out[b, m]
    return out


def _short_read_warning(name: str, decoded: int, start: int, stop: int) -> str | None:
    """A warning when fewer frames decode than the container lists for the range (a truncated or
    damaged file); container counts of variable-frame-rate clips may be off by a frame or two."""
    expected = stop - start
    if expected - decoded <= max(2, int(0.01 * expected)):
        return None
    return (
        f"{name}: only {decoded} of the {expected} frames its container lists for this range could be "
        f"decoded (frames {start + decoded} to {stop - 1} are missing); the file may be truncated or "
        "damaged: re-copy or re-export it to process the whole clip."
    )


@dataclass
class PeopleDetections:
    """Pass 1 (the detect stage): everyone MediaPipe's multi-person detector found, frame by frame."""

    info: VideoInfo
    people: list[FramePeople]
    frame_index: np.ndarray
    """(T,) source frame numbers."""
    warnings: list[str]
    seconds: float
    camera_rotations: np.ndarray | None = None
    """(T, 3, 3) each frame's camera to the first frame's, from the background; None: a still camera."""


def detect_people(
    info: VideoInfo,
    start: int,
    end: int | None,
    detect: DetectConfig,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
    intrinsics: np.ndarray | None = None,
    workers: int = 1,
) -> PeopleDetections:
    """Detect every person in ``info``'s frames ``start <= index < end`` (throttled ``detect`` progress);
    with the camera's ``intrinsics``, also how the camera turns (``camera_motion``). The frames are cut
    into up to ``workers`` stretches, each detected on a thread of its own (:mod:`.parallel`).

    Raises:
        BadInput: no frame in the range, or no person in any frame.
        Cancelled: ``is_cancelled()`` returned True.
    """
    clock = time.perf_counter()
    name = Path(info.path).name
    stop = info.frame_count if end is None else min(end, info.frame_count)
    progress = _Progress(report, "detect", max(stop - start, 1))
    board = Board([a for a, _ in spans(start, stop, workers)])
    tasks = [
        functools.partial(run_stretch, board, k, info, end, detect, intrinsics) for k in range(len(board.stretches))
    ]
    run_tasks(tasks, progress.step, is_cancelled)
    people, chain, failed = assemble(board)
    if not people:
        raise BadInput(
            f"No frames to process in {name} from frame {start}"
            f"{'' if end is None else f' to {end}'}: the clip has about {info.frame_count} frames; "
            "check --start and --end."
        )
    progress.total = len(people)
    progress.step(len(people), force=True)
    short_read = _short_read_warning(name, len(people), start, stop)
    if not any(len(p.body2d) for p in people):
        raise BadInput(
            f"No person was detected in {name}: use a clip where one person is fully visible, "
            "well lit and not too small in the frame."
        )
    frame_index = np.array([p.index for p in people], np.int64)
    elapsed = time.perf_counter() - clock
    handovers = [s.handover for s in board.stretches if s.handover is not None]
    log.info("Detect: %d frames in %.1f s (%.1f fps; %d thread(s), handovers at %s)", len(people), elapsed,
             len(people) / max(elapsed, 1e-6), len(board.stretches), handovers or "none")  # fmt: skip
    rotations = still_or_turning(chain, failed) if chain is not None else None
    return PeopleDetections(info, people, frame_index, [short_read] if short_read else [], elapsed, rotations)


def identify(found: PeopleDetections, track: TrackConfig) -> list[Track]:
    """Everyone over the clip: detections linked into tracks, split where a track turns into someone else
    (:mod:`.identity`), tracks of one person lost for a while re-linked by appearance; numbered by
    prominence (0 = the most prominent)."""
    people, frame_index = found.people, found.frame_index
    # A clip (or range) shorter than the minimum track length still has its person.
    short = dataclasses.replace(track, min_track_frames=min(track.min_track_frames, len(people)))
    bodies, colours = [p.body2d for p in people], [p.colour for p in people]
    tracks = split_by_appearance(associate(bodies, short), bodies, colours)
    tracks = relink(tracks, colours, [p.ratios for p in people], frame_index=frame_index)
    # A piece split off by appearance and joined to nobody, shorter than a track may be, is noise.
    kept = (t for t in tracks if t.n_frames >= short.min_track_frames)
    tracks = [dataclasses.replace(t, track_id=k) for k, t in enumerate(kept)]
    log.info("Tracks: %s", ", ".join(f"id {t.track_id} ({t.n_frames} frames, prominence {t.prominence:.3g})"
                                     for t in tracks))  # fmt: skip
    return tracks


def track_subjects(
    found: PeopleDetections,
    detect: DetectConfig,
    track: TrackConfig,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
    workers: int = 1,
) -> DetectionResult:
    """The track stage: identities over the clip, the subject(s) chosen, then followed frame by frame
    (Holistic on the subject's crop for hands, face and silhouette; missed frames backfilled).

    Raises:
        BadInput: an unknown ``--person``.
        Cancelled: ``is_cancelled()`` returned True.
    """
    clock = time.perf_counter()
    people, frame_index, n = found.people, found.frame_index, len(found.people)
    tracks = identify(found, track)
    chosen, warnings = choose_subjects(tracks, track.person, frame_index)
    warnings = found.warnings + warnings
    listed, thumbs = list_people(tracks, people, frame_index, [t.track_id for t in chosen])
    subjects = [_subject_arrays(t, people, found.info, detect.silhouette_size) for t in chosen]
    others = [_other_boxes(tracks, t, people) for t in chosen]
    known = [s.valid.copy() for s in subjects]
    progress = _Progress(report, "track", n)

    def on_frame(done: int) -> None:
        if detect.holistic:
            progress.step(done)

    subject_pass(found.info, subjects, others, detect, is_cancelled, on_frame, warnings, workers,
                 [t.left_out for t in chosen])  # fmt: skip
    progress.step(n, force=True)
    for subject, before in zip(subjects, known, strict=True):
        subject.keypoints = TrackKeypoints.from_landmarks(subject.body2d, subject.body_world)
        added = subject.valid & ~before
        if added.any():
            log.info("Backfilled person %d in %d frames (%s)", subject.track_id, int(added.sum()),
                     frame_ranges(subject.frame_index, added))  # fmt: skip
        relinked = bool(next(t for t in chosen if t.track_id == subject.track_id).pieces)
        warnings.extend(lost_and_found(subject.track_id, subject.valid, subject.frame_index, relinked))
        missing = ~subject.valid
        if missing.mean() > MAX_MISSING_SHARE:
            warnings.append(
                f"Person {subject.track_id} was not detected in {int(missing.sum())} of {n} frames "
                f"({frame_ranges(subject.frame_index, missing)}); those frames are marked invalid."
            )
    elapsed = found.seconds + time.perf_counter() - clock
    return DetectionResult(
        subjects=subjects, n_tracks=len(tracks), warnings=warnings, fps=n / max(elapsed, 1e-6),
        people=[p.as_meta() for p in listed], thumbnails=thumbs,
    )  # fmt: skip


def detect_subjects(
    info: VideoInfo,
    start: int,
    end: int | None,
    detect: DetectConfig,
    track: TrackConfig,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
) -> DetectionResult:
    """Both stages at once: :func:`detect_people`, then :func:`track_subjects`. Frames where a subject
    is missing are kept with ``valid == False``."""
    found = detect_people(info, start, end, detect, report, is_cancelled)
    return track_subjects(found, detect, track, report, is_cancelled)
