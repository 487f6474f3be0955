"""Shared linear algebra on points and directions (numpy): unit vectors and Kabsch."""

from __future__ import annotations

import numpy as np


def unit(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Vectors (..., 3) scaled to length 1 (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def kabsch(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, centre: bool = True
) -> np.ndarray:
    """Rotations R minimising ``sum_i w_i |R (s_i - s0) - (t_i - t0)|^2`` (weighted Kabsch, batched).

    Args:
        source, target: (..., N, 3) corresponding points (or directions), broadcast against each other.
        weights: (..., N) non-negative weights, or None (all 1).
        centre: subtract the weighted means s0, t0 (points); False aligns directions as they are.
    Returns:
        (..., 3, 3) proper rotations (no reflection).
    """
    source, target = np.broadcast_arrays(np.asarray(source), np.asarray(target))  # numpy's type promotion
    w = np.ones(source.shape[:-1]) if weights is None else np.broadcast_to(weights, source.shape[:-1])
    w = w[..., None]
    if centre:
        total = np.maximum(w.sum(-2, keepdims=True), 1e-9)
        source = source - (w * source).sum(-2, keepdims=True) / total
        target = target - (w * target).sum(-2, keepdims=True) / total
    cov = np.einsum("...ni,...nj->...ij", target * w, source)
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    fix = np.broadcast_to(np.eye(3), cov.shape).copy()
    fix[..., 2, 2] = d
    return u @ fix @ vt
