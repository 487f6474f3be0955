"""Load every clip of ``../shared/mocap`` once and report what loads, how much, and how well.

``python -m backend.train.mocap.survey [ROOT] [--json OUT.json]``: clips per folder, failures with
reasons, hours of motion at 30 fps per split, stature estimates per source, and the retargeting
round-trip bone direction errors. Clips are processed in one worker process (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from backend.train.mocap.calibrate import hinge_purity
from backend.train.mocap.canonical import canonical_fk, stature_estimate
from backend.train.mocap.common import rest_height
from backend.train.mocap.dataset import (
    DEFAULT_MOCAP_ROOT,
    clip_from_retargeted,
    iter_clips,
    leading_glitch_frames,
    load_source,
)
from backend.train.mocap.retarget import bone_direction_errors, retarget

log = logging.getLogger(__name__)


def survey_clip(path: Path, subject: str, split: str) -> dict:
    """One clip's numbers, or its failure reason (never raises)."""
    row: dict = {"path": str(path), "folder": path.parts[-1], "subject": subject, "split": split}
    try:
        info, skeleton, motion = load_source(path)
        ret = retarget(skeleton, motion, info.spec)
        err = bone_direction_errors(ret)
        clip = clip_from_retargeted(ret, path.stem, info.name, subject)
        purity = hinge_purity(ret)
        lead = leading_glitch_frames(ret)
        steps = np.linalg.norm(np.diff(canonical_fk(ret.rotations, ret.transl, ret.offsets), axis=0), axis=-1)
        steps = steps.max(axis=-1)
        jumps = int(np.sum(steps[lead:] > max(0.1, 10.0 * float(np.median(steps)))))
        row.update(
            ok=True,
            source=info.name,
            fps_in=round(motion.fps, 3),
            frames30=clip.n_frames,
            seconds=clip.duration,
            stature=stature_estimate(ret.offsets),
            rest_extent=max(rest_height(skeleton, a) for a in range(3)),
            err_mean=float(err.mean()),
            err_p99=float(np.percentile(err, 99)),
            err_max=float(err.max()),
            n_bones=int(err.shape[1]),
            pelvis_y_std=float(clip.transl[:, 1].std()),
            elbow_purity=_mean_finite([purity["left_elbow"], purity["right_elbow"]]),
            knee_purity=_mean_finite([purity["left_knee"], purity["right_knee"]]),
            leading_dropped=lead,
            mid_jumps=jumps,
        )
    except Exception as exc:  # noqa: BLE001 - the survey reports every failure
        row.update(ok=False, reason=f"{type(exc).__name__}: {exc}")
    return row


def _mean_finite(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _one_thread() -> None:
    torch.set_num_threads(1)


def survey(root: Path = DEFAULT_MOCAP_ROOT, workers: int = 1) -> list[dict]:
    """Rows of `survey_clip` for every clip under root, in `workers` single-threaded subprocesses."""
    refs = list(iter_clips(root))
    with ProcessPoolExecutor(max_workers=workers, initializer=_one_thread) as pool:
        futures = [pool.submit(survey_clip, r.path, r.subject, r.split) for r in refs]
        rows = []
        for i, fut in enumerate(futures):
            rows.append(fut.result())
            rows[-1]["folder"] = refs[i].path.relative_to(root).parts[0]
            if (i + 1) % 50 == 0:
                log.info("%d / %d clips", i + 1, len(refs))
    return rows


def summarize(rows: list[dict]) -> str:
    """A plain-text report of `survey` rows."""
    out = []
    by_folder: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_folder[r["folder"]].append(r)
    out.append(f"{'folder':24s} {'found':>5s} {'ok':>4s} {'hours@30':>8s}  per split (h)")
    total = 0.0
    for folder, rs in sorted(by_folder.items()):
        ok = [r for r in rs if r["ok"]]
        hours = sum(r["seconds"] for r in ok) / 3600
        total += hours
        splits = defaultdict(float)
        for r in ok:
            splits[r["split"]] += r["seconds"] / 3600
        per = ", ".join(f"{k} {v:.3f}" for k, v in sorted(splits.items()))
        out.append(f"{folder:24s} {len(rs):5d} {len(ok):4d} {hours:8.3f}  {per}")
    out.append(f"total hours at 30 fps: {total:.3f}")
    for r in rows:
        if not r["ok"]:
            out.append(f"FAILED {r['path']}: {r['reason']}")
    out.append("")
    out.append(f"{'source':30s} {'clips':>5s} {'stature m (min/med/max)':>24s} {'rest extent':>12s} "
               f"{'fps in':>12s} {'err mean':>8s} {'p99':>6s} {'max':>6s} {'elbow':>5s} {'knee':>5s}")  # fmt: skip
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["ok"]:
            by_source[r["source"]].append(r)
    for source, rs in sorted(by_source.items()):
        st = np.array([r["stature"] for r in rs])
        ext = np.array([r["rest_extent"] for r in rs])
        fps = sorted({r["fps_in"] for r in rs})
        fps_s = "/".join(f"{f:g}" for f in fps[:3]) + ("..." if len(fps) > 3 else "")
        out.append(
            f"{source:30s} {len(rs):5d} {st.min():7.2f} {np.median(st):7.2f} {st.max():7.2f}   "
            f"{np.median(ext):10.2f} {fps_s:>12s} {np.mean([r['err_mean'] for r in rs]):8.4f} "
            f"{max(r['err_p99'] for r in rs):6.3f} {max(r['err_max'] for r in rs):6.3f} "
            f"{_mean_finite([r['elbow_purity'] for r in rs]):5.2f} {_mean_finite([r['knee_purity'] for r in rs]):5.2f}"
        )
    subjects = defaultdict(list)
    for r in rows:
        if r["ok"]:
            subjects[(r["source"], r["subject"])].append(r["stature"])
    out.append("")
    out.append(
        "stature by subject: "
        + ", ".join(f"{s}={np.median(v):.2f}" for (_, s), v in sorted(subjects.items()))
    )
    for source, rs in sorted(by_source.items()):
        lead = [r for r in rs if r["leading_dropped"]]
        jump = [r for r in rs if r["mid_jumps"]]
        if lead or jump:
            out.append(
                f"{source}: {len(lead)} clips start with dropped reference/glitch frames; {len(jump)} clips "
                f"have later per-frame jumps (> max(0.1 m, 10x median step)): "
                + ", ".join(f"{Path(r['path']).stem}({r['mid_jumps']})" for r in jump)
            )
    flat = [r for r in rows if r["ok"] and r["pelvis_y_std"] < 1e-5]
    if flat:
        out.append(f"clips with a constant pelvis height (no vertical root motion): {len(flat)}: "
                   + ", ".join(Path(r['path']).stem for r in flat))  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_MOCAP_ROOT)
    parser.add_argument("--json", type=Path, default=None, help="also write the per-clip rows here")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = survey(args.root, args.workers)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    sys.stdout.write(summarize(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
