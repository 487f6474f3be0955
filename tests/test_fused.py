"""The fused 3D evidence (backend/lift/fused.py): the weighted mean and the agreement factor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from backend.lift.base import LiftResult
from backend.lift.fused import FusedLifter, agreement


@dataclass
class _Fixed:
    """A lifter that returns the same evidence whatever the track (the fusion only reads results)."""

    result: LiftResult
    name: str = "fixed"

    def lift(self, track: object) -> LiftResult:
        return self.result


def _evidence(points: np.ndarray, confidence: float = 1.0) -> LiftResult:
    return LiftResult(points.astype(np.float32), np.full(points.shape[:2], confidence, np.float32), "fixed")


def test_the_mean_weighs_each_source_and_missing_evidence_leaves_the_learned_guess() -> None:
    a, b = np.zeros((2, 3, 3)), np.ones((2, 3, 3))
    missing = _evidence(b)
    missing.confidence[1, 2] = 0.0
    fused = FusedLifter(_Fixed(_evidence(a)), _Fixed(missing), 0.7).lift(None)  # type: ignore[arg-type]
    np.testing.assert_allclose(fused.keypoints3d[0], 0.3, atol=1e-6)
    np.testing.assert_allclose(fused.keypoints3d[1, 2], 0.0)
    np.testing.assert_allclose(fused.confidence, 1.0)  # no agreement factor by default


def test_agreement_scales_the_confidence_where_the_sources_disagree() -> None:
    a = np.zeros((1, 3, 3))
    b = np.zeros((1, 3, 3))
    b[0, 1, 0], b[0, 2, 0] = 0.2, 2.0  # 0: the same place; 1: one scale apart; 2: far apart
    factor = agreement(a, b, np.ones((1, 3)), 0.2)
    np.testing.assert_allclose(factor[0], [1.0, 0.25 + 0.75 * np.exp(-1.0), 0.25], atol=1e-6)
    assert agreement(a, b, np.array([[1.0, 1.0, 0.0]]), 0.2)[0, 2] == 1.0  # b has no evidence there
    fused = FusedLifter(_Fixed(_evidence(a)), _Fixed(_evidence(b)), 0.7, agreement_m=0.2).lift(None)  # type: ignore[arg-type]
    np.testing.assert_allclose(fused.confidence[0], factor[0], atol=1e-6)
    with pytest.raises(ValueError):
        FusedLifter(_Fixed(_evidence(a)), _Fixed(_evidence(b)), 0.7, agreement_m=-1.0)
