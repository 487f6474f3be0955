"""Render a posed bench case with headless Blender (``bpy``, Workbench on the CPU) to an MP4.

The Blender camera sits at the origin looking down -Z with +Y up, so a camera-frame (OpenCV:
x right, y down, z forward) point ``(x, y, z)`` is the Blender point ``(x, -y, -z)``. The sensor
is fitted horizontally (36 mm wide) and the lens set so that the focal length in pixels is the
case's. The body is coloured by its skinning: skin, a shirt (torso and upper arms), trousers
(pelvis and legs) and shoes, over a floor square and a plain background.

Rendered clips are cached under ``<cache>/<case key>/`` (``video.mp4``, ``ground_truth.npz``,
``frame_0000.png``), so reruns skip the render. ``bpy`` is imported only inside functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from backend.errors import BadInput
from backend.io.atomic import atomic_path
from backend.train.data import ClipSet
from bench.cases import BenchCase, PosedCase, pose_case

log = logging.getLogger(__name__)

SENSOR_WIDTH_MM = 36.0
REGIONS = ("skin", "shirt", "trousers", "shoes")
# Linear RGB (Blender's colour space); the view transform is "Standard".
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.62, 0.33, 0.22),  # skin
    (0.05, 0.18, 0.45),  # shirt
    (0.06, 0.06, 0.07),  # trousers
    (0.30, 0.12, 0.04),  # shoes
)
FLOOR_COLOUR = (0.45, 0.42, 0.36)
FLOOR_TILES = 30
"""The floor square is tiled FLOOR_TILES x FLOOR_TILES (1 m tiles) in FLOOR_SHADES shades, drawn at
random (seeded): texture for tracking a panning camera on the background that does not repeat (a
checkerboard would let the tracker slip by a tile)."""
FLOOR_SHADES = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)
BACKGROUND_COLOUR = (0.55, 0.6, 0.65)


@dataclass(frozen=True)
class RenderedCase:
    """A cached render: the video, the sample frame and the ground truth (see `PosedCase`)."""

    video: Path
    sample_png: Path
    keypoints3d: np.ndarray
    """(T, 23, 3) camera frame, metres."""
    keypoints2d: np.ndarray
    """(T, 23, 2) pixels."""
    in_view: np.ndarray
    """(T,) bool."""


def require_bpy() -> ModuleType:
    """Import ``bpy`` or raise BadInput saying how to install it."""
    try:
        import bpy
    except ImportError as exc:
        raise BadInput(
            "The accuracy bench renders with Blender's Python module, which is not installed: "
            "run `pip install bpy==5.0.1` in this environment (Python 3.11) or `scripts/setup.sh dev`."
        ) from exc
    return bpy


def blender_from_camera(points: np.ndarray) -> np.ndarray:
    """OpenCV camera-frame points (..., 3) -> Blender coordinates of a camera at the origin (..., 3)."""
    return np.asarray(points) * np.array([1.0, -1.0, -1.0])


def region_of_bone(label: str) -> int:
    """Index into `REGIONS` of the clothing an Anny bone's vertices wear."""
    if label.startswith(("foot", "toe")):
        return 3
    if label == "root" or label.startswith(("pelvis", "upperleg", "lowerleg")):
        return 2
    if label.startswith(("spine", "clavicle", "shoulder", "upperarm")):
        return 1
    return 0


def face_regions(skin_weights: np.ndarray, faces: np.ndarray, bone_labels: list[str]) -> np.ndarray:
    """(F,) region index per triangle: the region of the bone weighing most on its 3 vertices.

    skin_weights: (V, B) dense skinning weights; faces: (F, 3) vertex indices.
    """
    bone_region = np.array([region_of_bone(b) for b in bone_labels])
    per_face = np.asarray(skin_weights)[np.asarray(faces)].sum(1)  # (F, B)
    return bone_region[per_face.argmax(-1)].astype(np.int64)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 (Blender's render progress lines) to /dev/null while inside."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def material(bpy: ModuleType, name: str, colour: tuple[float, float, float]):  # noqa: ANN202
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*colour, 1.0)
    mat.roughness = 0.6
    return mat


def mesh_object(bpy: ModuleType, name: str, n_verts: int, faces: np.ndarray):  # noqa: ANN202
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.zeros((n_verts, 3)).tolist(), [], np.asarray(faces).tolist())
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def build_scene(bpy: ModuleType, case: BenchCase, faces: np.ndarray, regions: np.ndarray, n_verts: int):  # noqa: ANN202
    """An empty scene with the camera, the body mesh and the floor; returns (body, floor) meshes."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    render = scene.render
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_x, render.resolution_y, render.resolution_percentage = case.width, case.height, 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.film_transparent = False
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"
    scene.display.render_aa = "8"
    shading = scene.display.shading
    shading.light, shading.color_type = "STUDIO", "MATERIAL"
    shading.studio_light = "outdoor.sl"  # lights a floor seen at a grazing angle too
    shading.use_world_space_lighting = False
    shading.show_shadows = False
    world = bpy.data.worlds.new("bench")
    world.color = BACKGROUND_COLOUR
    scene.world = world

    cam_data = bpy.data.cameras.new("camera")
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.sensor_width = SENSOR_WIDTH_MM
    cam_data.lens = case.focal_px * SENSOR_WIDTH_MM / case.width
    cam_data.shift_x = cam_data.shift_y = 0.0
    cam_data.clip_start, cam_data.clip_end = 0.05, 200.0
    camera = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(camera)
    scene.camera = camera  # at the origin, unrotated: looks down -Z, +Y up

    body = mesh_object(bpy, "body", n_verts, faces)
    for name, colour in zip(REGIONS, PALETTE, strict=True):
        body.data.materials.append(material(bpy, name, colour))
    body.data.polygons.foreach_set("material_index", regions.astype(np.int32))
    body.data.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    floor = mesh_object(bpy, "floor", (FLOOR_TILES + 1) ** 2, _tile_faces(FLOOR_TILES))
    for k, shade in enumerate(FLOOR_SHADES):
        floor.data.materials.append(material(bpy, f"floor_{k}", tuple(c * shade for c in FLOOR_COLOUR)))
    tiles = np.random.default_rng(7).integers(len(FLOOR_SHADES), size=FLOOR_TILES * FLOOR_TILES)
    floor.data.polygons.foreach_set("material_index", tiles.astype(np.int32))
    return body.data, floor.data


def _tile_faces(n: int) -> np.ndarray:
    """(n * n, 4) quads of an (n + 1) x (n + 1) grid of vertices, row by row."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a = (i * (n + 1) + j).ravel()
    return np.stack([a, a + 1, a + n + 2, a + n + 1], axis=1)


def tile_grid(corners: np.ndarray, n: int = FLOOR_TILES) -> np.ndarray:
    """((n + 1)^2, 3) grid points spanning a quad's corners (4, 3) (bilinear, row by row)."""
    u = np.linspace(0.0, 1.0, n + 1)
    uu, vv = np.meshgrid(u, u, indexing="ij")
    c0, c1, c2, c3 = corners
    grid = ((1 - uu) * (1 - vv))[..., None] * c0 + ((1 - uu) * vv)[..., None] * c1
    grid = grid + (uu * vv)[..., None] * c2 + (uu * (1 - vv))[..., None] * c3
    return grid.reshape(-1, 3)


def render_frames(
    posed: PosedCase,
    case: BenchCase,
    faces: np.ndarray,
    regions: np.ndarray,
    folder: Path,
    frames: list[int] | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> list[Path]:
    """Render frames (default: all) of a posed case to ``folder/frame_####.png``; returns the paths.

    faces: (F, 3) triangles; regions: (F,) `REGIONS` index per triangle.
    """
    bpy = require_bpy()
    frames = list(range(len(posed.vertices))) if frames is None else frames
    Path(folder).mkdir(parents=True, exist_ok=True)
    body, floor = build_scene(bpy, case, faces, regions, posed.vertices.shape[1])
    scene = bpy.context.scene
    paths = []
    for t in frames:
        body.vertices.foreach_set("co", blender_from_camera(posed.vertices[t]).astype(np.float32).ravel())
        body.update()
        floor.vertices.foreach_set("co", blender_from_camera(tile_grid(posed.floor[t])).astype(np.float32).ravel())
        floor.update()
        path = Path(folder) / f"frame_{t:04d}.png"
        scene.render.filepath = str(path)
        with quiet_stdout():
            bpy.ops.render.render(write_still=True)
        paths.append(path)
        if on_frame is not None:
            on_frame(t)
    return paths


def encode_mp4(pngs: list[Path], path: Path, fps: float = 30.0) -> None:
    """Encode PNG frames (all one size, even sides) to an H.264 MP4 at `path` (written atomically)."""
    import cv2
    import imageio_ffmpeg

    first = cv2.imread(str(pngs[0]))
    h, w = first.shape[:2]
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w, h), fps=fps, codec="libx264", macro_block_size=1, quality=None,
            output_params=["-crf", "16", "-preset", "fast"],
        )  # fmt: skip
        writer.send(None)
        try:
            for png in pngs:
                bgr = cv2.imread(str(png))
                writer.send(np.ascontiguousarray(bgr[..., ::-1]))
        finally:
            writer.close()


def _load_cached(folder: Path) -> RenderedCase | None:
    video, gt = folder / "video.mp4", folder / "ground_truth.npz"
    if not (video.is_file() and gt.is_file()):
        return None
    with np.load(gt) as z:
        return RenderedCase(
            video, folder / "frame_0000.png", z["keypoints3d"], z["keypoints2d"], z["in_view"]
        )


def rendered_case(
    case: BenchCase, clips: ClipSet, cache_root: Path, body_factory: Callable[[], object]
) -> RenderedCase:
    """The case's video and ground truth, rendered now unless cached under `cache_root`.

    body_factory: returns the (shared) `AnnyBody`; only called when a render is needed.
    """
    folder = Path(cache_root) / case.key(clips.data_hash)
    cached = _load_cached(folder)
    if cached is not None:
        log.info("case %s: cached render %s", case.name, folder)
        return cached
    require_bpy()
    folder.mkdir(parents=True, exist_ok=True)
    body = body_factory()
    posed = pose_case(case, clips, body)
    faces = body.faces.cpu().numpy()
    regions = face_regions(body.skin_weights.cpu().numpy(), faces, list(body.bone_labels))
    log.info("case %s: rendering %d frames at %dx%d", case.name, len(posed.vertices), case.width, case.height)

    def progress(t: int) -> None:
        if (t + 1) % 30 == 0:
            log.info("case %s: rendered %d/%d", case.name, t + 1, len(posed.vertices))

    with tempfile.TemporaryDirectory(prefix="bench_render_") as tmp:
        pngs = render_frames(posed, case, faces, regions, Path(tmp), on_frame=progress)
        with atomic_path(folder / "frame_0000.png", suffix=".png") as sample:
            sample.write_bytes(pngs[0].read_bytes())
        encode_mp4(pngs, folder / "video.mp4")
    with atomic_path(folder / "ground_truth.npz", suffix=".npz") as tmp_gt:
        np.savez(tmp_gt, keypoints3d=posed.keypoints3d.astype(np.float32),
                 keypoints2d=posed.keypoints2d.astype(np.float32), in_view=posed.in_view,
                 intrinsics=case.intrinsics)  # fmt: skip
    with atomic_path(folder / "case.json", suffix=".json") as tmp_case:
        tmp_case.write_text(json.dumps(case.to_dict(), indent=1))
    return RenderedCase(folder / "video.mp4", folder / "frame_0000.png", posed.keypoints3d,
                        posed.keypoints2d, posed.in_view)  # fmt: skip
