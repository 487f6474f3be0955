"""Checkpoint files: safe loading, atomic saving, and how a checkpoint of ours was trained.

Files are read with ``torch.load(weights_only=True)``. Pickled objects other than tensors and plain
containers (numpy random states, Lightning hyper-parameters, ...) are replaced by inert placeholders
and never constructed, so a checkpoint cannot run code when loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from backend.errors import BadInput
from backend.io.atomic import atomic_path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
"""The small trained weights the default path ships (``backend/weights``, with their NOTICE)."""
_MAX_FOREIGN_GLOBALS = 64
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")


class _Opaque:
    """Stands in for a pickled object of a class we do not load; takes any arguments and state."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Opaque:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def safe_torch_load(path: Path, expected: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with foreign pickled objects made inert.

    Args:
        path: the file.
        expected: what the file should be, for the error message ("a VideoPose3D checkpoint ...").
    Raises:
        BadInput: the file is missing, unreadable, corrupt or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path} does not exist or is not a file; expected {expected}.")
    foreign: list[str] = []
    try:
        foreign = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # legacy (non-zip) files: foreign objects are found while loading instead
        foreign = []
    for _ in range(_MAX_FOREIGN_GLOBALS):
        try:
            with torch.serialization.safe_globals([(_Opaque, name) for name in foreign]):
                return torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # every failure becomes a BadInput
            match = _UNSUPPORTED_GLOBAL.search(str(exc))
            if match is None or match.group(1) in foreign:
                raise BadInput(
                    f"Cannot read {path}: expected {expected} ({type(exc).__name__}: {str(exc)[:300]})."
                ) from exc
            foreign.append(match.group(1))
    raise BadInput(f"Cannot read {path}: too many foreign objects in it; expected {expected}.")


@dataclass(frozen=True)
class TrainingMetadata:
    """How a checkpoint of ours was trained (plain types only)."""

    seed: int | None = None
    train_config: Mapping[str, Any] = field(default_factory=dict)
    data_hash: str | None = None
    epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict as stored in our checkpoints (``train_config`` under ``config``)."""
        return {
            "seed": self.seed,
            "config": dict(self.train_config),
            "data_hash": self.data_hash,
            "epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> TrainingMetadata:
        """Inverse of ``to_dict``; missing entries stay None."""
        d = d or {}
        return cls(
            seed=d.get("seed"),
            train_config=dict(d.get("config") or {}),
            data_hash=d.get("data_hash"),
            epoch=d.get("epoch"),
        )


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """``torch.save`` a payload of tensors and plain containers to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path, suffix=".pt.part") as tmp:
        torch.save(dict(payload), tmp)
    return path
