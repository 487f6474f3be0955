"""Read an FBX with Assimp (Debian's ``assimp`` command, not our code): the scene as Assimp's JSON dump,
summarised for the tests: bones, bone weights per vertex, normals, the animation, and where the body
faces in the reader's world (node transforms applied, the file's axis settings NOT applied: what a
reader that ignores them shows)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FbxSummary:
    bones: set[str]
    max_weights_per_vertex: int
    weight_sum_error: float
    vertices: int
    normals: int
    animation: str
    frames: int
    keys_per_channel: int
    up: np.ndarray
    """Unit vector from the feet to the head (bind pose, the reader's world)."""
    forward: np.ndarray
    """Unit horizontal vector from the ankles to the toes, both feet averaged (each foot turns out a little)."""
    height: float
    """Ankle to head distance in the file's units."""


def assimp_command() -> str | None:
    return shutil.which("assimp")


def _globals(node: dict, parent: np.ndarray, out: dict[str, np.ndarray]) -> None:
    world = parent @ np.array(node["transformation"], dtype=float).reshape(4, 4)
    out[node["name"]] = world
    for child in node.get("children", []):
        _globals(child, world, out)


def dump(path: Path, tmp: Path) -> dict:
    """The scene of ``path`` as Assimp reads it: its JSON export (``assjson``), written under ``tmp``."""
    out = tmp / f"{path.stem}.assimp.json"
    run = subprocess.run([assimp_command() or "assimp", "export", str(path), str(out), "-fassjson"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"assimp could not read {path}: {run.stdout[-500:]} {run.stderr[-500:]}")
    return json.loads(out.read_text())


def read_fbx(path: Path, tmp: Path) -> FbxSummary:
    """Summarise ``path`` as Assimp reads it."""
    scene = dump(path, tmp)
    weights: dict[tuple[int, int], float] = {}
    counts: dict[tuple[int, int], int] = {}
    bones, vertices, normals = set(), 0, 0
    for m, mesh in enumerate(scene["meshes"]):
        vertices += len(mesh["vertices"]) // 3
        normals += len(mesh.get("normals", [])) // 3
        for bone in mesh.get("bones", []):
            bones.add(bone["name"])
            for v, w in bone["weights"]:
                if w > 0.0:
                    counts[m, v] = counts.get((m, v), 0) + 1
                    weights[m, v] = weights.get((m, v), 0.0) + w
    anim = scene["animations"][0]
    nodes: dict[str, np.ndarray] = {}
    _globals(scene["rootnode"], np.eye(4), nodes)
    p = {k: nodes[k][:3, 3] for k in ("foot.L", "toe2-1.L", "foot.R", "toe2-1.R", "head")}
    feet = [(p[f"foot.{s}"], p[f"toe2-1.{s}"]) for s in ("L", "R")]
    up = p["head"] - (feet[0][0] + feet[1][0]) / 2
    steps = [(toe - foot) / np.linalg.norm(toe - foot) for foot, toe in feet]
    flat = sum(step - step.dot(up) / up.dot(up) * up for step in steps)
    return FbxSummary(
        bones=bones, max_weights_per_vertex=max(counts.values()),
        weight_sum_error=float(max(abs(s - 1.0) for s in weights.values())), vertices=vertices, normals=normals,
        animation=anim["name"], frames=int(round(anim["duration"])) + 1,
        keys_per_channel=max(len(c["rotationkeys"]) for c in anim["channels"]),
        up=up / np.linalg.norm(up), forward=flat / np.linalg.norm(flat), height=float(np.linalg.norm(up)),
    )  # fmt: skip
