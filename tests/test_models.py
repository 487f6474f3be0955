"""Temporal lifter (VideoPose3D architecture) and VPoser prior: shapes, causality, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from backend.body.vposer import (
    VPoser,
    VPoserConfig,
    kl_to_standard_normal,
    latent_norm_penalty,
    load_vposer,
    load_vposer_checkpoint,
    save_vposer,
)
from backend.errors import BadInput
from backend.io.checkpoints import TrainingMetadata
from backend.lift.checkpoints import (
    load_lifter,
    load_lifter_checkpoint,
    load_videopose_checkpoint,
    save_lifter_checkpoint,
)
from backend.lift.videopose import TemporalLifter, TemporalLifterConfig, TrajectoryModel, lift_sequence

WIDTHS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}


def small_config(rf: int = 27, causal: bool = False, joints_out: int = 17) -> TemporalLifterConfig:
    return TemporalLifterConfig(
        num_joints_in=17, num_joints_out=joints_out, filter_widths=WIDTHS[rf], causal=causal, channels=16
    )


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and batch-norm statistics (so that a lost buffer would show), eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(0.3 * torch.randn(t.shape, generator=g))
    return model.eval()


def official_videopose_keys(n_blocks: int) -> set[str]:
    """The key set of the official ``TemporalModel.state_dict()`` (common/model.py)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"expand_conv.weight", "shrink.weight", "shrink.bias"} | {f"expand_bn.{s}" for s in bn}
    for i in range(2 * n_blocks):
        keys |= {f"layers_conv.{i}.weight"} | {f"layers_bn.{i}.{s}" for s in bn}
    return keys


# ---------------------------------------------------------------------------------------------
# Temporal lifter


@pytest.mark.parametrize("rf", [27, 81, 243])
def test_lifter_shapes(rf: int) -> None:
    cfg = small_config(rf)
    model = TemporalLifter(cfg).eval()
    assert model.receptive_field() == rf == cfg.receptive_field
    out = model(torch.randn(2, rf + 4, 17, 2))
    assert out.shape == (2, 5, 17, 3)
    traj = TrajectoryModel.for_lifter(cfg).eval()
    assert traj(torch.randn(1, rf, 17, 2)).shape == (1, 1, 1, 3)
    assert set(model.state_dict()) == official_videopose_keys(len(WIDTHS[rf]) - 1)
    assert model.expand_conv.weight.shape == (16, 34, 3)
    assert model.layers_conv[2 * (len(WIDTHS[rf]) - 2)].dilation == (rf // 3,)


def test_lifter_rejects_bad_input() -> None:
    model = TemporalLifter(small_config())
    with pytest.raises(ValueError, match="at least 27"):
        model(torch.randn(1, 10, 17, 2))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 27, 17, 3))
    with pytest.raises(ValueError, match="odd"):
        TemporalLifterConfig(num_joints_in=17, num_joints_out=17, filter_widths=(3, 2))


@pytest.mark.parametrize("causal", [True, False])
def test_causality(causal: bool) -> None:
    torch.manual_seed(0)
    model = randomise(TemporalLifter(small_config(27, causal=causal)))
    x = torch.randn(1, 40, 17, 2)
    base = model(x)  # (1, 14, 17, 3); output i belongs to frame i + shift
    shift = model.output_shift()
    assert shift == (26 if causal else 13)
    i = 5
    t = i + shift
    y = x.clone()
    y[:, t + 1 :] += 5.0 * torch.randn_like(y[:, t + 1 :])
    pert = model(y)
    unchanged = torch.allclose(pert[:, : i + 1], base[:, : i + 1], atol=1e-6)
    assert unchanged == causal
    assert not torch.allclose(pert[:, i + 1], base[:, i + 1])
    if causal:  # ... and the frame itself still matters
        z = x.clone()
        z[:, t] += 5.0
        assert not torch.allclose(model(z)[:, i], base[:, i])


@pytest.mark.parametrize("causal", [False, True])
def test_lift_sequence(causal: bool) -> None:
    torch.manual_seed(1)
    model = randomise(TemporalLifter(small_config(27, causal=causal)))
    model.train()
    seq = np.random.default_rng(0).normal(size=(100, 17, 2)).astype(np.float32)
    out = lift_sequence(model, seq, chunk_size=1000)
    assert isinstance(out, np.ndarray) and out.shape == (100, 17, 3) and out.dtype == np.float32
    assert model.training  # mode restored
    # Chunked batches give the same result as one pass.
    chunked = lift_sequence(model, seq, chunk_size=7, max_batch=3)
    np.testing.assert_allclose(chunked, out, atol=1e-5)
    # Edge padding: frame t's window replicates the first / last frame.
    before = 26 if causal else 13
    x = torch.from_numpy(seq)
    padded = torch.cat([x[:1].repeat(before, 1, 1), x, x[-1:].repeat(26 - before, 1, 1)])
    with torch.no_grad():
        direct = model.eval()(padded[None])[0].numpy()
    np.testing.assert_allclose(out, direct, atol=1e-5)
    # Shorter than the receptive field, tensors in -> tensors out, trajectory model.
    short = lift_sequence(model, torch.from_numpy(seq[:5]))
    assert isinstance(short, torch.Tensor) and short.shape == (5, 17, 3)
    traj = TrajectoryModel.for_lifter(model.config)
    assert lift_sequence(traj, seq[:30]).shape == (30, 1, 3)


# ---------------------------------------------------------------------------------------------
# Lifter checkpoints


@pytest.mark.parametrize("zipfile", [True, False])
def test_official_videopose_checkpoint(tmp_path: Path, zipfile: bool) -> None:
    cfg = small_config(81, causal=True)
    pos = randomise(TemporalLifter(cfg), seed=1)
    traj = randomise(TrajectoryModel.for_lifter(cfg), seed=2)
    # The dict official run.py writes; the numpy random state is not a weights_only type.
    path = tmp_path / "epoch_80.bin"
    torch.save(
        {
            "epoch": 80,
            "lr": 1e-5,
            "random_state": np.random.RandomState(3).get_state(),
            "optimizer": None,
            "model_pos": {k: v.clone() for k, v in pos.state_dict().items()},
            "model_traj": {k: v.clone() for k, v in traj.state_dict().items()},
            "random_state_semi": None,
        },
        path,
        _use_new_zipfile_serialization=zipfile,
    )
    lifter, traj2, info = load_videopose_checkpoint(path, causal=True)
    assert info.epoch == 80 and info.lr == pytest.approx(1e-5) and info.source == "videopose3d"
    assert info.config == cfg
    assert traj2 is not None and not lifter.training
    x = torch.randn(2, 90, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(lifter(x), pos(x))
        torch.testing.assert_close(traj2(x), traj(x))
    assert load_lifter(path, causal=True)[2].source == "videopose3d"


def test_official_checkpoint_without_trajectory(tmp_path: Path) -> None:
    pos = TemporalLifter(small_config(27))
    torch.save(
        {"epoch": 1, "lr": 0.001, "model_pos": pos.state_dict(), "model_traj": None}, tmp_path / "c.bin"
    )
    lifter, traj, info = load_videopose_checkpoint(tmp_path / "c.bin")
    assert traj is None and info.config.receptive_field == 27 and info.config.num_joints_out == 17


def _touch(path: str) -> None:
    Path(path).touch()


class _Payload:
    """Pickles as a call of ``_touch``: loading must not perform it."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (_touch, (self.target,))


def test_bad_lifter_files(tmp_path: Path) -> None:
    good = tmp_path / "good.bin"
    pos = TemporalLifter(small_config(27))
    torch.save({"model_pos": pos.state_dict()}, good)
    cases = {
        "noise.bin": np.random.default_rng(0).bytes(4096),
        "truncated.bin": good.read_bytes()[: good.stat().st_size // 2],
        "empty.bin": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"weights": pos.state_dict()}, tmp_path / "nopos.bin")
    broken = pos.state_dict()
    broken["shrink.weight"] = torch.zeros(7, 16, 1)
    torch.save({"model_pos": broken}, tmp_path / "shapes.bin")
    missing = dict(pos.state_dict())
    del missing["layers_bn.1.running_var"]
    torch.save({"model_pos": missing}, tmp_path / "missing.bin")
    for name in [*cases, "nopos.bin", "shapes.bin", "missing.bin", "absent.bin"]:
        with pytest.raises(BadInput, match=name.replace(".", r"\.")):
            load_videopose_checkpoint(tmp_path / name)
    with pytest.raises(BadInput, match="expected a VideoPose3D checkpoint"):
        load_videopose_checkpoint(tmp_path / "noise.bin")
    # A pickled call is neutralised, not run.
    target = tmp_path / "pwned"
    torch.save({"model_pos": pos.state_dict(), "extra": _Payload(target)}, tmp_path / "payload.bin")
    load_videopose_checkpoint(tmp_path / "payload.bin")
    assert not target.exists()


def test_own_lifter_checkpoint_round_trip(tmp_path: Path) -> None:
    cfg = TemporalLifterConfig(
        num_joints_in=23, num_joints_out=23, in_features=3, filter_widths=(3, 3), channels=8
    )
    pos = randomise(TemporalLifter(cfg), seed=4)
    traj = randomise(TrajectoryModel.for_lifter(cfg), seed=5)
    meta = TrainingMetadata(seed=7, train_config={"epochs": 3, "lr": 0.001}, data_hash="abc123", epoch=3)
    path = save_lifter_checkpoint(tmp_path / "lifter.pt", pos, traj, meta)
    assert not list(tmp_path.glob(".*part"))
    lifter, traj2, info = load_lifter_checkpoint(path)
    assert info.config == cfg and info.training == meta and info.source == "video2anim.lifter"
    assert load_lifter(path)[2].training == meta
    x = torch.randn(1, 12, 23, 3)
    with torch.no_grad():
        torch.testing.assert_close(lifter(x), pos(x))
        torch.testing.assert_close(traj2(x), traj(x))
    torch.save({"format": "video2anim.lifter", "version": 99}, tmp_path / "future.pt")
    with pytest.raises(BadInput, match="version 99"):
        load_lifter_checkpoint(tmp_path / "future.pt")
    torch.save({"model_pos": {}}, tmp_path / "official.pt")
    with pytest.raises(BadInput, match=r"official\.pt is not a 'video2anim\.lifter' checkpoint"):
        load_lifter_checkpoint(tmp_path / "official.pt")


# ---------------------------------------------------------------------------------------------
# VPoser


def reference_6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """The official convention, written from its description: (N, 6) viewed as (N, 3, 2) columns,
    Gram-Schmidt on the columns, third column their cross product."""
    m = x.reshape(-1, 3, 2)
    a, b = m[:, :, 0], m[:, :, 1]
    c1 = a / a.norm(dim=1, keepdim=True)
    b = b - (c1 * b).sum(1, keepdim=True) * c1
    c2 = b / b.norm(dim=1, keepdim=True)
    return torch.stack([c1, c2, torch.linalg.cross(c1, c2)], dim=-1)


def test_vposer_shapes_and_rotations() -> None:
    torch.manual_seed(0)
    vp = VPoser().eval()
    q = vp.encode(torch.randn(4, 63) * 0.3)
    assert isinstance(q, torch.distributions.Normal) and q.mean.shape == (4, 32) and (q.scale > 0).all()
    out = vp.decode(torch.randn(4, 32))
    rot = out["pose_body_matrot"]
    assert out["pose_body"].shape == (4, 63) and rot.shape == (4, 21, 3, 3)
    eye = torch.eye(3).expand(4, 21, 3, 3)
    torch.testing.assert_close(rot.transpose(-1, -2) @ rot, eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(4, 21), atol=1e-5, rtol=0)
    # Same 6D convention as the official decoder, and axis-angle consistent with the matrices.
    z = torch.randn(3, 32)
    six_d = vp.decoder_net(z).reshape(-1, 6)
    torch.testing.assert_close(
        vp.decode(z)["pose_body_matrot"].reshape(-1, 3, 3), reference_6d_to_rotmat(six_d)
    )
    aa = vp.decode(z)["pose_body"].reshape(-1, 3)
    angle = aa.norm(dim=-1)
    cos = (vp.decode(z)["pose_body_matrot"].reshape(-1, 3, 3).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    torch.testing.assert_close(torch.cos(angle), cos, atol=1e-5, rtol=0)
    # Training pass and losses.
    train = VPoser().train()(torch.randn(8, 21, 3) * 0.3)
    assert {"q_z", "z", "mean", "std", "pose_body", "pose_body_matrot"} <= train.keys()
    assert kl_to_standard_normal(train["q_z"]).ndim == 0 and kl_to_standard_normal(train["q_z"]) >= 0
    assert latent_norm_penalty(torch.full((5, 32), 0.5)).item() == pytest.approx(32 * 0.25)
    assert vp.sample(2, torch.Generator().manual_seed(0))["pose_body"].shape == (2, 63)


def official_vposer_keys() -> set[str]:
    """The key set of the official ``VPoser`` (human_body_prior/models/vposer_model.py)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {f"encoder_net.{i}.{s}" for i in (1, 4) for s in bn}
    keys |= {f"encoder_net.{i}.{s}" for i in (2, 6, 7) for s in ("weight", "bias")}
    keys |= {f"encoder_net.8.{h}.{s}" for h in ("mu", "logvar") for s in ("weight", "bias")}
    return keys | {f"decoder_net.{i}.{s}" for i in (0, 3, 5) for s in ("weight", "bias")}


class _ForeignHparams:
    """Stands for Lightning / OmegaConf objects in a real checkpoint: not a weights_only type."""

    def __init__(self) -> None:
        self.model_params = {"latentD": 32, "num_neurons": 512}


def test_official_vposer_checkpoint(tmp_path: Path) -> None:
    cfg = VPoserConfig(hidden=64)
    vp = randomise(VPoser(cfg), seed=6)
    assert set(vp.state_dict()) == official_vposer_keys()
    snapshots = tmp_path / "V02_05" / "snapshots"
    snapshots.mkdir(parents=True)
    for epoch, model in ((13, vp), (8, randomise(VPoser(cfg), seed=7))):
        state = {f"vp_model.{k}": v.clone() for k, v in model.state_dict().items()}
        state["bm_train.init_v_template"] = torch.zeros(10, 3)  # the training module's body model buffers
        ckpt = {
            "epoch": epoch,
            "global_step": 1000 * epoch,
            "pytorch-lightning_version": "1.1.0",
            "state_dict": state,
            "hyper_parameters": _ForeignHparams(),
            "optimizer_states": [],
        }
        torch.save(ckpt, snapshots / f"V02_05_epoch={epoch:02d}_val_loss=0.03.ckpt")
    z = torch.randn(5, 32)
    with torch.no_grad():
        expected = vp.decode(z)
    for source in (tmp_path / "V02_05", snapshots, snapshots / "V02_05_epoch=13_val_loss=0.03.ckpt"):
        loaded = load_vposer(source)
        assert loaded.config == cfg and not loaded.training
        assert not any(p.requires_grad for p in loaded.parameters())
        got = loaded.decode(z)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key])
        x = torch.randn(3, 63)
        torch.testing.assert_close(loaded.encode(x).mean, vp.encode(x).mean)


def test_bad_vposer_files(tmp_path: Path) -> None:
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    torch.save(
        {"state_dict": {"vp_model.encoder_net.2.weight": torch.zeros(8, 63)}}, tmp_path / "partial.ckpt"
    )
    torch.save({"model_pos": TemporalLifter(small_config()).state_dict()}, tmp_path / "lifter.ckpt")
    (tmp_path / "empty_dir").mkdir()
    for name in ("junk.ckpt", "partial.ckpt", "lifter.ckpt", "empty_dir", "missing.ckpt"):
        with pytest.raises(BadInput, match=name.replace(".", r"\.")):
            load_vposer(tmp_path / name)


def test_own_vposer_round_trip(tmp_path: Path) -> None:
    cfg = VPoserConfig(latent_dim=16, hidden=32)
    vp = randomise(VPoser(cfg), seed=8)
    meta = TrainingMetadata(seed=1, train_config={"kl_weight": 0.005}, data_hash="d4t4", epoch=10)
    path = save_vposer(tmp_path / "prior.pt", vp, meta)
    loaded, training = load_vposer_checkpoint(path)
    assert loaded.config == cfg and training == meta
    z = torch.randn(4, 16)
    torch.testing.assert_close(loaded.decode(z)["pose_body"], vp.decode(z)["pose_body"])
    assert math.isfinite(float(latent_norm_penalty(loaded.encode(torch.zeros(2, 63)).mean)))
