"""The second real bench's ground-truth builder (bench/triangulate.py) on synthetic cameras and people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.triangulate import (
    Camera,
    associate,
    fill_and_filter,
    link,
    read_qualisys,
    refine_principal_points,
    repair_sides,
    track_observations,
    triangulate,
    triangulate_point,
)


def _look_at(position: np.ndarray, target: np.ndarray, name: str) -> Camera:
    """A 1088x1920 portrait camera at ``position`` looking at ``target`` (world z up)."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    K = np.array([[1680.0, 0, 544.0], [0, 1680.0, 960.0], [0, 0, 1]])
    return Camera(name, R, -R @ position, K, np.array([-0.05, 0.14, 0.0, 0.0, 0.0]))


def _ring() -> list[Camera]:
    target = np.array([0.0, 0.0, 1.0])
    return [_look_at(np.array([4 * np.cos(a), 4 * np.sin(a), 2.2]), target, f"cam0{i + 1}")
            for i, a in enumerate(np.radians([20, 110, 200, 290]))]  # fmt: skip


def _person(centre: np.ndarray, t: int, seed: int) -> np.ndarray:
    """(t, 33, 3) a stick person: landmarks scattered in a 0.5 x 0.3 x 1.7 m box, swaying."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.25, -0.15, 0.0], [0.25, 0.15, 1.7], (33, 3))
    sway = 0.05 * np.sin(np.linspace(0, 3, t))[:, None, None] * np.array([1.0, 0, 0])
    return centre + base[None] + sway


def _observe(cameras: list[Camera], points: np.ndarray) -> np.ndarray:
    """(V, T, 33, 3) pixels and confidence 1 of (T, 33, 3) world points."""
    T = points.shape[0]
    pix = [cam.project(points.reshape(-1, 3)).reshape(T, 33, 2) for cam in cameras]
    return np.stack([np.concatenate([p, np.ones((T, 33, 1))], -1) for p in pix])


def test_a_point_is_recovered_and_an_outlying_view_is_voted_out() -> None:
    cameras = _ring()
    X = np.array([0.3, -0.2, 1.2])
    obs = np.stack([np.r_[cam.project(X)[0], 1.0] for cam in cameras])
    obs[2, :2] += 120.0  # one view's detection is off (another person, a swapped side)
    found, views = triangulate_point(cameras, obs)
    assert views == 3 and found is not None
    np.testing.assert_allclose(found, X, atol=1e-6)
    obs[2, :2] -= 120.0  # that view is right again, and two others miss the point: two views still give it
    obs[[1, 3], 0] = np.nan
    found, views = triangulate_point(cameras, obs)
    assert views == 2 and found is not None
    np.testing.assert_allclose(found, X, atol=1e-6)


def test_two_people_are_told_apart_across_views_and_followed_over_time() -> None:
    cameras, T = _ring(), 12
    a, b = _person(np.array([-0.8, 0.0, 0.0]), T, 0), _person(np.array([0.9, 0.3, 0.0]), T, 1)
    obs_a, obs_b = _observe(cameras, a), _observe(cameras, b)
    people = np.full((4, T, 3, 33, 3), np.nan)
    for v in range(4):  # the detector lists them in a different order in each view
        people[v, :, v % 2], people[v, :, 1 - v % 2] = obs_a[v], obs_b[v]
    people[1, 5:, :] = np.nan  # view 2 loses both for a while
    tracks = link([associate(cameras, people[:, t]) for t in range(T)])
    assert [len(t) for t in tracks] == [T, T]
    for track in tracks:
        points = triangulate(cameras, track_observations(people, track), landmarks=tuple(range(33)))
        truth = a if np.linalg.norm(points[0, 0] - a[0, 0]) < 0.1 else b
        np.testing.assert_allclose(points, truth, atol=1e-6)


def test_a_swapped_leg_chain_is_repaired() -> None:
    cameras, T = _ring(), 4
    truth = _person(np.zeros(3), T, 2)
    obs = _observe(cameras, truth)
    left, right = [23, 25, 27, 29, 31], [24, 26, 28, 30, 32]
    bad = obs.copy()
    bad[0, :, left], bad[0, :, right] = obs[0, :, right], obs[0, :, left]
    fixed, swaps = repair_sides(cameras, bad, truth, landmarks=tuple(range(33)))
    assert swaps == T
    np.testing.assert_allclose(fixed, obs)


def test_a_shifted_principal_point_is_found() -> None:
    cameras, T = _ring(), 6
    truth = _person(np.zeros(3), T, 3)
    obs = _observe(cameras, truth)
    obs[1, ..., 0] += 9.0  # the video was cropped against the calibration frames
    obs[1, ..., 1] -= 4.0
    refined = refine_principal_points(cameras, obs, truth, landmarks=tuple(range(33)))
    np.testing.assert_allclose(refined[1].K[:2, 2] - cameras[1].K[:2, 2], [9.0, -4.0], atol=1e-3)
    np.testing.assert_allclose(refined[0].K, cameras[0].K, atol=1e-6)


def test_short_gaps_are_filled_long_ones_stay_unknown() -> None:
    t = np.arange(60, dtype=float)
    points = np.stack([np.sin(t / 20), np.cos(t / 20), t / 60], -1)[:, None, :].repeat(2, 1)
    points[10:13, 0] = np.nan  # 3 frames: filled
    points[30:40, 1] = np.nan  # 10 frames: left unknown
    out = fill_and_filter(points, fps=60.0)
    assert np.isfinite(out[:, 0]).all()
    assert np.isnan(out[30:40, 1]).all() and np.isfinite(out[:30, 1]).all()
    assert np.abs(out[14:25, 0] - points[14:25, 0]).max() < 2e-3  # a slow motion passes the 6 Hz filter


def test_qualisys_calibration_is_read_into_opencv_cameras(tmp_path: Path) -> None:
    """A camera 3 m up the world's -y axis looking along +y: the origin is in front of it, centred."""
    qca = tmp_path / "Calib.qca.txt"
    # Qualisys rotation: its transpose turns camera axes (x right, y up, looking along -z) into the world's.
    cam_to_world = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # camera x, y, z -> world x, z, -y
    m = cam_to_world.T
    attrs = " ".join(f'r{i + 1}{j + 1}="{m[i, j]}"' for i in range(3) for j in range(3))
    qca.write_text(
        f"""<calibration><cameras><camera serial="cam01"><transform {attrs} x="0" y="-3000" z="0"/>
        <intrinsic focalLengthU="{1680 * 64}" focalLengthV="{1680 * 64}" centerPointU="{544 * 64}"
        centerPointV="{960 * 64}" radialDistortion1="0" radialDistortion2="0" radialDistortion3="0"
        tangentalDistortion1="0" tangentalDistortion2="0"/></camera></cameras></calibration>"""
    )
    cam = read_qualisys(qca)["cam01"]
    np.testing.assert_allclose(cam.to_camera(np.zeros(3)), [0, 0, 3.0], atol=1e-9)
    np.testing.assert_allclose(cam.project(np.zeros((1, 3)))[0], [544, 960], atol=1e-6)
    above = cam.project(np.array([[0.0, 0.0, 1.0]]))[0]  # a point above the origin is higher in the image
    assert above[1] < 960 - 100 and above[0] == pytest.approx(544, abs=1e-6)
