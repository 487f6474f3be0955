"""Preview: the fitted body drawn over the video (MP4) and a PNG contact sheet.

The mesh is drawn by splatting its vertices and face centres, nearest last, into a
half-resolution shaded layer, closed morphologically and blended over the frame; the
fitted skeleton is drawn on top. Frames are streamed; vertices are computed in chunks.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from backend import protocol
from backend.errors import Cancelled
from backend.io.outputs import disk_full_error
from backend.io.video import VideoInfo, iter_frames

log = logging.getLogger(__name__)

_BONES = [
    (5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (11, 12), (5, 11), (6, 12), (11, 13), (13, 15),
    (12, 14), (14, 16), (15, 17), (16, 18), (15, 21), (16, 22), (0, 1), (0, 2), (1, 3), (2, 4),
]  # fmt: skip
_MESH_COLOUR = np.array([235.0, 170.0, 90.0])  # RGB, frames with detections
_BRIDGED_COLOUR = np.array([170.0, 170.0, 170.0])  # frames bridged by the temporal fit
_LOW_DISK_BYTES = 64 << 20
"""Free space under which an incomplete preview is put down to a full disk."""


@dataclass
class PreviewSource:
    """What the preview needs for each processed frame of one subject."""

    frame_index: np.ndarray
    """(T,) source frame numbers."""
    valid: np.ndarray
    """(T,) bool."""
    projected: np.ndarray
    """(T, K, 2) fitted keypoints in pixels."""
    vertices: Callable[[int, int], np.ndarray]
    """vertices(a, b) -> (b - a, V, 3) camera-frame vertices of frames a..b-1."""
    faces: np.ndarray
    """(F, 3) triangle indices."""
    intrinsics: np.ndarray


def _draw_mesh(
    rgb: np.ndarray, verts: np.ndarray, faces: np.ndarray, k: np.ndarray, colour: np.ndarray
) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = 0.5
    hs, ws = max(1, int(h * s)), max(1, int(w * s))
    tri = verts[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
    centres = tri.mean(1)
    view = -centres / (np.linalg.norm(centres, axis=-1, keepdims=True) + 1e-12)
    shade = np.clip((normals * view).sum(-1), 0.0, 1.0)
    pts = np.concatenate([centres, tri[:, 0]], 0)
    shade = np.concatenate([shade, shade], 0)
    z = pts[:, 2]
    keep = z > 0.05
    pts, shade, z = pts[keep], shade[keep], z[keep]
    u = ((pts[:, 0] / z) * k[0, 0] + k[0, 2]) * s
    v = ((pts[:, 1] / z) * k[1, 1] + k[1, 2]) * s
    ui, vi = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
    inside = (ui >= 0) & (ui < ws) & (vi >= 0) & (vi < hs)
    ui, vi, z, shade = ui[inside], vi[inside], z[inside], shade[inside]
    order = np.argsort(-z)  # far first, near last wins
    layer = np.zeros((hs, ws), np.float32)
    mask = np.zeros((hs, ws), np.uint8)
    layer[vi[order], ui[order]] = 0.35 + 0.65 * shade[order]
    mask[vi[order], ui[order]] = 255
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    layer = cv2.dilate(layer, np.ones((3, 3), np.uint8))
    layer = cv2.resize(layer, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = (
        cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0 * 0.65
    )
    body = layer[..., None] * colour[None, None]
    return (rgb * (1.0 - alpha) + body * alpha).astype(np.uint8)


def _draw_skeleton(rgb: np.ndarray, kp: np.ndarray) -> None:
    thickness = max(2, rgb.shape[0] // 300)
    for a, b in _BONES:
        pa, pb = tuple(int(x) for x in kp[a]), tuple(int(x) for x in kp[b])
        cv2.line(rgb, pa, pb, (40, 220, 40), thickness, cv2.LINE_AA)


MAX_PREVIEW_WIDTH = 960
"""The preview is drawn at most this wide (a glance check; keeps it cheap for 4K clips)."""


def preview_size(info: VideoInfo) -> tuple[int, int, float]:
    """(width, height, scale) of the preview frames."""
    scale = min(1.0, MAX_PREVIEW_WIDTH / info.width)
    return (
        max(2, int(round(info.width * scale / 2)) * 2),
        max(2, int(round(info.height * scale / 2)) * 2),
        scale,
    )


def render_frames(
    info: VideoInfo, source: PreviewSource, chunk: int = 32
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (position in the processed range, RGB preview frame with the body drawn)."""
    width, height, scale = preview_size(info)
    k = source.intrinsics.copy()
    k[:2] *= np.array([[width / info.width], [height / info.height]])
    start, end = int(source.frame_index[0]), int(source.frame_index[-1]) + 1
    lookup = {int(f): i for i, f in enumerate(source.frame_index)}
    cache_start, cache = -1, np.zeros((0,))
    for frame in iter_frames(info, start, end):
        i = lookup.get(frame.index)
        rgb = frame.rgb
        if scale < 1.0:
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        if i is not None:
            if not (cache_start <= i < cache_start + len(cache)):
                cache_start = i
                cache = source.vertices(i, min(i + chunk, len(source.frame_index)))
            colour = _MESH_COLOUR if source.valid[i] else _BRIDGED_COLOUR
            rgb = _draw_mesh(rgb, cache[i - cache_start], source.faces, k, colour)
            if source.valid[i]:
                _draw_skeleton(
                    rgb, source.projected[i] * np.array([width / info.width, height / info.height])
                )
        yield (i if i is not None else -1), rgb


def _check_written(path: Path, frames: int) -> None:
    """The MP4 at ``path`` must open and hold ``frames`` frames; a full disk becomes BadInput."""
    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    if count == frames:
        return
    if shutil.disk_usage(path.parent).free < _LOW_DISK_BYTES:
        raise disk_full_error(path)
    raise OSError(f"the preview video holds {count} of its {frames} frames after writing")


def write_preview(
    info: VideoInfo,
    source: PreviewSource,
    video_path: Path,
    sheet_path: Path,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
) -> None:
    """Write the preview MP4 to ``video_path`` and a 3x3 PNG contact sheet to ``sheet_path``.

    The paths are written as given: the caller passes temporary names (``backend.io.outputs``) and
    renames them once the whole run is complete. The MP4 is read back to check that it is whole.
    """
    total = len(source.frame_index)
    picks = set(np.linspace(0, total - 1, 9).round().astype(int).tolist())
    tiles: dict[int, np.ndarray] = {}
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), info.fps, preview_size(info)[:2])
    if not writer.isOpened():
        raise OSError(f"cannot open a video writer for {video_path}")
    written = 0
    try:
        for n, (i, rgb) in enumerate(render_frames(info, source)):
            if is_cancelled():
                raise Cancelled()
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            written += 1
            if i in picks:
                tiles[i] = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
            if n % 10 == 0:
                report(protocol.progress("preview", n + 1, total))
    finally:
        writer.release()
    _check_written(video_path, written)
    ordered = [tiles[i] for i in sorted(tiles)]
    if ordered:
        blank = np.zeros_like(ordered[0])
        ordered += [blank] * (9 - len(ordered))
        rows = [np.concatenate(ordered[r * 3 : r * 3 + 3], axis=1) for r in range(3)]
        ok, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"cannot encode the contact sheet {sheet_path}")
        sheet_path.write_bytes(png.tobytes())
