"""Several people crossing: rendered clips with exact identities, and how well tracking keeps them apart.

Each case has two or three Anny bodies (different shapes and shirt colours) walking held-out mocap walks
(CMU 07_05, 007_03) along straight lines that cross in front of and behind each other, seen from one
still camera at several heights. The ground truth is every person's projected keypoints per frame.

The score runs the detect and track stages as the estimate does (multi-person pass, tracking, appearance
re-linking, Holistic and backfill on the subjects) and matches every output body, frame by frame, to the
true person whose projected hips and shoulders are nearest (within half a torso). For ``--person auto``
the chosen subject's *identity switches* are the changes of matched person between matched frames;
for ``--person all`` each output person's *own share* is the share of their frames on the true person
they follow most.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.io.atomic import atomic_path
from backend.train.data import ClipSet, hash_of
from backend.train.synth import look_at
from bench.cases import (
    AVERAGE,
    SHORT_HEAVY,
    TALL_THIN,
    Phenotypes,
    centred_intrinsics,
    focal_from_fov,
    world_body,
)
from bench.metrics import project_points

log = logging.getLogger(__name__)

CROWD_VERSION = 1
SHIRTS = ((0.05, 0.18, 0.45), (0.5, 0.06, 0.05), (0.08, 0.35, 0.1))
"""Linear RGB shirt colours of persons 0, 1, 2 (blue, red, green)."""
TORSO = [KEYPOINT_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
MP_TORSO = [11, 12, 23, 24]
"""MediaPipe's indices of the same four landmarks."""


@dataclass(frozen=True)
class Walker:
    """One person: a mocap walk laid along a line on the floor (world y up, metres)."""

    clip: str
    phenotypes: Phenotypes
    start: tuple[float, float]
    """(x, z) on the floor where the walk's pelvis starts."""
    heading_deg: float
    """Direction of travel: 0 = +x (left to right for the camera), 180 = -x, 90 = -z (away)."""
    offset: int = 0
    """First frame of the clip."""


@dataclass(frozen=True)
class CrowdCase:
    """A still camera at ``(0, cam_height, cam_distance)`` looking at ``(0, 1, 0)``."""

    name: str
    walkers: tuple[Walker, ...]
    frames: int
    cam_height: float
    cam_distance: float = 4.5
    width: int = 640
    height: int = 360
    hfov_deg: float = 60.0

    @property
    def focal_px(self) -> float:
        return focal_from_fov(self.width, self.hfov_deg)

    @property
    def intrinsics(self) -> np.ndarray:
        return centred_intrinsics(self.width, self.height, self.hfov_deg)

    def key(self, data_hash: str) -> str:
        return hash_of(CROWD_VERSION, data_hash, repr(self))


_A, _B = "07_05", "007_03"
CROWD_CASES: tuple[CrowdCase, ...] = (
    CrowdCase("two_front", (Walker(_A, AVERAGE, (-2.2, 0.0), 0), Walker(_B, TALL_THIN, (2.2, 1.3), 180)), 96, 1.2),
    CrowdCase("two_behind", (Walker(_A, AVERAGE, (-2.2, 0.0), 0), Walker(_B, SHORT_HEAVY, (2.2, -1.5), 180)), 96, 1.7),
    CrowdCase("two_low", (Walker(_B, TALL_THIN, (-2.0, 0.6), 0), Walker(_A, SHORT_HEAVY, (2.0, -0.4), 180, 10)), 96, 0.8),
    CrowdCase("three_cross", (Walker(_A, AVERAGE, (-2.2, 0.0), 0), Walker(_B, TALL_THIN, (2.2, 1.2), 180),
                              Walker(_A, SHORT_HEAVY, (2.4, -1.4), 180, 20)), 96, 1.4),  # fmt: skip
    CrowdCase("three_high", (Walker(_B, SHORT_HEAVY, (-2.2, -1.0), 0), Walker(_A, AVERAGE, (2.2, 0.3), 180),
                             Walker(_A, TALL_THIN, (-0.6, 2.2), 80, 30)), 96, 2.1),  # fmt: skip
    CrowdCase("three_low", (Walker(_A, TALL_THIN, (-2.4, 1.0), 0, 15), Walker(_B, AVERAGE, (2.2, -0.2), 180),
                            Walker(_A, SHORT_HEAVY, (-2.0, -1.6), 10)), 96, 0.9),  # fmt: skip
)

CI_CROWD = dataclasses.replace(CROWD_CASES[0], name="ci_two_front", frames=72)
"""The tests' case: the first crossing, shortened (the front walker passes the other at about frame 45)."""


def _yaw(deg: float) -> np.ndarray:
    """Rotation about world +y by ``deg`` (right-handed)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def walker_world(walker: Walker, frames: int, clips: ClipSet, body) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """The walker posed in the world (y up, floor y = 0): ((T, V, 3) vertices, (T, 23, 3) keypoints)."""
    rot, transl = clips.clip(clips.names.index(walker.clip))
    rot = rot[walker.offset : walker.offset + frames].astype(np.float64)
    transl = transl[walker.offset : walker.offset + frames].astype(np.float64)
    if len(rot) < frames:
        raise ValueError(f"clip {walker.clip} has fewer than {walker.offset + frames} frames")
    travel = transl[-1, [0, 2]] - transl[0, [0, 2]]
    current = math.degrees(math.atan2(-travel[1], travel[0]))  # heading as defined on Walker
    turn = _yaw(walker.heading_deg - current)
    rot = rot.copy()
    rot[:, 0] = turn @ rot[:, 0]
    transl = (transl - transl[:1] * np.array([1.0, 0.0, 1.0])) @ turn.T + np.array([walker.start[0], 0, walker.start[1]])
    labels = list(body.phenotype_labels)
    values = dict(walker.phenotypes)
    verts, kps = world_body(body, np.array([values.get(k, 0.5) for k in labels]), rot, transl)
    lift = np.array([0.0, float(np.percentile(verts[..., 1].min(-1), 5)), 0.0])
    return verts - lift, kps - lift


@dataclass(frozen=True)
class CrowdTruth:
    """A rendered crowd case: the video and every person's (T, 23, 2) projected keypoints."""

    video: Path
    keypoints2d: np.ndarray
    """(N, T, 23, 2) pixels."""
    in_front: np.ndarray
    """(N, T) bool: the person's torso is in front of the camera and inside the image."""


def _camera(case: CrowdCase) -> tuple[np.ndarray, np.ndarray]:
    eye = np.array([0.0, case.cam_height, case.cam_distance])
    rot = look_at(eye[None], np.array([[0.0, 1.0, 0.0]]), np.zeros(1))[0]
    return rot, eye


def rendered_crowd(case: CrowdCase, clips: ClipSet, cache_root: Path, body_factory) -> CrowdTruth:  # noqa: ANN001
    """The case's video and ground truth, rendered with ``bpy`` unless cached under ``cache_root``."""
    folder = Path(cache_root) / f"crowd_{case.key(clips.data_hash)}"
    video, gt = folder / "video.mp4", folder / "ground_truth.npz"
    if video.is_file() and gt.is_file():
        with np.load(gt) as z:
            return CrowdTruth(video, z["keypoints2d"], z["in_front"])
    from bench.render import encode_mp4

    body = body_factory()
    rot, eye = _camera(case)
    posed = [walker_world(w, case.frames, clips, body) for w in case.walkers]
    cam = [(np.einsum("ij,t...j->t...i", rot, v - eye), np.einsum("ij,t...j->t...i", rot, k - eye)) for v, k in posed]
    k2d = np.stack([project_points(k, case.intrinsics) for _, k in cam])
    torso = k2d[:, :, TORSO]
    inside = (torso[..., 0] >= 0) & (torso[..., 0] < case.width) & (torso[..., 1] >= 0) & (torso[..., 1] < case.height)
    in_front = inside.all(-1) & np.stack([(k[:, TORSO, 2] > 0.1).all(-1) for _, k in cam])
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crowd_") as tmp:
        pngs = _render(case, [v for v, _ in cam], body, rot, eye, Path(tmp))
        encode_mp4(pngs, video)
    with atomic_path(gt, suffix=".npz") as tmp_gt:
        np.savez(tmp_gt, keypoints2d=k2d.astype(np.float32), in_front=in_front)
    return CrowdTruth(video, k2d.astype(np.float32), in_front)


def _render(case: CrowdCase, verts: list[np.ndarray], body, rot: np.ndarray, eye: np.ndarray, folder: Path) -> list[Path]:  # noqa: ANN001
    """Workbench frames of every body over the tiled floor, camera frame (OpenCV) vertices in."""
    from bench import render

    bpy = render.require_bpy()
    faces = body.faces.cpu().numpy()
    regions = render.face_regions(body.skin_weights.cpu().numpy(), faces, list(body.bone_labels))
    first, floor = render.build_scene(bpy, case, faces, regions, verts[0].shape[1])  # only its camera and image
    meshes = [first]
    bpy.data.materials["shirt"].diffuse_color = (*SHIRTS[0], 1.0)
    for n in range(1, len(verts)):
        obj = render.mesh_object(bpy, f"body{n}", verts[n].shape[1], faces)
        for name, colour in zip(render.REGIONS, render.PALETTE, strict=True):
            obj.data.materials.append(render.material(bpy, f"{name}{n}", SHIRTS[n] if name == "shirt" else colour))
        obj.data.polygons.foreach_set("material_index", regions.astype(np.int32))
        meshes.append(obj.data)
    square = np.array([[-15, 0, -15], [-15, 0, 15], [15, 0, 15], [15, 0, -15.0]])
    floor.vertices.foreach_set("co", render.blender_from_camera(render.tile_grid((square - eye) @ rot.T)).astype(np.float32).ravel())
    paths = []
    for t in range(case.frames):
        for mesh, v in zip(meshes, verts, strict=True):
            mesh.vertices.foreach_set("co", render.blender_from_camera(v[t]).astype(np.float32).ravel())
            mesh.update()
        path = folder / f"frame_{t:04d}.png"
        bpy.context.scene.render.filepath = str(path)
        with render.quiet_stdout():
            bpy.ops.render.render(write_still=True)
        paths.append(path)
    return paths


def match_people(body2d: np.ndarray, valid: np.ndarray, truth: CrowdTruth) -> np.ndarray:
    """(T,) the true person each output frame shows (-1: none near, or not valid).

    Args:
        body2d: (T, 33, 3) an output person's MediaPipe landmarks (pixels, confidence).
        valid: (T,) the frames the output has.
    A frame matches the person whose projected shoulders and hips are nearest on average, if that is
    within half their torso length.
    """
    ours = body2d[:, MP_TORSO, :2]  # (T, 4, 2)
    theirs = truth.keypoints2d[:, :, TORSO]  # (N, T, 4, 2)
    dist = np.linalg.norm(theirs - ours[None], axis=-1).mean(-1)  # (N, T)
    torso = np.linalg.norm(theirs[..., :2, :].mean(-2) - theirs[..., 2:, :].mean(-2), axis=-1)
    dist = np.where(truth.in_front, dist, np.inf)
    best = dist.argmin(0)
    near = dist[best, np.arange(len(best))] < 0.5 * torso[best, np.arange(len(best))]
    return np.where(np.asarray(valid, bool) & near, best, -1)


def identity_stats(matched: np.ndarray) -> dict[str, float | int]:
    """Switches of ``matched`` (T,) between matched frames, the person followed most, its share."""
    seen = matched[matched >= 0]
    if len(seen) == 0:
        return {"switches": 0, "follows": -1, "own_share": 0.0, "matched_frames": 0}
    follows = int(np.bincount(seen).argmax())
    return {
        "switches": int((np.diff(seen) != 0).sum()),
        "follows": follows,
        "own_share": float((seen == follows).mean()),
        "matched_frames": int(len(seen)),
    }


def score_case(case: CrowdCase, truth: CrowdTruth) -> dict[str, object]:
    """Detect and track the case's video with ``--person all``; the subject is the one ``auto`` picks."""
    from backend.config import DetectConfig, TrackConfig
    from backend.detect.run import detect_subjects
    from backend.io.video import probe

    result = detect_subjects(probe(truth.video), 0, None, DetectConfig(), TrackConfig(person="all"),
                             lambda event: None, lambda: False)  # fmt: skip
    people = {s.track_id: identity_stats(match_people(s.body2d, s.valid, truth)) for s in result.subjects}
    subject = people[min(people)]
    return {
        "case": case.name, "people": len(case.walkers), "frames": case.frames, "tracks": result.n_tracks,
        "subject": subject, "all": people,
        "min_own_share": min(p["own_share"] for p in people.values()),
        "true_people_followed": len({p["follows"] for p in people.values() if p["follows"] >= 0}),
        "warnings": result.warnings,
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    """The report as a Markdown table."""
    lines = [
        "| case | people | camera height (m) | tracks | subject switches | subject on own person | "
        "--person all: least own share | true people followed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["subject"]
        lines.append(f"| {row['case']} | {row['people']} | {row['cam_height']:.1f} | {row['tracks']} | "
                     f"{s['switches']} | {100 * s['own_share']:.1f}% | {100 * row['min_own_share']:.1f}% | "
                     f"{row['true_people_followed']} of {row['people']} |")  # fmt: skip
    return "\n".join(lines)


def run_crowd(cases: int | None, cache_dir: Path | None) -> list[dict]:
    """Render (or reuse) and score the crowd cases; one row per case."""
    from backend.body.anny_body import AnnyBody
    from backend.train.data import load_clipset

    clips = load_clipset("test")
    cache = cache_dir or Path.home() / ".cache" / "video2anim" / "bench"
    shared: list[object] = []

    def body() -> object:
        if not shared:
            shared.append(AnnyBody())
        return shared[0]

    rows = []
    for case in CROWD_CASES[:cases]:
        truth = rendered_crowd(case, clips, cache, body)
        row = score_case(case, truth) | {"cam_height": case.cam_height}
        log.info("%s: subject %s; all %s", case.name, row["subject"], row["all"])
        rows.append(row)
    return rows
