"""Long clips: the fit in overlapping windows of frames with one body shape, joined without a seam.

A clip no longer than ``WindowConfig.frames`` is fitted whole, exactly as before. A longer one is cut
into windows of that many frames overlapping by ``overlap``; the first window fits the shape, the others
keep it (one person, one body) and are fitted on their own, so memory stays that of one window whatever
the clip's length and the time grows linearly. In each overlap the two fits are blended with a smooth
ramp (rotations by normalised quaternion interpolation, positions linearly): both fits saw the same
frames with the same smoothness terms, so they agree closely there and the ramp leaves no step in
position or velocity. Keypoints, native pose and hand landmarks are then recomputed from the blended
pose (in chunks: memory stays bounded).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import roma
import torch

from backend import protocol
from backend.config import WindowConfig
from backend.fit.data import FitInputs, FitResult, Shared
from backend.fit.optimize import TemporalFitter
from backend.geometry.camera import project

log = logging.getLogger(__name__)
_CHUNK = 500
"""Frames per forward pass when the joined pose's keypoints are recomputed."""
_ROTATIONS = ("global_orient", "body_pose")
_PART_ROTATIONS = ("left_hand_pose", "right_hand_pose", "jaw_pose")


def spans(t: int, config: WindowConfig) -> list[tuple[int, int]]:
    """The windows ``[a, b)`` covering ``t`` frames (one when the clip fits in one window); a last window
    shorter than half a window joins the one before (a short window costs almost as much as a full one)."""
    if t <= config.frames:
        return [(0, t)]
    step = config.frames - config.overlap
    starts = list(range(0, t - config.overlap, step))
    out = [(a, min(a + config.frames, t)) for a in starts]
    if len(out) > 1 and out[-1][1] - out[-1][0] < config.frames // 2:  # a short tail: into the previous window
        out[-2:] = [(out[-2][0], t)]
    return out


def slice_inputs(inputs: FitInputs, a: int, b: int) -> FitInputs:
    """The observations of frames ``a..b-1`` (per-frame arrays sliced; intrinsics kept)."""
    per_frame = {f.name for f in dataclasses.fields(inputs)} - {"intrinsics", "image_height"}
    values = {name: getattr(inputs, name) for name in per_frame}
    return dataclasses.replace(inputs, **{k: None if v is None else v[a:b] for k, v in values.items()})


def ramp(n: int) -> np.ndarray:
    """(n,) weights of the later window across an overlap of n frames: 0 -> 1, flat at both ends."""
    x = (np.arange(n) + 0.5) / n
    return x * x * (3.0 - 2.0 * x)


def blend_rotations(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Axis-angle rotations (n, ..., 3) from ``a`` towards ``b`` by ``w`` (n,) (normalised quaternion
    interpolation on the shorter arc)."""
    qa, qb = roma.rotvec_to_unitquat(torch.as_tensor(a, dtype=torch.float64)), roma.rotvec_to_unitquat(
        torch.as_tensor(b, dtype=torch.float64)
    )
    qb = torch.where((qa * qb).sum(-1, keepdim=True) < 0, -qb, qb)
    weight = torch.as_tensor(w, dtype=torch.float64).reshape((-1,) + (1,) * (qa.dim() - 1))
    q = (1.0 - weight) * qa + weight * qb
    return roma.unitquat_to_rotvec(q / q.norm(dim=-1, keepdim=True)).numpy().astype(a.dtype)


def _place(out: np.ndarray, values: np.ndarray, a: int, previous_end: int, rotation: bool) -> None:
    """Write one window's frames (starting at ``a``) into ``out``, blending the overlap with what the
    previous window wrote (up to ``previous_end``)."""
    n = max(0, previous_end - a)
    if n:
        w = ramp(n)
        if rotation:
            out[a : a + n] = blend_rotations(out[a : a + n], values[:n], w)
        else:
            shape = (-1,) + (1,) * (values.ndim - 1)
            out[a : a + n] = (1.0 - w.reshape(shape)) * out[a : a + n] + w.reshape(shape) * values[:n]
    out[a + n : a + len(values)] = values[n:]


def _joined(pieces: list[tuple[tuple[int, int], FitResult]], t: int) -> dict[str, np.ndarray]:
    """Every per-frame parameter array of the pieces, joined over ``t`` frames."""
    first = pieces[0][1]
    names = {n: n in _ROTATIONS for n in ("global_orient", "body_pose", "transl")}
    parts = {n: n in _PART_ROTATIONS for n, v in first.parts.items() if n in (*_PART_ROTATIONS, "expression")}
    out = {n: np.zeros((t,) + getattr(first, n).shape[1:], getattr(first, n).dtype) for n in names}
    out |= {f"parts/{n}": np.zeros((t,) + first.parts[n].shape[1:], first.parts[n].dtype) for n in parts}
    if first.contacts is not None:
        out["contacts"] = np.zeros((t,) + first.contacts.shape[1:], first.contacts.dtype)
    previous_end = 0
    for (a, b), result in pieces:
        for n, rot in names.items():
            _place(out[n], getattr(result, n), a, previous_end, rot)
        for n, rot in parts.items():
            _place(out[f"parts/{n}"], result.parts[n], a, previous_end, rot)
        if "contacts" in out and result.contacts is not None:
            _place(out["contacts"], result.contacts, a, previous_end, False)
        previous_end = b
    return out


@torch.no_grad()
def _recomputed(fitter: TemporalFitter, joined: FitResult, intrinsics: np.ndarray) -> FitResult:
    """``joined`` with its keypoints, projections, native pose and hand landmarks from its pose."""
    body, device = fitter.body, fitter.device
    rest = body.rest_state(body.shape_from_params(torch.as_tensor(joined.shape_logits, device=device)))
    k = torch.as_tensor(intrinsics, dtype=torch.float32, device=device)
    kp, native, hands = [], [], []
    for a in range(0, len(joined.transl), _CHUNK):
        out = body.forward(joined.canonical_pose(a, a + _CHUNK, device), rest)
        kp.append(out.keypoints)
        native.append(body.native_pose_rotvec(out.deltas))
        if "hand_keypoints3d" in joined.parts:
            hands.append(body.hand_keypoints(out.transforms, rest).cpu().numpy())
    keypoints = torch.cat(kp)
    joined.keypoints3d = keypoints.cpu().numpy()
    joined.projected = project(keypoints, k).cpu().numpy()
    joined.native_pose = np.concatenate(native)
    if hands:
        joined.parts["hand_keypoints3d"] = np.concatenate(hands)
    return joined


def _window_reporter(report: protocol.Reporter, index: int, count: int) -> protocol.Reporter:
    """``report`` with each window's fit progress mapped onto the whole clip's."""

    def forward(event: protocol.Event) -> None:
        if event.get("event") == "progress" and event.get("stage") == "fit":
            share = float(event["done"]) / max(float(event["total"]), 1.0)
            event = protocol.progress("fit", int(1000 * (index + share)), 1000 * count, event.get("fps"))
        report(event)

    return forward


def fit_windowed(
    fitter: TemporalFitter, inputs: FitInputs, report: protocol.Reporter, is_cancelled: protocol.CancelCheck,
    config: WindowConfig,
) -> FitResult:  # fmt: skip
    """Fit ``inputs`` whole, or in windows with one shape (see the module doc)."""
    t = inputs.kp2d.shape[0]
    windows = spans(t, config)
    if len(windows) == 1:
        return fitter.fit(inputs, report, is_cancelled)
    log.info("fitting %d frames in %d windows of up to %d frames (overlap %d)", t, len(windows), config.frames,
             config.overlap)  # fmt: skip
    pieces: list[tuple[tuple[int, int], FitResult]] = []
    for i, (a, b) in enumerate(windows):
        shared = None if not pieces else Shared(pieces[0][1].shape_logits, pieces[0][1].ground)
        current = fitter if shared is None else _shape_kept(fitter)
        result = current.fit(slice_inputs(inputs, a, b), _window_reporter(report, i, len(windows)), is_cancelled, shared)
        pieces.append(((a, b), result))
    first = pieces[0][1]
    arrays = _joined(pieces, t)
    parts = {k.removeprefix("parts/"): v for k, v in arrays.items() if k.startswith("parts/")}
    if "hand_keypoints3d" in first.parts:
        parts["hand_keypoints3d"] = np.zeros(0)  # recomputed below
    joined = FitResult(
        global_orient=arrays["global_orient"], body_pose=arrays["body_pose"], transl=arrays["transl"],
        phenotypes=first.phenotypes, keypoints3d=np.zeros(0), projected=np.zeros(0), native_pose=np.zeros(0),
        stats=first.stats | {"windows": [list(w) for w in windows]},
        warnings=list(dict.fromkeys(w for _, r in pieces for w in r.warnings)),
        parts=parts, ground=first.ground, contacts=arrays.get("contacts"), shape_logits=first.shape_logits,
    )  # fmt: skip
    return _recomputed(fitter, joined, inputs.intrinsics)


def _shape_kept(fitter: TemporalFitter) -> TemporalFitter:
    """A fitter like ``fitter`` that keeps the shape it is given (the later windows)."""
    cfg = fitter.config
    kept = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, fit_shape=False))
    return TemporalFitter(fitter.body, kept, fitter.device, fitter.prior)
