"""Lifter input encodings: 2D keypoints (pixels + confidence) -> the network's per-frame features.

Two encodings, named in ``TemporalLifterConfig.input_norm``:

- ``"screen"``: VideoPose3D's ``normalize_screen_coordinates`` (x in [-1, 1], y in [-h/w, h/w]),
  what the official checkpoints expect;
- ``"person"``: ours. Each frame is centred on the 2D mid-hip point and divided by the person's
  box size (the larger side of the confident keypoints' bounding box), so the network sees the
  same pose wherever the person stands in the image and however far away. One extra pseudo
  keypoint carries what that removes: the mid-hip point in screen coordinates and the box size
  relative to the image width. Frames without any confident keypoint encode as all zeros.

- ``"person_focal"``: as ``"person"``, but the pseudo keypoint is in focal-normalised camera
  coordinates (``(root - principal point) / focal``, ``box / focal``), for the trajectory model,
  which needs the viewing direction and the apparent size to place the root in metres.

The screen encoding keeps the confidence as the third feature (``in_features == 3``); the person
encodings give a present / missing flag there instead (see `PRESENT_MIN`).
"""

from __future__ import annotations

import torch

from backend.geometry.skeleton import KEYPOINT_NAMES

INPUT_NORMS = ("screen", "person", "person_focal")
PRESENT_MIN = 0.2
"""Person encodings: a keypoint with a lower confidence counts as missing. The network sees only
present / missing (1 / 0), not the confidence value: detectors' confidences are not calibrated
alike (MediaPipe's visibility sits near 1 for most visible joints), and a network trained on one
distribution of values would read another as a different input."""
_HIPS = (KEYPOINT_NAMES.index("left_hip"), KEYPOINT_NAMES.index("right_hip"))


def normalize_screen(xy: torch.Tensor, image_wh: torch.Tensor) -> torch.Tensor:
    """VideoPose3D's screen normalisation: pixels -> ``xy / w * 2 - [1, h / w]``.

    Args:
        xy: (B, ..., 2) pixels; image_wh: (B, 2) width and height.
    Returns:
        (B, ..., 2) normalised coordinates.
    """
    shape = (xy.shape[0],) + (1,) * (xy.ndim - 2) + (2,)
    w = image_wh[:, 0].reshape(shape[:-1] + (1,))
    offset = torch.stack([torch.ones_like(image_wh[:, 0]), image_wh[:, 1] / image_wh[:, 0]], -1)
    return xy / w * 2.0 - offset.reshape(shape)


def person_features(
    xy: torch.Tensor, conf: torch.Tensor, image_wh: torch.Tensor, focal: torch.Tensor | None = None
) -> torch.Tensor:
    """The ``"person"`` encoding (``"person_focal"`` when `focal` is given).

    Args:
        xy: (B, T, K, 2) pixels; conf: (B, T, K) confidences (0: missing); image_wh: (B, 2);
        focal: (B,) focal lengths in pixels (principal point at the image centre), or None.
    Returns:
        (B, T, K + 1, 3): per keypoint ((x - root) / box, (y - root) / box, present), then the
        pseudo keypoint (root in screen coordinates, box / image width); zeros where a frame
        has no confident keypoint.
    """
    xy = xy.float()
    seen = conf >= PRESENT_MIN
    conf = seen.float()
    any_seen = seen.any(-1)  # (B, T)
    big = torch.finfo(xy.dtype).max
    lo = torch.where(seen[..., None], xy, torch.full_like(xy, big)).amin(-2)
    hi = torch.where(seen[..., None], xy, torch.full_like(xy, -big)).amax(-2)
    box = (hi - lo).amax(-1).clamp(min=1.0)  # (B, T)
    centre = torch.where(any_seen[..., None], 0.5 * (lo + hi), torch.zeros_like(lo))
    hips_seen = seen[..., list(_HIPS)].all(-1)
    root = torch.where(hips_seen[..., None], xy[..., list(_HIPS), :].mean(-2), centre)  # (B, T, 2)
    rel = (xy - root[..., None, :]) / box[..., None, None]
    rel = torch.where(seen[..., None], rel, torch.zeros_like(rel))
    kp = torch.cat([rel, conf[..., None]], -1)
    if focal is None:
        w = image_wh[:, 0].float().reshape(-1, 1)
        extra = torch.cat([normalize_screen(root, image_wh.float()), (box / w)[..., None]], -1)
    else:
        f = focal.float().reshape(-1, 1, 1)
        centre_px = 0.5 * image_wh.float()[:, None, :]
        extra = torch.cat([(root - centre_px) / f, box[..., None] / f], -1)
    feats = torch.cat([kp, extra[..., None, :]], -2)
    return torch.where(any_seen[..., None, None], feats, torch.zeros_like(feats))


def encode_inputs(
    xy: torch.Tensor,
    conf: torch.Tensor,
    image_wh: torch.Tensor,
    input_norm: str,
    in_features: int,
    focal: torch.Tensor | None = None,
) -> torch.Tensor:
    """Network inputs for any encoding.

    Args:
        xy: (B, T, K, 2) pixels; conf: (B, T, K); image_wh: (B, 2); focal: (B,) pixels, needed
        by ``"person_focal"`` only.
        input_norm: one of `INPUT_NORMS`; in_features: 2 (x, y) or 3 (x, y, confidence).
    Returns:
        (B, T, K', in_features) with K' = K + 1 for the person encodings, else K.
    """
    if input_norm == "person_focal":
        if focal is None:
            raise ValueError("the person_focal encoding needs the focal length")
        feats = person_features(xy, conf, image_wh, focal)
    elif input_norm == "person":
        feats = person_features(xy, conf, image_wh)
    elif input_norm == "screen":
        feats = torch.cat([normalize_screen(xy.float(), image_wh.float()), conf.float()[..., None]], -1)
    else:
        raise ValueError(f"unknown input_norm {input_norm!r}; expected one of {INPUT_NORMS}")
    return feats[..., :in_features]
