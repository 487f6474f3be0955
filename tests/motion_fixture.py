"""A tiny, valid motion file built with numpy alone (3-bone rig, 8-vertex box), for fast tests of the
motion file's validation, its fuzzing and the Blender import, without torch or a fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.io import motion_schema as schema

BONES = ("root", "spine", "head")
PHENOTYPES = ("height", "weight")


def _rig(t_shape: np.ndarray) -> dict[str, np.ndarray]:
    corners = np.array([[x, y, z] for x in (-0.2, 0.2) for y in (-0.1, 0.1) for z in (0.0, 1.7)], np.float32)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], np.int32)  # fmt: skip
    rest = np.repeat(np.eye(4)[None], 3, axis=0)
    rest[:, 2, 3] = [0.9, 1.2, 1.5]
    rest[:, :3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # bones point up (+z)
    skin = np.array([[0, 1], [0, 1], [0, 1], [0, 1], [2, 1], [2, 1], [2, 1], [2, 1]], np.int16)
    targets = np.stack([np.stack([corners * 0.9, corners * 1.1]) for _ in PHENOTYPES])
    meta = {"format": schema.RIG_FORMAT, "version": schema.RIG_VERSION, "body_model": "anny"}
    return {
        "meta": np.array(json.dumps(meta)),
        "bone_labels": np.array(BONES),
        "bone_parents": np.array([-1, 0, 1], np.int32),
        "rest_poses": rest,
        "bone_lengths": np.array([0.3, 0.3, 0.2]),
        "reference_orientations": rest[:, :3, :3].copy(),
        "rest_vertices": corners,
        "faces": faces,
        "uv": np.array([[0, 0], [1, 0], [1, 1]], np.float32),
        "face_uv": np.zeros_like(faces),
        "skin_indices": skin,
        "skin_weights": np.full((8, 2), 0.5, np.float32),
        "phenotype_labels": np.array(PHENOTYPES),
        "phenotypes": t_shape.astype(np.float32),
        "phenotype_targets": targets.astype(np.float32),
        "keypoint_names": np.array(["nose", "left_hip"]),
        "keypoint_vertices": np.array([[4, 5], [0, 1]], np.int32),
        "keypoint_weights": np.full((2, 2), 0.5, np.float32),
    }


def tiny_person(t: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """One person's arrays (rig included under ``rig/``) for ``t`` frames."""
    rng = np.random.default_rng(seed)
    shape = np.array([0.4, 0.6])
    arrays: dict[str, np.ndarray] = {
        "frame_index": np.arange(3, 3 + t, dtype=np.int64),
        "valid": np.ones(t, bool),
        "time_s": np.arange(t) / 30.0,
        "keypoints2d": rng.uniform(0, 60, (t, 33, 3)).astype(np.float32),
        "keypoints3d": rng.normal(0, 0.3, (t, 2, 3)).astype(np.float32),
        "global_orient": np.tile([np.pi, 0.0, 0.0], (t, 1)).astype(np.float32),
        "body_pose": rng.normal(0, 0.1, (t, 63)).astype(np.float32),
        "left_hand_pose": np.zeros((t, 45), np.float32),
        "right_hand_pose": np.zeros((t, 45), np.float32),
        "jaw_pose": np.zeros((t, 3), np.float32),
        "transl": np.tile([0.0, 0.0, 3.0], (t, 1)).astype(np.float32),
        "contacts": rng.uniform(0, 1, (t, 4)).astype(np.float32),
        "world_from_camera": np.array(
            [[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 1.0], [0, 0, 0, 1]], np.float64
        ),
        "phenotypes": shape.astype(np.float32),
        "anny_pose": rng.normal(0, 0.2, (t, len(BONES), 3)).astype(np.float32),
        "silhouette": np.zeros((t, 8, 8), np.uint8),
    }
    arrays.update({f"{schema.RIG_PREFIX}{k}": v for k, v in _rig(shape).items()})
    return arrays


def tiny_meta(t: int = 6, people: tuple[int, ...] = (0,)) -> dict:
    return {
        "format": schema.FORMAT_NAME, "version": schema.FORMAT_VERSION, "source_video": "tiny.mp4",
        "body_model": {"name": "anny", "bone_labels": list(BONES), "phenotype_labels": list(PHENOTYPES)},
        "fps": 30.0, "frame_count": t, "image_size": [64, 48],
        "intrinsics": [[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]],
        "keypoint_names": {"keypoints2d": [f"mp{i}" for i in range(33)], "keypoints3d": ["nose", "left_hip"]}, "people": list(people),
    }  # fmt: skip


def npz_entries(t: int = 6, people: tuple[int, ...] = (0,)) -> dict[str, np.ndarray]:
    """Every entry of a valid file, as ``np.savez`` takes them."""
    entries = {"meta": np.array(json.dumps(tiny_meta(t, people)))}
    for pid in people:
        entries.update({f"p{pid}/{k}": v for k, v in tiny_person(t, seed=pid).items()})
    return entries


def write_tiny_motion(path: Path, t: int = 6, people: tuple[int, ...] = (0,)) -> Path:
    np.savez_compressed(path, **npz_entries(t, people))
    return path
