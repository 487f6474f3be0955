"""Find and load the user's SMPL, SMPL-H and SMPL-X model files without running pickled code.

The files are licence-gated, so users download them themselves:

- SMPL: https://smpl.is.tue.mpg.de (``SMPL_NEUTRAL.pkl``, ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``, ...)
- SMPL-H: https://mano.is.tue.mpg.de (``SMPLH_MALE.pkl`` merged with MANO, or AMASS's ``smplh/male/model.npz``)
- SMPL-X: https://smpl-x.is.tue.mpg.de (``SMPLX_NEUTRAL.npz`` / ``.pkl``)

SMPL ``.pkl`` files hold chumpy objects and chumpy 0.70 does not import on Python 3.11. They are
read by :class:`SafeUnpickler`, whose ``find_class`` maps every chumpy class onto the inert
:class:`ChumpyStandIn` (which only keeps its pickled state), allows the numpy and scipy.sparse
reconstruction globals, and refuses anything else. ``.npz`` files are read with
``allow_pickle=False``; object arrays (name tables some files carry) are skipped.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from backend.errors import BadInput

log = logging.getLogger(__name__)

MODEL_TYPES = ("smpl", "smplh", "smplx")
GENDERS = ("neutral", "male", "female")
DOWNLOAD_SITES = {
    "smpl": "https://smpl.is.tue.mpg.de",
    "smplh": "https://mano.is.tue.mpg.de",
    "smplx": "https://smpl-x.is.tue.mpg.de",
}
_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_HAND_KEYS = ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr")
_SMPLX_KEYS = ("lmk_faces_idx", "lmk_bary_coords")

# Globals a model pickle may name: numpy / scipy.sparse reconstruction only.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("copyreg", "_reconstructor"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        ("builtins", "object"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "object"),
        ("__builtin__", "set"),
    }
)
_SPARSE_CLASSES = ("csc_matrix", "csr_matrix", "coo_matrix")


class ChumpyStandIn:
    """Inert replacement for any chumpy class: it keeps the pickled state and does nothing else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"x": state}

    def value(self) -> np.ndarray:
        """The wrapped array (a leaf ``Ch`` pickles it as ``x``)."""
        for key in ("x", "_x"):
            if key in self.state:
                return to_numpy(self.state[key])
        raise ValueError(f"unsupported chumpy expression with fields {sorted(self.state)}")


class SafeUnpickler(pickle.Unpickler):
    """Unpickler for model files: chumpy -> :class:`ChumpyStandIn`, numpy/scipy allowed, rest refused."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStandIn
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return getattr(scipy.sparse, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def to_numpy(value: Any) -> Any:
    """Plain numpy from a stand-in, a sparse matrix (densified) or an array-like; others unchanged."""
    if isinstance(value, ChumpyStandIn):
        return value.value()
    if scipy.sparse.issparse(value):
        return np.asarray(value.todense())
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, int | float) for v in value):
        return np.asarray(value)
    return value


def _bad(path: Path, model_type: str, why: str) -> BadInput:
    site = DOWNLOAD_SITES.get(model_type, "https://smpl-x.is.tue.mpg.de")
    return BadInput(
        f"{why}: {path}. Download the model files from {site} and pass their folder with --model-path."
    )


def load_pickle_arrays(data: bytes) -> dict[str, Any]:
    """Unpickle a model dict safely (Python 2 pickles read as latin1); values converted by :func:`to_numpy`."""
    raw = SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ValueError(f"expected a dict, found {type(raw).__name__}")
    return {str(k): to_numpy(v) for k, v in raw.items()}


def load_npz_arrays(path: Path) -> dict[str, Any]:
    """Numeric arrays of an ``.npz`` (``allow_pickle=False``; object arrays are skipped)."""
    out: dict[str, Any] = {}
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            try:
                out[key] = npz[key]
            except ValueError:
                log.debug("skipping object array %s in %s", key, path)
    return out


def load_model_arrays(path: str | Path, model_type: str) -> dict[str, np.ndarray]:
    """Arrays of a model file (``.npz`` or ``.pkl``), checked for the keys ``model_type`` needs.

    Raises:
        BadInput: missing, unreadable, refused (unsafe pickle) or incomplete file.
    """
    path = Path(path)
    if not path.is_file():
        raise _bad(path, model_type, "model file not found")
    try:
        if path.suffix.lower() == ".npz":
            arrays = load_npz_arrays(path)
        elif path.suffix.lower() == ".pkl":
            arrays = load_pickle_arrays(path.read_bytes())
        else:
            raise ValueError("expected a .npz or .pkl file")
    except (
        pickle.UnpicklingError,
        ValueError,
        EOFError,
        OSError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:
        raise _bad(path, model_type, f"cannot read {model_type.upper()} model file ({exc})") from exc
    needed = _REQUIRED + (_HAND_KEYS if model_type in ("smplh", "smplx") else ())
    needed += _SMPLX_KEYS if model_type == "smplx" else ()
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise _bad(path, model_type, f"not a {model_type.upper()} model file (missing {', '.join(missing)})")
    arrays = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
    arrays["kintree_table"] = arrays["kintree_table"].astype(np.int64)
    arrays["f"] = arrays["f"].astype(np.int64)
    return arrays


def _candidate_names(model_type: str, gender: str) -> list[str]:
    g = gender.upper()
    short = {"neutral": "neutral", "male": "m", "female": "f"}[gender]
    if model_type == "smpl":
        return [
            f"SMPL_{g}.pkl", f"SMPL_{g}.npz",
            f"basicModel_{short}_lbs_10_207_0_v1.0.0.pkl", f"basicmodel_{short}_lbs_10_207_0_v1.1.0.pkl",
            f"basicModel_{gender}_lbs_10_207_0_v1.0.0.pkl", f"basicmodel_{gender}_lbs_10_207_0_v1.1.0.pkl",
        ]  # fmt: skip
    if model_type == "smplh":
        return [f"SMPLH_{g}.pkl", f"SMPLH_{g}.npz", f"{gender}/model.npz"]
    return [f"SMPLX_{g}.npz", f"SMPLX_{g}.pkl"]


def find_model_file(folder: str | Path, model_type: str, gender: str = "neutral") -> Path:
    """The model file for ``model_type`` and ``gender`` in ``folder`` (or its ``model_type`` subfolder).

    Names are matched case-insensitively. ``folder`` may also be the file itself.
    Raises:
        BadInput: unknown type/gender, or no file found (message lists where it looked).
    """
    if model_type not in MODEL_TYPES or gender not in GENDERS:
        raise BadInput(
            f"unknown body model {model_type!r}/{gender!r}; use one of {MODEL_TYPES} and {GENDERS}"
        )
    folder = Path(folder)
    if folder.is_file():
        return folder
    names = _candidate_names(model_type, gender)
    roots = [folder, folder / model_type, folder / model_type.upper(), folder / "models" / model_type]
    for root in roots:
        if not root.is_dir():
            continue
        files = {str(p.relative_to(root)).lower(): p for p in root.glob("*")} | {
            str(p.relative_to(root)).lower(): p for p in root.glob("*/model.npz")
        }
        for name in names:
            if name.lower() in files:
                return files[name.lower()]
    raise BadInput(
        f"no {model_type.upper()} {gender} model file in {folder} (looked for {', '.join(names)} in "
        f"{', '.join(str(r) for r in roots)}). Download it from {DOWNLOAD_SITES[model_type]} "
        "and pass its folder with --model-path."
    )


@dataclass(frozen=True)
class ModelFileConfig:
    """How to build a body model from the user's files."""

    model_type: str = "smplx"
    gender: str = "neutral"
    num_betas: int = 10
    num_expression_coeffs: int = 10
    vertex_ids: dict[str, int] | None = None
    """Keypoint vertex ids (smplx's names: nose, leye, LBigToe, lthumb, ...); None: smplx's own."""


def create_body_model(path: str | Path, config: ModelFileConfig) -> Any:
    """An ``smplx.SMPL`` / ``SMPLH`` / ``SMPLX`` module from a folder or file, hands as full axis-angle.

    Hands are unconstrained (no PCA) with a flat mean, so that zero hand pose is the flat T-pose hand;
    the file's mean (relaxed) hand is kept as the buffer ``relaxed_hand_mean`` (2, 15, 3) (left, right;
    zeros for SMPL) for the fit's hand prior.
    """
    import torch

    file = find_model_file(path, config.model_type, config.gender)
    arrays = load_model_arrays(file, config.model_type)
    model = _build_smplx_module(file, arrays, config)
    if config.model_type == "smpl":
        mean = np.zeros((2, 15, 3), np.float32)
    else:
        mean = np.stack([arrays["hands_meanl"], arrays["hands_meanr"]]).reshape(2, 15, 3)
    model.register_buffer("relaxed_hand_mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
    return model


def _build_smplx_module(file: Path, arrays: dict[str, np.ndarray], config: ModelFileConfig) -> Any:
    """The smplx module for checked ``arrays`` read from ``file``."""
    import smplx
    from smplx.utils import Struct

    extra: dict[str, Any] = {"vertex_ids": config.vertex_ids} if config.vertex_ids is not None else {}
    n_shape = arrays["shapedirs"].shape[-1]
    try:
        if config.model_type == "smpl":
            return smplx.SMPL(
                str(file.parent),
                data_struct=Struct(**arrays),
                num_betas=min(config.num_betas, n_shape),
                **extra,
            )
        if config.model_type == "smplh":
            return smplx.SMPLH(
                str(file.parent),
                data_struct=Struct(**arrays),
                num_betas=min(config.num_betas, n_shape),
                use_pca=False,
                flat_hand_mean=True,
                **extra,
            )
        # smplx.SMPLX reads its file itself: hand it a cleaned copy (no pickles, no chumpy).
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):  # smplx prints
            clean = Path(tmp) / "SMPLX_CLEAN.npz"
            np.savez(clean, **arrays)
            model = smplx.SMPLX(
                str(clean),
                ext="npz",
                num_betas=config.num_betas,
                num_expression_coeffs=config.num_expression_coeffs,
                use_pca=False,
                flat_hand_mean=True,
            )
        if config.vertex_ids is not None:  # smplx.SMPLX hard-codes its own ids
            from smplx.vertex_joint_selector import VertexJointSelector

            model.vertex_joint_selector = VertexJointSelector(vertex_ids=config.vertex_ids)
        return model
    except (ValueError, IndexError, KeyError, RuntimeError) as exc:
        raise _bad(
            file, config.model_type, f"malformed {config.model_type.upper()} model file ({exc})"
        ) from exc
