"""Fast keypoints for Anny: forward kinematics over the bones that move only.

In Anny's ``local-ref`` parameterisation a bone's posed frame is ``W_c = W_p K_c`` with
``K_c = K0_c [U_c^T D_c U_c | U_c^T d_c]``, where ``K0_c`` is the zero-pose step and ``U_c`` the
reference orientation. Bones whose delta stays the identity (fingers, twist bones, eyes, ...)
therefore move rigidly with their nearest moving ancestor ``a``: ``W_b = W_a W0_a^-1 W0_b`` (W0:
zero-pose frames). Skinning transforms are ``T_b = W_b P_b^-1`` (P: rest frames), and keypoints
are linear in them, so every keypoint is ``sum_a W_a G_a`` over the E moving bones (33 of 104),
with coefficients ``G`` folded once per shape. The chain is E bones deep-first, batched per level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _rigid_inverse(m: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid 4x4 transforms (..., 4, 4)."""
    r = m[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(m)
    out[..., :3, :3] = r
    out[..., :3, 3] = -(r @ m[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


@dataclass(frozen=True)
class ReducedChain:
    """Shape-independent structure of the moving bones."""

    active: torch.Tensor
    """(E,) bone indices that move, root first."""
    active_parent: torch.Tensor
    """(E,) position in ``active`` of each moving bone's nearest moving ancestor (root: 0)."""
    owner: torch.Tensor
    """(B,) position in ``active`` of each bone's nearest moving ancestor-or-self."""
    levels: tuple[torch.Tensor, ...]
    """Positions in ``active`` per depth level of the reduced tree (level 0 = root)."""

    @staticmethod
    def build(bone_parents: list[int], active: torch.Tensor) -> ReducedChain:
        act = [int(b) for b in active]
        pos = {b: i for i, b in enumerate(act)}
        assert act[0] == 0, "the root must move and come first"
        owner = []
        for b in range(len(bone_parents)):
            a = b
            while a not in pos:
                a = int(bone_parents[a])
            owner.append(pos[a])
        active_parent = [0] + [owner[int(bone_parents[b])] for b in act[1:]]
        depth = [0] * len(act)
        for i in range(1, len(act)):
            j, d = i, 0
            while j != 0:
                j, d = active_parent[j], d + 1
            depth[i] = d
        levels = tuple(
            torch.tensor([i for i in range(len(act)) if depth[i] == lvl]) for lvl in range(max(depth) + 1)
        )
        return ReducedChain(active.clone(), torch.tensor(active_parent), torch.tensor(owner), levels)


def fold_coefficients(
    chain: ReducedChain, zero_poses: torch.Tensor, rest_poses: torch.Tensor, kp_coeffs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-shape constants of the reduced chain.

    Args:
        zero_poses: (B, 4, 4) bone frames W0 at the zero pose.
        rest_poses: (B, 4, 4) rest frames P.
        kp_coeffs: (K, B, 4) keypoint coefficients on the skinning transforms.
    Returns:
        steps (E, 4, 4): ``W0_a^-1 W0_c`` from each moving bone's moving ancestor (root: I);
        folded (K, E, 4): keypoint coefficients on the moving bones' frames W.
    """
    w0_inv = _rigid_inverse(zero_poses)
    act = chain.active
    steps = w0_inv[act[chain.active_parent]] @ zero_poses[act]
    steps[0] = torch.eye(4, dtype=steps.dtype, device=steps.device)
    owner_bone = act[chain.owner]  # (B,)
    # T_b = W_a (W0_a^-1 W0_b P_b^-1): fold that constant into the coefficients.
    carry = w0_inv[owner_bone] @ zero_poses @ _rigid_inverse(rest_poses)  # (B, 4, 4)
    per_bone = torch.einsum("bij,kbj->kbi", carry, kp_coeffs)  # (K, B, 4)
    folded = torch.zeros(kp_coeffs.shape[0], len(act), 4, dtype=kp_coeffs.dtype, device=kp_coeffs.device)
    folded.index_add_(1, chain.owner.to(kp_coeffs.device), per_bone)
    return steps, folded


def chain_poses(chain: ReducedChain, local: torch.Tensor) -> torch.Tensor:
    """Posed frames W (T, E, 4, 4) from per-bone steps ``local`` (T, E, 4, 4), level by level."""
    frames = torch.zeros_like(local)
    root = chain.levels[0].to(local.device)
    frames = frames.index_copy(1, root, local[:, root])
    for level in chain.levels[1:]:
        level = level.to(local.device)
        parents = frames[:, chain.active_parent.to(local.device)[level]]
        frames = frames.index_copy(1, level, parents @ local[:, level])
    return frames


def homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) from rotations (..., 3, 3) and translations (..., 3), differentiably."""
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom = bottom.index_fill(-1, torch.tensor([3], device=top.device), 1.0)
    return torch.cat([top, bottom], dim=-2)
