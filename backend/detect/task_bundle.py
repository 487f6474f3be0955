"""Build MediaPipe's multi-person ``pose_landmarker.task`` bundle from the models in the wheel.

``mediapipe==0.10.21`` ships the pose detector and the full landmark model as plain
``.tflite`` files (used by the legacy single-person solutions) but no ``.task`` bundle for
the Tasks API ``PoseLandmarker``, which can follow several people. The bundle is two
``.tflite`` files with input-normalisation metadata, zipped uncompressed. It is built once,
locally (nothing is downloaded), into a cache folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from backend.errors import BadInput

log = logging.getLogger(__name__)

CACHE_ENV = "VIDEO2ANIM_CACHE"
"""Environment variable naming the cache folder (default ``~/.cache/video2anim``)."""

_DETECTOR = ("pose_detection", "pose_detection.tflite")
_LANDMARKS = ("pose_landmark", "pose_landmark_full.tflite")
_BUNDLE_VERSION = 1
_REINSTALL = "reinstall it with `pip install --force-reinstall mediapipe==0.10.21`"


def default_cache_dir() -> Path:
    """The cache folder: ``$VIDEO2ANIM_CACHE`` if set, else ``~/.cache/video2anim``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "video2anim"


def _wheel_models() -> tuple[Path, Path]:
    """Paths of the detector and landmark ``.tflite`` files inside the installed wheel."""
    try:
        import mediapipe
    except ImportError as exc:
        raise BadInput(f"MediaPipe is not installed: {_REINSTALL}.") from exc
    root = Path(mediapipe.__file__).resolve().parent / "modules"
    paths = (root.joinpath(*_DETECTOR), root.joinpath(*_LANDMARKS))
    for path in paths:
        if not path.is_file():
            raise BadInput(
                f"MediaPipe's model file {path} is missing; this project needs the models that "
                f"the mediapipe 0.10.21 wheel ships: {_REINSTALL}."
            )
    return paths


def _with_image_metadata(model: bytes, name: str, mean: float, std: float) -> bytes:
    """``model`` with metadata that tells MediaPipe to normalise inputs as ``(x - mean) / std``."""
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    writer.add_general_info(name, "Built by video2anim from the mediapipe 0.10.21 wheel.")
    writer.add_image_input(norm_mean=[mean], norm_std=[std])
    content, _ = writer.populate()
    return bytes(content)


def _bundle_name(detector: Path, landmarks: Path) -> str:
    """A file name that changes when the source models (or this builder) change."""
    digest = hashlib.sha256(f"v{_BUNDLE_VERSION}".encode())
    for path in (detector, landmarks):
        digest.update(path.read_bytes())
    return f"pose_landmarker_full_{digest.hexdigest()[:12]}.task"


def ensure_pose_task(cache_dir: Path | None = None) -> Path:
    """Return the path of a ``pose_landmarker.task`` bundle, building it on first use.

    Args:
        cache_dir: folder for the bundle; default :func:`default_cache_dir`.

    Raises:
        BadInput: the wheel's model files are missing, or the cache folder is not writable.
    """
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    detector, landmarks = _wheel_models()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = folder / _bundle_name(detector, landmarks)
    if target.is_file() and target.stat().st_size > 0:
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(
            f"Cannot create the cache folder {folder} ({exc}): set {CACHE_ENV} to a writable folder."
        ) from exc
    models = {
        "pose_detector.tflite": _with_image_metadata(
            detector.read_bytes(), "pose_detector", mean=127.5, std=127.5
        ),
        "pose_landmarks_detector.tflite": _with_image_metadata(
            landmarks.read_bytes(), "pose_landmarks_detector", mean=0.0, std=255.0
        ),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        model_asset_bundle_utils.create_model_asset_bundle(models, tmp_name)
        os.replace(tmp_name, target)
    except OSError as exc:
        raise BadInput(
            f"Cannot write the pose model bundle into {folder} ({exc}): "
            f"free some space or set {CACHE_ENV} to a writable folder."
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
    log.info("Built the multi-person pose model bundle %s", target)
    return target
