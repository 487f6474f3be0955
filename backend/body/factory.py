"""Build the body model an estimate run asks for: Anny (shipped) or the user's SMPL-family files.

``build_body`` is the one factory (every body is a :class:`~backend.body.model.BodyModel`).
``check_body_choice`` validates the choice without loading anything heavy (the command line calls
it while parsing); ``open_smpl_body`` loads and checks the model file, so that a missing or wrong
file fails before the long stages, with a message naming the file, where it was looked for and
where to get it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from backend.body.smpl_files import DOWNLOAD_SITES, GENDERS, MODEL_TYPES, ModelFileConfig
from backend.errors import BadInput

if TYPE_CHECKING:
    import torch

    from backend.body.model import BodyModel
    from backend.body.smplx_body import SmplxBody

log = logging.getLogger(__name__)

BODY_CHOICES = ("anny", *MODEL_TYPES)
_FILE_NAMES = {
    "smpl": "SMPL_NEUTRAL.pkl, basicModel_neutral_lbs_10_207_0_v1.0.0.pkl, ...",
    "smplh": "SMPLH_MALE.pkl, SMPLH_FEMALE.pkl or AMASS's smplh/<gender>/model.npz",
    "smplx": "SMPLX_NEUTRAL.npz, SMPLX_MALE.npz or SMPLX_FEMALE.npz",
}


def label_of(body: str) -> str:
    """``SMPL``, ``SMPL-H`` or ``SMPL-X`` for the model type."""
    return body.upper().replace("SMPLH", "SMPL-H").replace("SMPLX", "SMPL-X")


def check_body_choice(body: str, model_path: str | Path | None, gender: str = "neutral") -> None:
    """Raise BadInput unless ``body`` / ``model_path`` / ``gender`` make a usable combination.

    Anny needs nothing. The SMPL family needs ``model_path``: an existing folder or file.
    """
    if body not in BODY_CHOICES:
        raise BadInput(f"unknown body model {body!r}: use one of {', '.join(BODY_CHOICES)}.")
    if gender not in GENDERS:
        raise BadInput(f"unknown gender {gender!r}: use one of {', '.join(GENDERS)}.")
    if body == "anny":
        return
    label = label_of(body)
    if model_path is None:
        raise BadInput(
            f"--body {body} needs your own {label} model files (licence-gated, not shipped): register and "
            f"download them from {DOWNLOAD_SITES[body]} ({_FILE_NAMES[body]}), then pass their folder with "
            "--model-path DIR. Without them, use --body anny (the default)."
        )
    if not Path(model_path).exists():
        raise BadInput(
            f"--model-path {model_path} does not exist. Pass the folder holding your {label} files "
            f"({_FILE_NAMES[body]}); download them from {DOWNLOAD_SITES[body]}."
        )


def open_smpl_body(body: str, model_path: str | Path | None, gender: str, device: torch.device) -> SmplxBody:
    """Load the user's SMPL / SMPL-H / SMPL-X file as a :class:`SmplxBody` on ``device``.

    Raises:
        BadInput: no folder given, no matching file in it, or a file that is not a usable model.
    """
    check_body_choice(body, model_path, gender)
    if body == "anny":
        raise ValueError("open_smpl_body is for the SMPL family; build AnnyBody for 'anny'")
    from backend.body.smplx_body import SmplxBody  # torch and smplx: imported only when needed

    assert model_path is not None
    model = SmplxBody(model_path, ModelFileConfig(model_type=body, gender=gender), device=str(device)).to(
        device
    )
    n_verts = int(model.model.v_template.shape[0])
    used = [model.kp_vertex_index] + ([model.hand_vert_idx] if model.has_hands else [])
    if max(int(ids.max()) for ids in used) >= n_verts:
        raise BadInput(
            f"{model.model_file} has {n_verts} vertices, fewer than the official {label_of(body)} mesh whose "
            f"keypoint vertices the fit uses: is it an official {label_of(body)} file? Download it from "
            f"{DOWNLOAD_SITES[body]}."
        )
    log.info(
        "body model %s (%s) from %s: %d betas, %d expression coefficients",
        body, gender, model.model_file, model.num_betas, model.num_expression,
    )  # fmt: skip
    return model


def build_body(body: str, model_path: str | Path | None, gender: str, device: torch.device) -> BodyModel:
    """Anny (``body == "anny"``, shipped) or the user's SMPL / SMPL-H / SMPL-X file, on ``device``."""
    if body == "anny":
        from backend.body.anny_body import AnnyBody  # Anny and warp: imported only when needed

        return AnnyBody(device=device)
    return open_smpl_body(body, model_path, gender, device)
