"""The layering rule of ARCHITECTURE.md, enforced by parsing every import, and the size limits.

Layers, bottom to top (a module may import its own layer's package and any layer below, never above):

0. ``errors``, ``protocol``, ``config``      plain definitions (standard library, dataclasses)
1. ``geometry``, ``cancel``, ``threads``     conventions (skeleton, frames), shared maths; cancellation; CPU threads
2. ``io``                                    video, motion file, outputs, checkpoints
3. ``body``                                  body models behind one protocol, rigs, pose prior
4. ``detect``                                2D keypoints, tracks (carry the converted keypoints)
5. ``lift``                                  2D tracks -> 3D keypoints
6. ``fit``                                   objective, schedule, stage runner
7. ``pipeline``, ``train``                   the estimate's stages; training (mocap preparation included)
8. ``cli``, ``__main__``, ``prepare``        commands

The add-on (``blender_addon``) never imports ``backend``: it talks to it through the protocol and the
motion file (its vendored readers are links to the backend's torch-free modules). ``backend`` never
imports ``bench``, ``blender_addon`` or ``tests``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: list[set[str]] = [
    {"errors", "protocol", "config", "__init__"},
    {"geometry", "cancel", "threads"},
    {"io"},
    {"body"},
    {"detect"},
    {"lift"},
    {"fit"},
    {"pipeline", "train"},
    {"cli", "__main__", "prepare"},
]
LEVEL = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
MAX_FUNCTION_LINES, MAX_FILE_LINES = 80, 400


def _room(module: str) -> str:
    """``backend.fit.losses`` -> ``fit``; ``backend.cli`` -> ``cli``; ``backend`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [
                (node.lineno, f"{module}.{alias.name}" if module == "backend" else module)
                for alias in node.names
            ]
    return found


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_backend_room_has_a_layer() -> None:
    rooms = {_room(_module_name(p)) for p in _python_files("backend")}
    assert rooms <= set(LEVEL), f"rooms without a layer: {sorted(rooms - set(LEVEL))}"


def test_no_upward_imports() -> None:
    wrong = []
    for path in _python_files("backend"):
        here = _room(_module_name(path))
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in ("bench", "blender_addon", "tests"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            elif top == "backend" and LEVEL[_room(module)] > LEVEL[here]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({here}) imports {module} (above it)")
    assert not wrong, "\n".join(wrong)


def test_the_addon_never_imports_the_backend() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _python_files("blender_addon")
        for line, module in _imports(path)
        if module.split(".")[0] in ("backend", "torch", "bench")
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("folder", ["backend", "blender_addon"])
def test_functions_and_files_stay_small(folder: str) -> None:
    long_functions, long_files = [], []
    for path in _python_files(folder):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines"
                    )
    assert not long_functions and not long_files, "\n".join(long_functions + long_files)
