"""SMPL / SMPL-H / SMPL-X loading (real file formats, tiny synthetic models) and the adapter."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import roma
import scipy.sparse
import torch

from backend.body.model import CanonicalPose
from backend.body.smpl_files import ModelFileConfig, find_model_file, load_model_arrays
from backend.body.smplx_body import MEDIAPIPE_FACE_FOR_LANDMARKS, MEDIAPIPE_HAND_SOURCES, SmplxBody
from backend.errors import BadInput
from backend.geometry.skeleton import BODY_PARENTS, KEYPOINT_NAMES

N_VERTS = 80
VERTEX_IDS = {
    name: i
    for i, name in enumerate(
        "nose reye leye rear lear rthumb rindex rmiddle rring rpinky lthumb lindex lmiddle lring lpinky "
        "LBigToe LSmallToe LHeel RBigToe RSmallToe RHeel".split()
    )
}


def _hand_parents(wrist: int, start: int) -> list[int]:
    return [wrist if k % 3 == 0 else start + k - 1 for k in range(15)]


def _parents(kind: str) -> list[int]:
    body = list(BODY_PARENTS)
    if kind == "smpl":
        return body + [20, 21]
    if kind == "smplh":
        return body + _hand_parents(20, 22) + _hand_parents(21, 37)
    return body + [15, 15, 15] + _hand_parents(20, 25) + _hand_parents(21, 40)


def make_model(kind: str, seed: int = 0, sparse_regressor: bool = False) -> dict:
    """Random small model with the real key names, shapes and dtypes."""
    rng = np.random.default_rng(seed)
    parents = _parents(kind)
    n_j = len(parents)
    n_shape = 20 if kind == "smplx" else 10
    regressor = rng.random((n_j, N_VERTS))
    regressor /= regressor.sum(1, keepdims=True)
    weights = rng.random((N_VERTS, n_j)) ** 4
    weights /= weights.sum(1, keepdims=True)
    table = np.stack([np.array(parents, dtype=np.int64), np.arange(n_j)])
    table[0, 0] = 4294967295  # as in the real files (uint32 -1)
    model = {
        "v_template": rng.normal(size=(N_VERTS, 3)),
        "shapedirs": rng.normal(scale=0.01, size=(N_VERTS, 3, n_shape)),
        "posedirs": rng.normal(scale=0.01, size=(N_VERTS, 3, (n_j - 1) * 9)),
        "J_regressor": scipy.sparse.csc_matrix(regressor) if sparse_regressor else regressor,
        "weights": weights,
        "kintree_table": table,
        "f": rng.integers(0, N_VERTS, size=(120, 3)).astype(np.uint32),
    }
    if kind != "smpl":
        for side in "lr":
            model[f"hands_components{side}"] = rng.normal(size=(45, 45))
            model[f"hands_mean{side}"] = rng.normal(scale=0.1, size=45)
    if kind == "smplx":
        model["lmk_faces_idx"] = rng.integers(0, 120, size=51)
        model["lmk_bary_coords"] = rng.dirichlet(np.ones(3), size=51)
    return model


def write_chumpy_pkl(path: Path, model: dict) -> None:
    """Pickle like the official files: arrays wrapped in chumpy ``Ch`` objects (fake chumpy module)."""
    fake = types.ModuleType("chumpy")
    fake_ch = types.ModuleType("chumpy.ch")

    class Ch:  # pickles as chumpy.ch.Ch with its value in the state dict, as chumpy does
        def __init__(self, x: np.ndarray) -> None:
            self.x = x
            self._dirty_vars: set = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake_ch.Ch = Ch
    fake.ch = fake_ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": fake, "chumpy.ch": fake_ch})
    try:
        wrapped = {
            k: Ch(v) if k in ("v_template", "shapedirs", "posedirs", "weights") else v
            for k, v in model.items()
        }
        path.write_bytes(pickle.dumps(wrapped, protocol=2))
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_npz(path: Path, model: dict) -> None:
    extra = {"part2num": np.array([{"head": 1}], dtype=object)}  # object array, as real SMPL-X files have
    np.savez(
        path,
        **{k: np.asarray(v.todense()) if scipy.sparse.issparse(v) else v for k, v in model.items()},
        **extra,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_chumpy_pkl(root / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl", make_model("smpl", 0, True))
    write_npz(root / "SMPL_MALE.npz", make_model("smpl", 1))
    write_chumpy_pkl(root / "SMPLH_MALE.pkl", make_model("smplh", 2, True))
    write_npz(root / "SMPLH_FEMALE.npz", make_model("smplh", 3))
    write_npz(root / "SMPLX_NEUTRAL.npz", make_model("smplx", 4))
    write_chumpy_pkl(root / "SMPLX_MALE.pkl", make_model("smplx", 5, True))
    return root


CASES = [
    ("smpl", "neutral"),
    ("smpl", "male"),
    ("smplh", "male"),
    ("smplh", "female"),
    ("smplx", "neutral"),
    ("smplx", "male"),
]


def _body(model_dir: Path, kind: str, gender: str) -> SmplxBody:
    return SmplxBody(model_dir, ModelFileConfig(model_type=kind, gender=gender, vertex_ids=VERTEX_IDS))


def test_find_and_load_formats(model_dir: Path) -> None:
    assert find_model_file(model_dir, "smpl", "neutral").suffix == ".pkl"
    arrays = load_model_arrays(find_model_file(model_dir, "smpl", "neutral"), "smpl")
    assert isinstance(arrays["J_regressor"], np.ndarray) and arrays["J_regressor"].shape == (24, N_VERTS)
    np.testing.assert_allclose(arrays["v_template"], make_model("smpl", 0)["v_template"])
    assert "part2num" not in load_model_arrays(model_dir / "SMPLX_NEUTRAL.npz", "smplx")
    with pytest.raises(BadInput, match="smpl-x.is.tue.mpg.de"):
        find_model_file(model_dir, "smplx", "female")
    with pytest.raises(BadInput, match="missing"):
        load_model_arrays(model_dir / "SMPL_MALE.npz", "smplx")


def test_malicious_pickle_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: D105
            return (os.system, ("echo pwned > " + str(tmp_path / "owned"),))

    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(BadInput, match="refusing"):
        load_model_arrays(bad, "smpl")
    assert not (tmp_path / "owned").exists()


def _random_canonical(t: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    rv = lambda *s: roma.rotvec_to_rotmat(0.4 * torch.randn(*s, 3, generator=gen))  # noqa: E731
    return {
        "global_orient": rv(t),
        "body_pose": rv(t, 21),
        "left_hand": rv(t, 15),
        "right_hand": rv(t, 15),
        "jaw": rv(t),
    }


@pytest.mark.parametrize(("kind", "gender"), CASES)
def test_forward_matches_smplx_and_round_trip(model_dir: Path, kind: str, gender: str) -> None:
    body = _body(model_dir, kind, gender)
    gen = torch.Generator().manual_seed(0)
    rest = body.rest_state(0.5 * torch.randn(body.num_betas, generator=gen))
    can = _random_canonical(3, gen)
    transl = torch.randn(3, 3, generator=gen)
    extra = {k: can[k] for k in ("left_hand", "right_hand", "jaw")}
    deltas = body.native_deltas(CanonicalPose(can["global_orient"], can["body_pose"], transl, **extra))
    assert deltas.shape == (3, body.n_joints, 4, 4)
    transforms = body.bone_transforms(deltas, rest)
    verts = body.vertices(transforms, rest)
    kp = body.keypoints(transforms, rest)
    assert verts.shape == (3, N_VERTS, 3) and kp.shape == (3, len(KEYPOINT_NAMES), 3)
    torch.testing.assert_close(body.joints(transforms, rest)[:, 0], transl)  # pelvis lands on transl
    torch.testing.assert_close(
        body.keypoints_fast(CanonicalPose(can["global_orient"], can["body_pose"], transl), rest).shape, kp.shape
    )
    # same vertices as smplx's own forward pass
    rot = deltas[:, :, :3, :3]
    aa = roma.rotmat_to_rotvec(rot)
    kwargs = {
        "betas": rest.betas[None].expand(3, -1),
        "global_orient": aa[:, 0],
        "body_pose": aa[:, 1:22].flatten(1),
    }
    kwargs["transl"] = transl - rest.rest_joints[0, 0]
    if kind == "smpl":
        kwargs["body_pose"] = aa[:, 1:24].flatten(1)
    else:
        start = 22 if kind == "smplh" else 25
        kwargs["left_hand_pose"], kwargs["right_hand_pose"] = (
            aa[:, start : start + 15].flatten(1),
            aa[:, start + 15 :].flatten(1),
        )
    if kind == "smplx":
        kwargs.update(
            jaw_pose=aa[:, 22], leye_pose=aa[:, 23], reye_pose=aa[:, 24], expression=torch.zeros(3, 10)
        )
    ref = body.model(**kwargs)
    torch.testing.assert_close(verts, ref.vertices, atol=1e-4, rtol=1e-4)
    # canonical round trip
    back = body.canonical_from_native(rot)
    torch.testing.assert_close(back["global_orient"], can["global_orient"])
    torch.testing.assert_close(back["body_pose"], can["body_pose"])
    if kind == "smpl":  # hand roots survive SMPL -> canonical -> SMPL
        again = body.native_rotations(
            back["global_orient"], back["body_pose"], back["left_hand"], back["right_hand"]
        )
        torch.testing.assert_close(again, rot, atol=1e-5, rtol=1e-5)
    else:
        torch.testing.assert_close(back["left_hand"], can["left_hand"])
        torch.testing.assert_close(back["right_hand"], can["right_hand"])
    if kind == "smplx":
        torch.testing.assert_close(back["jaw"], can["jaw"])


@pytest.mark.parametrize("kind", ["smplh", "smplx"])
def test_hand_and_face_keypoints(model_dir: Path, kind: str) -> None:
    body = _body(model_dir, kind, "male")
    rest = body.rest_state(torch.zeros(body.num_betas))
    gen = torch.Generator().manual_seed(1)
    can = _random_canonical(2, gen)
    transforms = body.bone_transforms(
        body.native_deltas(CanonicalPose(can["global_orient"], can["body_pose"], torch.zeros(2, 3))), rest
    )
    hands = body.hand_keypoints(transforms, rest)
    assert hands.shape == (2, 2, 21, 3)
    joints = body.joints(transforms, rest)
    torch.testing.assert_close(hands[:, 0, 0], joints[:, 20])
    torch.testing.assert_close(hands[:, 1, 0], joints[:, 21])
    lo, hi = (22, 51) if kind == "smplh" else (25, 54)
    fingers = body.hand_joint_idx[(body.hand_joint_idx != 20) & (body.hand_joint_idx != 21)]
    assert int(fingers.min()) == lo and int(fingers.max()) == hi and len(fingers) == 30
    assert len(MEDIAPIPE_HAND_SOURCES) == 21 and sorted(
        s for s in MEDIAPIPE_HAND_SOURCES if isinstance(s, int)
    ) == list(range(15))
    if kind == "smplx":
        face = body.face_keypoints(transforms, rest)
        assert face.shape == (2, 51, 3) and len(MEDIAPIPE_FACE_FOR_LANDMARKS) == 51
        assert max(MEDIAPIPE_FACE_FOR_LANDMARKS) < 468 and len(set(MEDIAPIPE_FACE_FOR_LANDMARKS)) == 51
    else:
        with pytest.raises(ValueError):
            body.face_keypoints(transforms, rest)
