"""Loss terms: values on known cases and gradient checks (double precision)."""

from __future__ import annotations

import roma
import torch

from backend.fit import losses

torch.manual_seed(0)


def test_geman_mcclure_is_bounded_and_quadratic_near_zero() -> None:
    sq = torch.tensor([0.0, 1e-4, 1.0, 1e6], dtype=torch.float64)
    rho = losses.geman_mcclure(sq, sigma=2.0)
    assert rho[0] == 0
    assert torch.isclose(rho[1], sq[1], rtol=1e-3)
    assert rho[-1] < 4.0 and rho[-1] > 3.99


def test_reprojection_ignores_zero_confidence_and_is_differentiable() -> None:
    proj = torch.randn(4, 5, 2, dtype=torch.float64, requires_grad=True)
    obs = torch.randn(4, 5, 2, dtype=torch.float64)
    conf = torch.rand(4, 5, dtype=torch.float64)
    conf[0] = 0.0
    moved = obs.clone()
    moved[0] += 1000.0  # outliers where confidence is zero change nothing
    a = losses.reprojection(proj, obs, conf, 1.5, 1.0)
    b = losses.reprojection(proj, moved, conf, 1.5, 1.0)
    assert torch.isclose(a, b)
    assert torch.autograd.gradcheck(lambda p: losses.reprojection(p, obs, conf, 1.5, 1.0), (proj,))


def test_keypoints3d_gradient() -> None:
    fit = torch.randn(3, 6, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 6, 3, dtype=torch.float64)
    conf = torch.rand(3, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: losses.keypoints3d(x, target, conf, 0.3), (fit,))


def test_rotated_onto_finds_the_clip_rotation_and_never_a_mirror() -> None:
    lifted = torch.randn(5, 7, 3, dtype=torch.float64)
    conf = torch.rand(5, 7, dtype=torch.float64)
    rotation = roma.rotvec_to_rotmat(torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64))
    fitted = torch.einsum("ij,tkj->tki", rotation, lifted)
    assert torch.allclose(losses.rotated_onto(fitted, lifted, conf), fitted, atol=1e-9)
    # A mirror image is not a rotation: the lifted points keep their handedness.
    mirrored = fitted * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    turned = losses.rotated_onto(mirrored, lifted, conf)
    assert not torch.allclose(turned, mirrored, atol=1e-3)
    assert torch.allclose(torch.cdist(turned[0], turned[0]), torch.cdist(lifted[0], lifted[0]), atol=1e-9)
    # No weight at all: nothing to align on, the evidence comes back as it is.
    assert torch.equal(losses.rotated_onto(fitted, lifted, torch.zeros_like(conf)), lifted)


def test_smoothness_zero_for_constant_velocity_with_variable_frame_times() -> None:
    durations = torch.tensor([1.0, 2.0, 1.0, 0.5, 1.5], dtype=torch.float64)
    times = torch.cat([torch.zeros(1, dtype=torch.float64), durations.cumsum(0)])
    x = (3.0 * times)[:, None, None].expand(-1, 2, 3).clone()  # uniform motion in time
    assert losses.smoothness(x, durations) < 1e-20
    jitter = x + 0.01 * torch.randn_like(x)
    assert losses.smoothness(jitter, durations) > 1e-6
    assert torch.autograd.gradcheck(lambda y: losses.smoothness(y, durations), (jitter.requires_grad_(),))


def test_smoothness_handles_short_clips() -> None:
    x = torch.randn(2, 3, requires_grad=True)
    value = losses.smoothness(x, torch.ones(1))
    value.backward()
    assert value == 0 and x.grad is not None


def test_hinge_limits_penalise_only_the_forbidden_side() -> None:
    rotvec = torch.zeros(1, 3, 3, dtype=torch.float64)
    joint, axis, sign = torch.tensor([1]), torch.tensor([0]), torch.tensor([1.0], dtype=torch.float64)
    rotvec[0, 1, 0] = 0.5
    assert losses.hinge_limits(rotvec, joint, axis, sign) == 0
    rotvec[0, 1, 0] = -0.5
    assert torch.isclose(
        losses.hinge_limits(rotvec, joint, axis, sign), torch.tensor(0.25, dtype=torch.float64)
    )
    r = rotvec.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: losses.hinge_limits(v, joint, axis, sign), (r,))
