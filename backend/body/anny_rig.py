"""Everything Blender needs to build a fitted Anny body without torch: the rig file.

``anny_rig_arrays(body, phenotypes)`` gives, for one fitted shape (``body.model.export_rig`` writes
them to an ``.npz`` file; the pipeline stores them in the motion file), in Anny's model frame (= the design's world frame: Z up, facing -Y; metres):

- ``meta`` JSON string: format name and version, body model hash, units and conventions;
- ``bone_labels (B,)``, ``bone_parents (B,)`` (root: -1);
- ``rest_poses (B, 4, 4)``: rest frames ``P_c = [R_c | h_c]``; a bone's y axis is its Blender
  head-to-tail direction, so ``R_c`` also fixes the roll; ``bone_lengths (B,)`` for display;
- ``reference_orientations (B, 3, 3)``: ``U_c`` of Anny's ``local-ref`` parameterisation, with
  which ``anny_pose`` (per-bone delta rotations ``D_c``, axis-angle) becomes pose-bone rotations
  (see ``blender_addon/rig_math.py``);
- ``rest_vertices (V, 3)``, ``faces (F, 3)``, ``uv (N, 2)`` + ``face_uv (F, 3)``;
- ``skin_indices (V, 9)`` and ``skin_weights (V, 9)``: linear blend skinning, sparse;
- ``phenotype_labels (P,)``, ``phenotypes (P,)`` (the fitted values) and
  ``phenotype_targets (P, 2, V, 3)``: rest vertices with phenotype ``i`` at 0 and at 1, the
  others at their fitted values (targets for shape keys);
- ``keypoint_names (K,)``, ``keypoint_vertices (K, N)`` and ``keypoint_weights (K, N)``: Anny's
  COCO+feet keypoint regressor as sparse vertex weights (padded with weight 0).

"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from backend.geometry.skeleton import KEYPOINT_NAMES
from backend.io.motion_schema import RIG_FORMAT, RIG_VERSION

if TYPE_CHECKING:
    from backend.body.anny_body import AnnyBody

log = logging.getLogger(__name__)

_DEFAULT_LENGTH = 0.1
"""Display length (m) of bones whose children do not give one (root, leaves)."""


def bone_lengths(rest_poses: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Display lengths (B,) of Blender bones: the farthest child head, else a default.

    Args:
        rest_poses: (B, 4, 4) rest frames.
        parents: (B,) parent indices, root -1, parents before children.
    """
    heads = rest_poses[:, :3, 3]
    lengths = np.zeros(len(parents))
    for c in range(1, len(parents)):
        p = int(parents[c])
        lengths[p] = max(lengths[p], float(np.linalg.norm(heads[c] - heads[p])))
    for c in range(len(parents)):
        if lengths[c] < 0.01:
            p = int(parents[c])
            lengths[c] = _DEFAULT_LENGTH if p < 0 else float(np.clip(0.6 * lengths[p], 0.01, 0.15))
    return lengths


def _sparse_rows(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense rows (K, V) -> padded column indices and values (K, N), N = most non-zeros in a row."""
    nonzero = [np.flatnonzero(row) for row in dense]
    width = max(len(n) for n in nonzero)
    index = np.zeros((len(dense), width), np.int32)
    value = np.zeros((len(dense), width), np.float32)
    for k, cols in enumerate(nonzero):
        index[k, : len(cols)] = cols
        value[k, : len(cols)] = dense[k, cols]
    return index, value


@torch.no_grad()
def _rest_vertices(body: AnnyBody, phenotypes: torch.Tensor) -> torch.Tensor:
    """Rest vertices (N, V, 3) for a batch of phenotype vectors (N, P)."""
    m = body.model
    n = phenotypes.shape[0]
    empty_local = torch.zeros(n, len(m.local_change_labels), device=phenotypes.device)
    empty_face = torch.zeros(n, len(m.facial_action_labels), device=phenotypes.device)
    coeffs = m._get_phenotype_blendshape_coefficients(phenotypes, empty_local, empty_face)
    return m.get_rest_vertices(coeffs)


@torch.no_grad()
def anny_rig_arrays(body: AnnyBody, phenotypes: np.ndarray) -> dict[str, np.ndarray]:
    """The rig arrays (see the module docstring) for phenotypes (P,) in [0, 1]."""
    m = body.model
    device = body.kp_weights.device
    pheno = torch.as_tensor(np.asarray(phenotypes, np.float32), device=device)
    n_pheno = pheno.shape[0]
    if n_pheno != len(body.phenotype_labels):
        raise ValueError(f"expected {len(body.phenotype_labels)} phenotypes, got {n_pheno}")
    rest = body.rest_state(pheno)
    # Phenotype i at 0 and at 1, the others fitted: (P, 2, P) -> (P * 2, V, 3).
    extremes = pheno.repeat(n_pheno, 2, 1)
    idx = torch.arange(n_pheno, device=device)
    extremes[idx, 0, idx] = 0.0
    extremes[idx, 1, idx] = 1.0
    targets = _rest_vertices(body, extremes.reshape(-1, n_pheno)).reshape(n_pheno, 2, -1, 3)
    rest_poses = rest.rest_bone_poses[0].double().cpu().numpy()
    parents = np.array([int(p) for p in m.bone_parents], np.int32)
    parents[0] = -1
    kp_index, kp_weight = _sparse_rows(body.kp_weights.cpu().numpy())
    meta = {
        "format": RIG_FORMAT,
        "version": RIG_VERSION,
        "body_model": "anny",
        "source_hash": body.source_hash(),
        "pose_parameterization": "local-ref",
        "frame": "Anny model frame = world frame: Z up, subject facing -Y, metres",
    }
    return {
        "meta": np.array(json.dumps(meta)),
        "bone_labels": np.array(body.bone_labels),
        "bone_parents": parents,
        "rest_poses": rest_poses,
        "bone_lengths": bone_lengths(rest_poses, parents),
        "reference_orientations": m.reference_bone_orientations.double().cpu().numpy(),
        "rest_vertices": rest.rest_vertices[0].cpu().numpy().astype(np.float32),
        "faces": body.faces.cpu().numpy().astype(np.int32),
        "uv": m.texture_coordinates.cpu().numpy().astype(np.float32),
        "face_uv": m.face_texture_coordinate_indices.cpu().numpy().astype(np.int32),
        "skin_indices": m.vertex_bone_indices.cpu().numpy().astype(np.int16),
        "skin_weights": m.vertex_bone_weights.cpu().numpy().astype(np.float32),
        "phenotype_labels": np.array(body.phenotype_labels),
        "phenotypes": pheno.cpu().numpy(),
        "phenotype_targets": targets.cpu().numpy().astype(np.float32),
        "keypoint_names": np.array(KEYPOINT_NAMES),
        "keypoint_vertices": kp_index,
        "keypoint_weights": kp_weight,
    }
