"""``python -m backend people VIDEO --out clip.people.npz``: who is in the clip, before any fit.

Runs the detect stage and the tracking of the track stage (no Holistic pass, no lift, no fit, no body
model) and writes a people file: every tracked person with when they are visible, their box size and a
thumbnail crop (``backend.detect.people_list``). The add-on's *Find People* shows it so the user can tick
the people to fit; ``estimate --person 0,2`` then fits them (the ids are the same: tracking is
deterministic for the same clip and range).
"""

from __future__ import annotations

import logging
from pathlib import Path

from backend import protocol, threads
from backend.config import DecodeConfig, DetectConfig, TrackConfig
from backend.detect.people_list import list_people
from backend.detect.run import detect_people, identify
from backend.errors import BadInput
from backend.io import motion as motion_io
from backend.io.outputs import StagedOutputs, check_output_paths
from backend.io.video import probe

log = logging.getLogger(__name__)
SUFFIX = ".people.npz"


def find_people(
    video: Path,
    out: Path,
    decode: DecodeConfig,
    report: protocol.Reporter,
    is_cancelled: protocol.CancelCheck,
    detect: DetectConfig | None = None,
) -> list[dict[str, object]]:
    """Detect and track everyone in ``video`` (``decode``'s frame range) and write the people file ``out``
    (atomically); returns the listed people.

    Raises:
        BadInput: a bad path, a video that cannot be read, nobody in it.
        Cancelled: ``is_cancelled()`` returned True.
    """
    out = Path(out)
    check_output_paths([out], [Path(video)], ["--out"])
    if not out.name.endswith(SUFFIX):
        raise BadInput(f"--out {out} must end with {SUFFIX} (e.g. {out.name.split('.')[0]}{SUFFIX}).")
    detect = detect or DetectConfig()
    report(protocol.stage("detect", 1, 2))
    info = probe(video)
    cores = threads.configure()
    found = detect_people(info, decode.start, decode.end, detect, report, is_cancelled, None, detect.workers or cores)
    report(protocol.stage("track", 2, 2))
    tracks = identify(found, TrackConfig())
    listed, thumbs = list_people(tracks, found.people, found.frame_index, chosen=[])
    meta = {
        "source_video": Path(video).name,
        "image_size": [info.width, info.height],
        "frame_range": [int(found.frame_index[0]), int(found.frame_index[-1]) + 1],
        "tracked": [p.as_meta() for p in listed],
        "warnings": found.warnings,
    }
    with StagedOutputs() as staged:
        with staged.writing(out) as (tmp,):
            motion_io.write_people(tmp, meta, thumbs, str(out))
        staged.commit()
    log.info("%d people: %s (fit some with estimate --person ID[,ID...])", len(listed),
             "; ".join(f"id {p.id}: frames {p.frames}" for p in listed))  # fmt: skip
    report(protocol.result(str(out)))
    return meta["tracked"]
