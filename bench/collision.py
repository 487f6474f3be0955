"""The self-collision bench (``python -m backend bench collision``, issue 5): the fit with its
collision term off and on, on the accuracy bench's rendered clips.

Each case is detected (cached) and lifted once, then fitted on Anny with the term off and on (one
fit per weight). On the evaluated frames (ground truth in view, detection valid) the fitted mesh is
measured, and the ground truth's mesh the same way (``truth``: mocap on Anny touches itself too):

- **pose-caused colliding triangle pairs** (``collision_mesh``) less those intersecting at rest
  (eyes, teeth, tongue: ~1,100 pairs, at the canonical and at Anny's own zero pose of the shape),
  counted between body parts that are not adjacent (``mesh_parts``: 17 parts from the keypoint
  segments, SMPLify-X's part filter), so folds at a joint and armpits do not count. A frame
  self-intersects with more than `MIN_PAIRS` pairs (a limb inside another part crosses dozens).
- **penetration depth** (`intrusion_depth`): per intruding part, its surface patch behind the other
  parts' surface, flood-filled from the colliding triangles; signed distance to the nearest receiving
  vertex's tangent plane (Anny's vertices are ~1 cm apart). Frame depth = deepest patch vertex, 0
  without pairs. ``collision.penetration_depth`` (cone field, bounded by triangle size): ``cone_depth_mm``.
- PA-MPJPE as in the accuracy bench; fit time per frame; the term's own cost: one forward + backward
  of the weighted ``KeypointCapsules.penalty`` on all T frames (median of `TIMING_REPEATS`), per frame.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

import backend
from backend.body.model import CanonicalPose
from backend.config import EstimateConfig, FitConfig, LiftConfig
from backend.fit.capsules import KeypointCapsules
from backend.fit.collision import penetration_depth
from backend.fit.mesh_parts import PART_NAMES, MeshParts, body_mesh_parts, pose_pairs
from backend.io.atomic import atomic_path
from bench import metrics
from bench.accuracy import EVAL_KEYPOINTS, _json_default
from bench.cases import BenchCase, cases_for, phenotype_vector, pose_case

log = logging.getLogger(__name__)

MIN_PAIRS = 5
"""A frame self-intersects when it has more than this many pose-caused colliding triangle pairs."""
TIMING_REPEATS = 5
SEARCH_MARGIN = 0.3
"""Receiving vertices farther than this (metres) outside the intruding part's box are not searched."""
ALIGN, NEAR = 0.7, 0.015
"""Behind a surface: offset to the nearest vertex within acos(ALIGN) of its normal, or under NEAR (m)."""


# ---------------------------------------------------------------------------- mesh measurement
def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (V, 3) of a mesh (V, 3) with faces (F, 3) (winding = outward)."""
    tri = vertices[faces]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, 0))
    return vn / vn.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def signed_distance(
    points: torch.Tensor, surface: torch.Tensor, normals: torch.Tensor, chunk: int = 2048
) -> torch.Tensor:
    """(N,) signed distances of points (N, 3) to a surface sampled by vertices (M, 3) with normals
    (M, 3): to the nearest vertex's tangent plane, negative behind it (inside). Behind counts only
    where the offset to that vertex is within acos(`ALIGN`) of its normal or shorter than `NEAR`
    (far from an open surface, the nearest vertex's plane says nothing); elsewhere the distance."""
    out = []
    for a in range(0, len(points), chunk):
        p = points[a : a + chunk]
        dist, near = torch.cdist(p, surface).min(dim=1)
        s = ((p - surface[near]) * normals[near]).sum(-1)
        trusted = (-s >= ALIGN * dist) | (dist < NEAR)
        out.append(torch.where((s < 0) & ~trusted, dist, s))
    return torch.cat(out) if out else points.new_zeros(0)


def intrusion_depth(vertices: torch.Tensor, parts: MeshParts, pairs: torch.Tensor) -> float:
    """Penetration depth (metres) of one frame: the deepest vertex of any part's surface patch that
    lies behind the surface of the parts it may collide with (see the module docstring).

    vertices: (V, 3); pairs: (P, 2) this frame's pose-caused colliding triangle pairs.
    """
    if pairs.numel() == 0:
        return 0.0
    normals = vertex_normals(vertices, parts.faces)
    part, flat = parts.vertex_part, pairs.reshape(-1)
    src, dst = parts.edges[:, 0], parts.edges[:, 1]
    deepest = 0.0
    for a in torch.unique(parts.face_part[flat]).tolist():
        seeds = torch.unique(parts.faces[flat[parts.face_part[flat] == a]].reshape(-1))
        seeds = seeds[part[seeds] == a]
        mine = torch.nonzero(part == a)[:, 0]
        recv = torch.nonzero((part >= 0) & ~parts.adjacent[a][part.clamp_min(0)])[:, 0]
        lo = vertices[mine].min(0).values - SEARCH_MARGIN
        hi = vertices[mine].max(0).values + SEARCH_MARGIN
        recv = recv[((vertices[recv] >= lo) & (vertices[recv] <= hi)).all(-1)]
        if len(recv) == 0 or len(seeds) == 0:
            continue
        sdf = torch.full((len(vertices),), float("inf"), dtype=vertices.dtype)
        sdf[mine] = signed_distance(vertices[mine], vertices[recv], normals[recv])
        inside = sdf < 0
        reached = torch.zeros_like(inside)
        reached[seeds] = inside[seeds]
        while True:  # flood the patch behind the receivers' surface from the colliding triangles
            grown = torch.zeros_like(reached)
            grown[dst[reached[src]]] = True
            grown = reached | (grown & inside)
            if bool((grown == reached).all()):
                break
            reached = grown
        if bool(reached.any()):
            deepest = max(deepest, float(-sdf[reached].min()))
    return deepest


@dataclass
class FrameMeasures:
    """Per-frame measures of N meshes: pairs (N,) pose-caused colliding pairs; depth_m, cone_depth_m
    (N,) metres (`intrusion_depth`, ``collision.penetration_depth``); by_parts (N, S, S) pair counts
    by (lower, higher) part label."""

    pairs: np.ndarray
    depth_m: np.ndarray
    cone_depth_m: np.ndarray
    by_parts: np.ndarray

    @classmethod
    def concat(cls, items: list[FrameMeasures]) -> FrameMeasures:
        return cls(*(np.concatenate([getattr(m, f.name) for m in items]) for f in dataclasses.fields(cls)))

    def summary(self, names: list[str] | None = None, top: int = 5) -> dict:
        """Frames; share over `MIN_PAIRS`; means over all frames of pairs and depths (mm); the `top`
        part pairs by mean pairs per frame (named by `names`, else by label)."""
        n = len(self.pairs)
        mean = lambda x: None if n == 0 else round(float(np.mean(x)), 3)  # noqa: E731
        per = self.by_parts.mean(0) if n else np.zeros(self.by_parts.shape[1:])
        order = [np.unravel_index(k, per.shape) for k in np.argsort(-per, axis=None)[:top]]
        label = lambda i: names[i] if names else str(i)  # noqa: E731
        return {"frames": n, "intersecting_share": mean(self.pairs > MIN_PAIRS), "mean_pairs": mean(self.pairs),
                "depth_mm": mean(self.depth_m * 1000.0), "cone_depth_mm": mean(self.cone_depth_m * 1000.0),
                "top_part_pairs": {f"{label(i)} / {label(j)}": round(float(per[i, j]), 1)
                                   for i, j in order if per[i, j] > 0}}  # fmt: skip


def measure(vertices: torch.Tensor, parts: MeshParts, chunk: int = 16) -> FrameMeasures:
    """`FrameMeasures` of meshes (N, V, 3) (detached, any float dtype)."""
    n_parts = parts.adjacent.shape[0]
    pairs_n, depth, cone, by_parts = [], [], [], []
    for a in range(0, len(vertices), chunk):
        block = vertices[a : a + chunk].detach().float()
        pairs = pose_pairs(block, parts)
        for t in range(len(block)):
            mine = pairs[pairs[:, 0] == t]
            pairs_n.append(len(mine))
            depth.append(intrusion_depth(block[t], parts, mine[:, 1:]))
            local = torch.nn.functional.pad(mine[:, 1:], (1, 0))  # frame 0 of the one-frame block
            cone.append(penetration_depth(block[t : t + 1], parts.faces, local))
            fp = parts.face_part[mine[:, 1:]].sort(dim=1).values
            by_parts.append(np.bincount((fp[:, 0] * n_parts + fp[:, 1]).numpy(), minlength=n_parts**2))
    shape = (len(pairs_n), n_parts, n_parts)
    return FrameMeasures(np.array(pairs_n, dtype=np.int64), np.array(depth), np.array(cone),
                         np.array(by_parts, dtype=np.int64).reshape(shape))  # fmt: skip


# ---------------------------------------------------------------------------- Anny
def anny_parts(body, phenotypes: np.ndarray) -> tuple[MeshParts, KeypointCapsules]:  # noqa: ANN001
    """`MeshParts` of Anny with phenotypes (P,), and the fit's collision capsules for that shape."""
    with torch.no_grad():
        rest = body.rest_state(torch.as_tensor(phenotypes, dtype=torch.float32))
        out = body.forward(CanonicalPose.rest(1), rest, vertices=True)
        zero, kp = out.vertices[0], out.keypoints[0]
    return body_mesh_parts(body, rest), KeypointCapsules.build(kp, zero)


def fit_vertices(body, fit, chunk: int = 32) -> torch.Tensor:  # noqa: ANN001 - AnnyBody, FitResult
    """The fitted Anny meshes (T, V, 3), camera frame."""
    as_t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    rest = body.rest_state(as_t(fit.phenotypes))
    orient, pose = roma.rotvec_to_rotmat(as_t(fit.global_orient)), roma.rotvec_to_rotmat(as_t(fit.body_pose))
    transl, out = as_t(fit.transl), []
    with torch.no_grad():
        for a in range(0, len(orient), chunk):
            posed = CanonicalPose(orient[a : a + chunk], pose[a : a + chunk], transl[a : a + chunk])
            out.append(body.forward(posed, rest, vertices=True).vertices)
    return torch.cat(out)


def term_seconds(capsules: KeypointCapsules, keypoints: np.ndarray, weight: float, device: str) -> float:
    """Median seconds of one forward + backward of the weighted capsule term on keypoints (T, K, 3)."""
    caps = KeypointCapsules(capsules.bones.to(device), capsules.radii.to(device), capsules.pairs.to(device))
    kp = torch.as_tensor(keypoints, dtype=torch.float32, device=device).requires_grad_(True)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    for _ in range(TIMING_REPEATS + 1):  # the first run warms up
        kp.grad = None
        sync()
        start = time.perf_counter()
        (weight * caps.penalty(kp)).backward()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def mesh_term_seconds(body, fit, device: str) -> float:  # noqa: ANN001 - AnnyBody, FitResult
    """Seconds of one evaluation of the mesh term (forward + backward) on a fitted clip, plus one
    search over all frames amortised over ``CollisionConfig.search_every`` evaluations."""
    from backend.config import CollisionConfig
    from backend.fit.mesh_term import MeshCollisionTerm

    dev = torch.device(device)
    as_t = lambda x: torch.as_tensor(x, dtype=torch.float32, device=dev)  # noqa: E731
    body = body.to(dev)
    with torch.no_grad():
        rest = body.rest_state(as_t(fit.phenotypes))
    orient = roma.rotvec_to_rotmat(as_t(fit.global_orient))
    pose = as_t(fit.body_pose).requires_grad_(True)
    transl = as_t(fit.transl)
    config = CollisionConfig(search_every=10**9)
    term = MeshCollisionTerm(body, rest, body_mesh_parts(body, rest), len(orient), config)

    def transforms(idx: torch.Tensor) -> torch.Tensor:
        posed = CanonicalPose(orient[idx], roma.rotvec_to_rotmat(pose[idx]), transl[idx])
        return body.bone_transforms(body.native_deltas(posed), rest)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    term.search(transforms)
    sync()
    search_s = time.perf_counter() - start
    amortised = search_s / CollisionConfig().search_every
    if term.pairs.numel() == 0:  # nothing collides: an evaluation is the search alone
        body.to("cpu")
        return amortised
    term.evaluations = 1  # searched already
    times = []
    for _ in range(TIMING_REPEATS + 1):  # the first run warms up
        pose.grad = None
        sync()
        start = time.perf_counter()
        term.penalty(transforms).backward()
        sync()
        times.append(time.perf_counter() - start)
    body.to("cpu")
    return float(np.median(times[1:])) + amortised


# ---------------------------------------------------------------------------- the bench


@dataclass(frozen=True)
class CollisionBenchConfig:
    """Cases (subset, first N), the capsule weights of the "on" fits (empty: FitConfig's) and the
    mesh-term weights of the "mesh" fits (capsules at FitConfig's weight plus the mesh stage;
    empty: FitConfig's)."""

    subset: str = "ci"
    max_cases: int | None = None
    weights: tuple[float, ...] = ()
    cache_dir: Path | None = None
    mesh_weights: tuple[float, ...] = ()

    def cases(self) -> tuple[BenchCase, ...]:
        return cases_for(self.subset)[: self.max_cases]

    def labels(self) -> list[str]:
        default = FitConfig().collision
        return ["off", *(f"on w={w:g}" for w in self.weights or (default.w_capsules,)),
                *(f"mesh w={w:g}" for w in self.mesh_weights or (default.w_mesh,))]  # fmt: skip

    @staticmethod
    def fit_config(label: str) -> FitConfig:
        """The fit settings of a run label ("off", "on w=W" or "mesh w=W")."""
        mode, _, weight = label.partition(" w=")
        default = FitConfig().collision
        if mode == "on":
            return FitConfig(collision=dataclasses.replace(default, mode="on", w_capsules=float(weight)))
        if mode == "mesh":
            return FitConfig(collision=dataclasses.replace(default, mode="mesh", w_mesh=float(weight)))
        return FitConfig(collision=dataclasses.replace(default, mode="off"))


def load_detections(video: Path, config: EstimateConfig):  # noqa: ANN201 - DetectionResult
    """A rendered clip's detections: cached next to it (or by the tuning scripts in /tmp), else run."""
    from backend.detect.run import detect_subjects
    from backend.io.video import probe
    from backend.train.data import hash_of

    key = hash_of(dataclasses.asdict(config.detect), dataclasses.asdict(config.track))
    own = video.parent / f"detections_{key}.pkl"
    for path in (own, Path("/tmp") / f"det_bench_{video.parent.name}.pkl"):
        if path.is_file():
            log.info("detections from %s", path)
            return pickle.loads(path.read_bytes())  # noqa: S301 - our own cache
    det = detect_subjects(probe(video), 0, None, config.detect, config.track, lambda e: None, lambda: False)
    with atomic_path(own, suffix=".pkl") as tmp:
        tmp.write_bytes(pickle.dumps(det))
    return det


def run_case(case: BenchCase, truth, clips, body, models, config: CollisionBenchConfig) -> dict | None:
    """Fit one case with the term off and on (each weight) and measure. Its entry: per run label (and
    "truth") the `FrameMeasures` under ``measures`` and fit numbers under ``runs``; None: no subject."""
    from backend.fit.optimize import TemporalFitter
    from backend.io.video import probe
    from backend.pipeline.models import make_lifter
    from backend.pipeline.record import Camera, fit_inputs

    subjects = load_detections(truth.video, EstimateConfig()).subjects
    if not subjects:
        log.warning("case %s: nobody detected, skipped", case.name)
        return None
    sub, info = subjects[0], probe(truth.video)
    lift = make_lifter(models, (info.width, info.height)).lift(sub)
    inputs = fit_inputs(sub, lift, Camera(case.intrinsics, "true"), info.height)
    index = sub.frame_index.astype(np.int64)
    mask = sub.valid.astype(bool) & truth.in_view[index]
    gt3d = truth.keypoints3d[index][mask][:, EVAL_KEYPOINTS].astype(np.float64)
    true_parts, _ = anny_parts(body, phenotype_vector(case, list(body.phenotype_labels)))
    true_verts = torch.as_tensor(pose_case(case, clips, body).vertices[index][mask])
    entry: dict = {"case": case.name, "evaluated_frames": int(mask.sum()), "frames": len(mask),
                   "measures": {"truth": measure(true_verts, true_parts)}, "runs": {}}  # fmt: skip
    for label in config.labels():
        fit_cfg = config.fit_config(label)
        fitter = TemporalFitter(body, fit_cfg, torch.device("cpu"), models.prior)
        start = time.perf_counter()
        fit = fitter.fit(inputs, lambda e: None, lambda: False)
        seconds = time.perf_counter() - start
        parts, capsules = anny_parts(body, fit.phenotypes)
        entry["measures"][label] = found = measure(fit_vertices(body, fit)[torch.as_tensor(mask)], parts)
        pa = metrics.pa_mpjpe(fit.keypoints3d[mask][:, EVAL_KEYPOINTS].astype(np.float64), gt3d) * 1000.0
        evals = sum(s["evaluations"] for n, s in fit.stats["stages"].items() if n != "global")
        devices = [] if label == "off" else ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
        term_s = {d: term_seconds(capsules, fit.keypoints3d, fit_cfg.collision.w_capsules, d) for d in devices}
        if fit_cfg.collision.mode == "mesh":
            term_s = {d: mesh_term_seconds(body, fit, d) for d in devices}
        if fit_cfg.collision.mode == "mesh":  # the mesh term runs in the last stage only
            evals = fit.stats["stages"].get("collision", {}).get("evaluations", 0)
        entry["runs"][label] = {"fit_s": seconds, "fit_frames": len(mask), "pa": pa,
                                "evaluations_with_term": evals, "term_s": term_s,
                                "mesh": fit.stats["stages"].get("collision", {}).get("mesh")}  # fmt: skip
        log.info("case %s %s: fit %.1f s, %s, PA-MPJPE %.1f mm", case.name, label, seconds,
                 found.summary(list(PART_NAMES)), float(pa.mean()))  # fmt: skip
    return entry


def summarise(entries: list[dict], label: str) -> dict:
    """One run's (or the truth's) numbers over the entries' measured frames (pooled)."""
    out = FrameMeasures.concat([e["measures"][label] for e in entries]).summary(list(PART_NAMES))
    runs = [e["runs"][label] for e in entries if label in e["runs"]]
    if runs:
        frames = sum(r["fit_frames"] for r in runs)
        out["pa_mpjpe_mm"] = round(float(np.concatenate([r["pa"] for r in runs]).mean()), 2)
        out["fit_s_per_frame"] = round(sum(r["fit_s"] for r in runs) / frames, 4)
        for dev in runs[0]["term_s"]:  # per evaluation, and over all evaluations of the fit
            out[f"term_ms_per_frame_{dev}"] = round(1000.0 * sum(r["term_s"][dev] for r in runs) / frames, 4)
            whole = sum(r["term_s"][dev] * r["evaluations_with_term"] for r in runs) / frames
            out[f"term_ms_per_frame_whole_fit_{dev}"] = round(1000.0 * whole, 2)
    return out


def verdict(off: dict, on: dict) -> dict:
    """Issue 5's criterion: share and depth at most halved, PA-MPJPE up by at most 2 mm."""
    checks = {"share_halved": on["intersecting_share"] <= 0.5 * off["intersecting_share"],
              "depth_halved": on["depth_mm"] <= 0.5 * off["depth_mm"],
              "pa_mpjpe_within_2mm": on["pa_mpjpe_mm"] - off["pa_mpjpe_mm"] <= 2.0}  # fmt: skip
    return {**checks, "meets": all(checks.values())}


_COLUMNS = (("intersecting_share", "{:.0%}"), ("depth_mm", "{:.1f}"), ("pa_mpjpe_mm", "{:.1f}"),
            ("fit_s_per_frame", "{:.3f}"))  # fmt: skip


def table(rows: list[tuple[str, dict]], labels: list[str]) -> str:
    """Markdown: per (case, "on" label), off / on of share, depth, PA-MPJPE, fit time; term cost; truth.
    rows: (case name, {label: `summarise` output}); labels: "off" then the "on" labels."""
    head = (
        "| case | run | self-intersecting frames off / on | depth mm off / on "
        "| PA-MPJPE mm off / on | fit s/frame off / on | term ms/frame | truth: self-intersecting / depth mm |"
    )
    lines = [head, "|---" * 8 + "|"]
    for name, res in rows:
        off, tr = res["off"], res["truth"]
        for label in labels[1:]:
            on = res[label]
            cells = [f"{fmt.format(off[k])} / {fmt.format(on[k])}" for k, fmt in _COLUMNS]
            cells += [
                f"{on['term_ms_per_frame_cpu']:.4f}",
                f"{tr['intersecting_share']:.0%} / {tr['depth_mm']:.1f}",
            ]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_collision(config: CollisionBenchConfig, report_path: Path | None) -> dict:
    """Run the bench; writes the JSON report atomically to `report_path` if given and returns it."""
    from backend.body.anny_body import AnnyBody
    from backend.errors import BadInput
    from backend.pipeline.models import load_models
    from backend.train.data import DataConfig, default_cache_dir, load_clipset
    from bench.render import rendered_case

    clock = time.perf_counter()
    cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir().parent / "bench"
    clips, body, lift_config = load_clipset("test", DataConfig()), AnnyBody(), LiftConfig()
    try:
        models = load_models(lift_config)
    except BadInput as exc:
        log.warning("default lifter unusable (%s): falling back to the MediaPipe baseline", exc)
        lift_config = LiftConfig(method="mediapipe")
        models = load_models(lift_config)
    entries = [run_case(case, rendered_case(case, clips, cache, lambda: body), clips, body, models, config)
               for case in config.cases()]  # fmt: skip
    entries = [e for e in entries if e is not None]
    if not entries:
        raise BadInput("no case had a detected person")
    labels = ["truth", *config.labels()]
    per_case = [(e["case"], {k: summarise([e], k) for k in labels}) for e in entries]
    overall = {k: summarise(entries, k) for k in labels}
    verdicts = {k: verdict(overall["off"], overall[k]) for k in labels[2:]}
    text = table([*per_case, ("**all**", overall)], labels[1:])
    report = {
        "bench": "collision", "software_version": backend.__version__, "lifter": lift_config.method,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()},
        "min_pairs": MIN_PAIRS, "cuda": torch.cuda.is_available(), "overall": overall, "criterion": verdicts,
        "cases": [{"case": n, "evaluated_frames": e["evaluated_frames"], "frames": e["frames"], **r}
                  for (n, r), e in zip(per_case, entries, strict=True)],
        "timings_s": {"total": round(time.perf_counter() - clock, 1)}, "table_markdown": text,
    }  # fmt: skip
    log.info("self-collision bench, %d case(s), subset %s:\n%s", len(entries), config.subset, text)
    for label, v in verdicts.items():
        log.info("%s: %s", label, "meets issue 5's criterion" if v["meets"] else f"does not meet it: {v}")
    if report_path is not None:
        with atomic_path(Path(report_path), suffix=".json") as tmp_path:
            tmp_path.write_text(json.dumps(report, indent=1, default=_json_default))
        log.info("wrote %s", report_path)
    return report
