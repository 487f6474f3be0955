"""Where the backend's source and its Python are, and how to install them (bpy-free, stdlib only).

The add-on never imports the backend: it runs ``python -m backend`` in a separate environment.

- Source: the built extension bundles it under ``backend_src/`` (see ``build_addon.py``); an add-on
  run from the repository uses the repository itself.
- Python: the path set in the preferences; else the repository's ``.venv``; else the virtual
  environment that the preferences' *Install Backend* button creates in the extension's user folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent
BUNDLED = "backend_src"
REQUIREMENTS = "requirements.txt"
TORCH_CPU = "torch==2.13.0"
TORCH_CUDA = "torch>=2.4,<2.14"
"""The same choice as ``scripts/setup.sh``."""


def backend_root(addon_dir: Path = ADDON_DIR) -> Path | None:
    """The folder that holds the ``backend`` package: bundled, or the repository around the add-on."""
    for candidate in (addon_dir / BUNDLED, addon_dir.parent):
        if (candidate / "backend" / "__main__.py").is_file():
            return candidate
    return None


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment (POSIX or Windows layout)."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def find_python(configured: str, root: Path | None, user_venv: Path | None) -> Path | None:
    """The backend's Python: ``configured`` if set, else the repository's or the installed venv's."""
    if configured.strip():
        path = Path(configured).expanduser()
        return path if path.is_file() else None
    candidates = []
    if root is not None:
        candidates.append(venv_python(root / ".venv"))
    if user_venv is not None:
        candidates.append(venv_python(user_venv))
    return next((p for p in candidates if p.is_file()), None)


def base_python() -> Path | None:
    """A Python 3.11 to create the venv with: the running one (Blender's) if it is 3.11."""
    if sys.version_info[:2] == (3, 11) and sys.executable and Path(sys.executable).is_file():
        return Path(sys.executable)
    found = shutil.which("python3.11")
    return Path(found) if found else None


def requirements(root: Path) -> list[str]:
    """The backend's third-party dependencies: the bundled list, or the repository's pyproject."""
    listed = root / REQUIREMENTS
    if listed.is_file():
        lines = listed.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        with open(pyproject, "rb") as handle:
            return list(tomllib.load(handle)["project"]["dependencies"])
    raise FileNotFoundError(f"neither {listed} nor {pyproject} lists the backend's dependencies")


def has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


@dataclass(frozen=True)
class Step:
    """One command of the installation."""

    title: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def install_steps(base: Path, venv: Path, root: Path, cuda: bool | None = None) -> list[Step]:
    """The commands that give ``venv`` everything ``python -m backend`` needs (``scripts/setup.sh``).

    Creates the venv (unless it exists), installs torch (CPU build unless an NVIDIA GPU is seen),
    the backend's dependencies, and builds the backend's one-time caches.
    """
    python = str(venv_python(venv))
    cuda = has_nvidia_gpu() if cuda is None else cuda
    steps = []
    if not venv_python(venv).is_file():
        steps.append(Step("Create the environment", [str(base), "-m", "venv", str(venv)]))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    steps += [
        Step("Update pip", [*pip, "--upgrade", "pip"]),
        Step("Install PyTorch", [*pip, TORCH_CUDA if cuda else TORCH_CPU]),
        Step("Install the backend's dependencies", [*pip, *requirements(root)]),
        Step("Build the one-time caches", [python, "-m", "backend", "prepare"], {"PYTHONPATH": str(root)}),
    ]
    return steps
