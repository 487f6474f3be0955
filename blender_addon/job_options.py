"""What to estimate and how: the typed options of ``python -m backend estimate`` (bpy-free).

:class:`JobOptions` checks itself (``problems()``, in words a user can act on) and builds the
backend's command line (``argv()``); see DESIGN.md for the command-line contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .protocol import PRESETS

__all__ = ["PRESETS", "DEVICES", "BODIES", "GENDERS", "JobOptions"]
DEVICES = ("auto", "cpu", "cuda")
BODIES = ("anny", "smpl", "smplh", "smplx")
GENDERS = ("neutral", "male", "female")
_SITES = {"smpl": "smpl.is.tue.mpg.de", "smplh": "mano.is.tue.mpg.de", "smplx": "smpl-x.is.tue.mpg.de"}


@dataclass(frozen=True)
class JobOptions:
    """What to estimate and how; mirrors ``python -m backend estimate`` (see DESIGN.md)."""

    video: Path
    out: Path
    """The ``.motion.npz`` to write."""
    preset: str = "balanced"
    person: str = "auto"
    """``auto``, ``all`` or a track id."""
    start: int = 0
    """First source frame (inclusive, 0-based)."""
    end: int | None = None
    """Last source frame (exclusive); None for the end of the clip."""
    device: str = "auto"
    preview: Path | None = None
    """Also write an MP4 preview (and a PNG contact sheet) here."""
    body: str = "anny"
    model_path: Path | None = None
    """Folder of the user's SMPL/SMPL-X files (bodies other than anny)."""
    gender: str = "neutral"
    """Which SMPL-family model file (neutral, male, female); Anny ignores it."""
    vposer: Path | None = None
    focal_px: float | None = None
    hands: bool = True
    """Estimate the fingers (``--no-hands`` when off)."""
    face: bool = True
    """Estimate the face (``--no-face`` when off)."""
    command: str = "estimate"
    """``estimate`` (``out`` is a ``.motion.npz``) or ``people`` (who is in the clip, no fit: ``out`` is a
    ``.people.npz``; only the video and the frame range count)."""

    def problems(self) -> list[str]:
        """What is wrong with these options, in words a user can act on (empty when fine)."""
        found = []
        if not Path(self.video).is_file():
            found.append(f"The video {self.video} does not exist.")
        if self.preset not in PRESETS:
            found.append(f"Unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}.")
        if self.device not in DEVICES:
            found.append(f"Unknown device {self.device!r}; use one of {', '.join(DEVICES)}.")
        if self.body not in BODIES:
            found.append(f"The body model {self.body!r} is not supported; use {', '.join(BODIES)}.")
        elif self.body != "anny" and (self.model_path is None or not Path(self.model_path).exists()):
            found.append(
                f"The {self.body.upper()} body needs your own model files: download them from "
                f"https://{_SITES[self.body]} and choose their folder as the model path."
            )
        if self.gender not in GENDERS:
            found.append(f"Unknown gender {self.gender!r}; use one of {', '.join(GENDERS)}.")
        person = str(self.person).replace(" ", "")
        if person not in ("auto", "all") and not all(part.isdigit() for part in person.split(",")):
            found.append("Person must be auto, all, a track id (a number) or ids separated by commas (0,2).")
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            found.append("The frame range is empty: the end must come after the start.")
        if self.focal_px is not None and self.focal_px <= 0:
            found.append("The focal length must be a positive number of pixels.")
        suffix = ".people.npz" if self.command == "people" else ".motion.npz"
        if self.command not in ("estimate", "people"):
            found.append(f"Unknown backend command {self.command!r}.")
        elif not str(self.out).endswith(suffix):
            found.append(f"The output {self.out} must end with {suffix}.")
        return found

    def argv(self, python: Path, module: str = "backend") -> list[str]:
        """The backend's command line (always with ``--events``)."""
        if self.command == "people":
            cmd = [str(python), "-m", module, "people", str(self.video), "--out", str(self.out), "--events"]
            return cmd + ["--start", str(self.start)] + ([] if self.end is None else ["--end", str(self.end)])
        cmd = [str(python), "-m", module, "estimate", str(self.video), "--out", str(self.out), "--events"]
        cmd += ["--preset", self.preset, "--device", self.device, "--person", str(self.person).replace(" ", "")]
        cmd += ["--body", self.body, "--start", str(self.start)]
        if self.end is not None:
            cmd += ["--end", str(self.end)]
        if self.preview is not None:
            cmd += ["--preview", str(self.preview)]
        if self.model_path is not None and self.body != "anny":
            cmd += ["--model-path", str(self.model_path), "--gender", self.gender]
        if self.vposer is not None:
            cmd += ["--vposer", str(self.vposer)]
        if self.focal_px is not None:
            cmd += ["--focal-px", repr(float(self.focal_px))]
        cmd += [] if self.hands else ["--no-hands"]
        cmd += [] if self.face else ["--no-face"]
        return cmd


def log_path_for(out: Path) -> Path:
    """``clip.log`` next to ``clip.motion.npz``."""
    name = Path(out).name.removesuffix(".npz").removesuffix(".motion")
    return Path(out).with_name(f"{name}.log")
