"""The second streamed pass over the frames, for the chosen subject(s) only.

In one decode of the frames that matter, for each subject:

- Holistic on a crop around him where the multi-person pass found him adds hands, face and
  silhouette (:class:`backend.detect.holistic.SubjectHolistic`; only with ``DetectConfig.holistic``);
- the frames next to those where it did not are backfilled (:mod:`backend.detect.backfill`):
  forward runs as the frames come, backward runs over frames held until their anchor frame.
  With Holistic on, Holistic is the backfill's graph too, so a backfilled frame gets its
  hands, face and silhouette from the same inference.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable

import numpy as np

from backend import protocol
from backend.config import DetectConfig
from backend.detect.backfill import (
    TORSO,
    WINDOW,
    CropFollower,
    Run,
    back_window,
    box_size,
    plan_runs,
    reference_torso,
    reject_reason,
    torso_length,
)
from backend.detect.holistic import HolisticFrame, SubjectHolistic, effective_complexity
from backend.detect.parallel import Tick, run_tasks, spans
from backend.detect.track import keypoint_bbox
from backend.detect.types import SubjectTrack
from backend.errors import Cancelled
from backend.io.video import VideoInfo, iter_frames

log = logging.getLogger(__name__)


def _set_extras(subject: SubjectTrack, t: int, out: HolisticFrame) -> None:
    subject.left_hand2d[t] = out.left_hand
    subject.right_hand2d[t] = out.right_hand
    subject.face2d[t] = out.face
    subject.silhouette[t] = out.silhouette


def _references(subject: SubjectTrack) -> tuple[float | None, float]:
    """Median torso length and box size (pixels) over the frames the subject was tracked in."""
    confident = subject.valid & (subject.body2d[:, list(TORSO), 2].min(axis=1) > 0.5)
    torsos = [torso_length(b) for b in subject.body2d[confident]]
    sizes = [box_size(b) for b in subject.bbox[subject.valid]]
    return (float(np.median(torsos)) if torsos else None), (float(np.median(sizes)) if sizes else 1.0)


def _anchor_box(box: np.ndarray, ref_size: float) -> np.ndarray:
    """``box`` grown about its centre to at least ``ref_size`` (a collapsed skeleton's box is tiny)."""
    centre = 0.5 * (box[:2] + box[2:])
    half = 0.5 * max(box_size(box), ref_size)
    return np.concatenate([centre - half, centre + half]).astype(np.float32)


class _SubjectState:
    """One subject's graphs and backfill runs during the pass."""

    def __init__(
        self,
        subject: SubjectTrack,
        others: np.ndarray,
        runs: list[Run],
        detect: DetectConfig,
        complexity: int,
    ) -> None:
        self.subject = subject
        self.known = subject.valid.copy()
        """(T,) the frames the multi-person pass found the subject in."""
        self.others = others
        self.forward = {r.anchor: r for r in runs if r.forward}
        self.backward = {r.anchor: r for r in runs if not r.forward}
        self.holistic: SubjectHolistic | None = None
        self.follower: CropFollower | None = None
        """The backfill's graph; runs never overlap in time (a forward run ends inside its gap,
        before the backward run from the gap's end starts), so one serves both directions."""
        try:
            if detect.holistic:
                self.holistic = SubjectHolistic(detect, complexity)
            if runs:
                self.follower = CropFollower(detect, complexity, detect.holistic)
        except BaseException:
            self.close()
            raise
        self.ref_torso, self.ref_size = _references(subject)
        self.replaced = 0
        """Frames whose tracked body was replaced by Holistic's (they disagreed)."""
        self._run: Run | None = None
        self._anchor = np.zeros(4, np.float32)
        self._ref: float | None = None

    def _try(
        self, follower: CropFollower, t: int, rgb: np.ndarray, anchor: np.ndarray, ref: float | None
    ) -> np.ndarray | None:
        """Backfill position ``t`` from ``anchor`` (4,); the new anchor, or None to stop the run."""
        found = follower.process(rgb, anchor)
        others = self.others[t]
        others = others[~np.isnan(others[:, 0])]
        if found is None:
            reason: str | None = "nobody found"
        else:
            reason = reject_reason(found.body2d, found.bbox, anchor, ref, others)
        if found is None or reason is not None:
            index = int(self.subject.frame_index[t])
            log.debug("Backfill of person %d stops at frame %d: %s", self.subject.track_id, index, reason)
            return None
        s = self.subject
        s.body2d[t], s.body_world[t], s.bbox[t], s.valid[t] = found.body2d, found.world, found.bbox, True
        if found.extras is not None:
            _set_extras(s, t, found.extras)
        return found.bbox

    def step(
        self, t: int, rgb: np.ndarray, held: dict[int, np.ndarray], is_cancelled: protocol.CancelCheck
    ) -> None:
        """Process position ``t`` (frames come in order); ``held`` has the frames backward runs need."""
        s = self.subject
        follower = self.follower
        if self._run is not None and follower is not None and t in self._run.frames:
            anchor = self._try(follower, t, rgb, self._anchor, self._ref)
            if anchor is None or t == self._run.frames[-1]:
                self._run = None
            else:
                self._anchor = anchor
        if self.known[t] and self.holistic is not None:
            self._refine(t, rgb)
        if t in self.backward and follower is not None:
            run = self.backward[t]
            ref = reference_torso(s.body2d, self.known, run)
            anchor: np.ndarray | None = s.bbox[t].copy()
            follower.restart()
            follower.process(rgb, s.bbox[t])
            for f in run.frames:
                if is_cancelled():
                    raise Cancelled()
                if anchor is None or s.valid[f]:  # stopped, or met the forward run
                    break
                anchor = self._try(follower, f, held[f], anchor, ref)
        if t in self.forward and follower is not None:
            # Track from the known frame (after any backward run from it), so that the next one follows.
            self._run, self._anchor = self.forward[t], s.bbox[t].copy()
            self._ref = reference_torso(s.body2d, self.known, self._run)
            follower.restart()
            follower.process(rgb, self._anchor)

    def _refine(self, t: int, rgb: np.ndarray) -> None:
        """Holistic on the subject's crop: hands, face and silhouette, and its body in place of
        the multi-person pass's when plausible (on the zoomed crop it is the sharper of the two;
        the multi-person pass's first frames of a track are often collapsed or swapped)."""
        assert self.holistic is not None
        s = self.subject
        extras, body, world, agrees = self.holistic.process(rgb, s.body2d[t], s.bbox[t])
        if body is not None:
            anchor = _anchor_box(s.bbox[t], self.ref_size)
            others = self.others[t]
            others = others[~np.isnan(others[:, 0])]
            box = keypoint_bbox(body)
            if reject_reason(body, box, anchor, self.ref_torso, others) is None:
                if not agrees:
                    self.replaced += 1
                s.body2d[t], s.body_world[t], s.bbox[t] = body, world, box
                _set_extras(s, t, extras)
                return
        if agrees:
            _set_extras(s, t, extras)

    def close(self) -> None:
        for graph in (self.holistic, self.follower):
            if graph is not None:
                graph.close()


def _cut_points(lo: int, stop: int, runs: list[list[Run]], workers: int) -> list[tuple[int, int]]:
    """Stretches of positions ``[lo, stop)`` for ``workers`` threads, cut only where no backfill run
    (its anchor and its frames) crosses the cut."""
    covered = [(min(r.anchor, *r.frames), max(r.anchor, *r.frames)) for rs in runs for r in rs]

    def free(b: int) -> bool:
        return all(not (a < b <= z) for a, z in covered)

    cuts = [lo]
    for a, _ in spans(lo, stop, workers)[1:]:
        near = sorted(range(max(cuts[-1] + 1, a - WINDOW), min(stop, a + WINDOW)), key=lambda b: abs(b - a))
        b = next((b for b in near if free(b)), None)
        if b is not None:
            cuts.append(b)
    return list(zip(cuts, cuts[1:] + [stop], strict=True))


def _pass_stretch(
    info: VideoInfo, subjects: list[SubjectTrack], others: list[np.ndarray], runs: list[list[Run]],
    detect: DetectConfig, complexity: int, span: tuple[int, int], tick: Tick, stopped: protocol.CancelCheck,
) -> list[tuple[int, int]]:  # fmt: skip
    """The pass over positions ``span[0] <= t < span[1]`` with graphs of its own; per subject, the frames
    where Holistic disagreed with the tracked body and those where its body replaced it."""
    a, b = span
    frame_index = subjects[0].frame_index
    position = {int(f): t for t, f in enumerate(frame_index)}
    mine = [[r for r in rs if a <= r.anchor < b] for rs in runs]
    wanted = Counter(f for rs in mine for r in rs if not r.forward for f in r.frames)
    held: dict[int, np.ndarray] = {}
    states: list[_SubjectState] = []
    try:
        for subject, other, subject_runs in zip(subjects, others, mine, strict=True):
            states.append(_SubjectState(subject, other, subject_runs, detect, complexity))
        for frame in iter_frames(info, int(frame_index[a]), int(frame_index[b - 1]) + 1):
            if stopped():
                raise Cancelled()
            t = position.get(frame.index)
            if t is None:
                continue
            if t in wanted:
                held[t] = frame.rgb
            for state in states:
                state.step(t, frame.rgb, held, stopped)
                done = state.backward.get(t)
                for f in done.frames if done is not None else ():
                    wanted[f] -= 1
                    if wanted[f] == 0:
                        del wanted[f]
                        held.pop(f, None)
            tick()
        return [(st.holistic.disagreements if st.holistic is not None else 0, st.replaced) for st in states]
    finally:
        for state in states:
            state.close()


def subject_pass(
    info: VideoInfo,
    subjects: list[SubjectTrack],
    others: list[np.ndarray],
    detect: DetectConfig,
    is_cancelled: protocol.CancelCheck,
    on_frame: Callable[[int], None],
    warnings: list[str],
    workers: int = 1,
    blocked: list[np.ndarray | None] | None = None,
) -> None:
    """Backfill the subjects' missing frames and fill hands, face and silhouette, in place.

    Decodes only the span of frames some subject or run needs, cut into up to ``workers`` stretches
    on threads of their own (:mod:`backend.detect.parallel`); skipped when Holistic is off and nothing
    is to be backfilled. Holds at most :func:`backend.detect.backfill.back_window` frames per subject
    and stretch for the backward runs.

    Args:
        subjects: from the multi-person pass (same frames, T each).
        others: per subject, (T, M, 4) boxes of the other tracked people, NaN where absent.
        on_frame: called with the number of positions done so far, about every 0.2 s.
        blocked: per subject, (T,) frames the backfill must not fill (``Track.left_out``), or None.
    Raises:
        Cancelled: ``is_cancelled()`` returned True.
    """
    back = back_window(info.width, info.height)
    blocked = blocked or [None] * len(subjects)
    runs = [plan_runs(s.valid, WINDOW, back, b) for s, b in zip(subjects, blocked, strict=True)]
    if not detect.holistic and not any(runs):
        return
    complexity, note = effective_complexity(detect.model_complexity)
    if note:
        warnings.append(note)
    needed = [np.flatnonzero(s.valid) for s in subjects] + [np.array(r.frames) for rs in runs for r in rs]
    lo = min(int(x.min()) for x in needed if len(x))
    hi = max(int(x.max()) for x in needed if len(x))
    tasks = [
        functools.partial(_pass_stretch, info, subjects, others, runs, detect, complexity, span)
        for span in _cut_points(lo, hi + 1, runs, workers)
    ]
    counts = run_tasks(tasks, on_frame, is_cancelled)
    for k, subject in enumerate(subjects):
        disagreed, replaced = (sum(c[k][i] for c in counts) for i in (0, 1))
        if disagreed:
            log.info(
                "Holistic disagreed with the tracked body of subject %d in %d frames; its body was "
                "plausible and used in %d of them (hands and face dropped in the others)",
                subject.track_id, disagreed, replaced,
            )  # fmt: skip
