"""Build the installable Blender extension: ``dist/video2anim-<version>.zip``.

The zip holds the add-on (``blender_addon/``, manifest at the top; its links to the backend's
torch-free modules are stored as files) and the backend's source under ``backend_src/``
(``backend/**/*.py`` but ``backend/train/``, which the add-on never runs, ``backend/weights/*`` and
``requirements.txt`` listing its third-party dependencies from ``pyproject.toml``); caches are left
out. The benchmarks (``bench/``) live outside the backend and are not shipped. The add-on runs that source
in its own Python environment, which the preferences' *Install Backend* button creates with pip.

    python build_addon.py [--out DIR]

Install it with Blender's *Install from Disk* or ``blender --command extension install-file -r
user_default dist/video2anim-<version>.zip``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_addon"
BACKEND = ROOT / "backend"
BUNDLED = "backend_src"
_EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
_NOT_SHIPPED = ("backend/train/",)
"""Backend folders the add-on never runs (training and its mocap preparation)."""
_EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
_DATE = (2024, 1, 1, 0, 0, 0)
"""Fixed timestamps: the same sources give the same zip."""

log = logging.getLogger("build_addon")


def manifest_version(addon: Path = ADDON) -> str:
    with open(addon / "blender_manifest.toml", "rb") as handle:
        return str(tomllib.load(handle)["version"])


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The backend's third-party dependencies, one per line (pip's requirements format)."""
    with open(pyproject, "rb") as handle:
        deps = tomllib.load(handle)["project"]["dependencies"]
    return (
        "# Installed by the add-on's 'Install Backend' button (generated from pyproject.toml).\n"
        + "".join(f"{dep}\n" for dep in deps)
    )


def _kept(path: Path) -> bool:
    return (
        path.is_file()
        and not (set(path.parts) & _EXCLUDED_PARTS)
        and path.suffix not in _EXCLUDED_SUFFIXES
        and not path.name.startswith(".")
    )


def files(root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    """(source file, name in the zip) for everything the extension ships."""
    addon, backend = root / "blender_addon", root / "backend"
    for path in sorted(addon.rglob("*")):
        if _kept(path):
            yield path, path.relative_to(addon).as_posix()
    backend_files = [p for p in backend.rglob("*.py")] + [p for p in (backend / "weights").glob("*")]
    for path in sorted(set(backend_files)):
        if _kept(path) and not path.relative_to(root).as_posix().startswith(_NOT_SHIPPED):
            yield path, f"{BUNDLED}/{path.relative_to(root).as_posix()}"


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def software_version(root: Path = ROOT) -> str:
    """``VERSION`` of ``backend/protocol.py`` (the one place the version is written)."""
    for line in (root / "backend" / "protocol.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("VERSION = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise ValueError("backend/protocol.py has no VERSION")


def build(out_dir: Path = ROOT / "dist", root: Path = ROOT) -> Path:
    """Write the extension zip and return its path."""
    version = manifest_version(root / "blender_addon")
    if version != software_version(root):
        raise ValueError(f"blender_manifest.toml says {version}, backend/protocol.py {software_version(root)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"video2anim-{version}.zip"
    tmp = target.with_suffix(".zip.tmp")
    count = 0
    with zipfile.ZipFile(tmp, "w") as archive:
        for path, name in files(root):
            _write(archive, name, path.read_bytes())
            count += 1
        _write(archive, f"{BUNDLED}/requirements.txt", requirements(root / "pyproject.toml").encode())
    tmp.replace(target)
    log.info("wrote %s (%d files, %.0f kB)", target, count + 1, target.stat().st_size / 1024)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
