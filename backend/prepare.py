"""One-time set-up work, run by the set-up scripts so the first estimate starts at once:
build Anny's model cache (about 35-45 s on first use) and MediaPipe's multi-person task bundle.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def prepare() -> None:
    """Build every cache the default path needs; safe to run again (then it is quick)."""
    clock = time.perf_counter()
    from backend.detect.task_bundle import ensure_pose_task

    task = ensure_pose_task()
    log.info("MediaPipe multi-person pose bundle: %s", task)
    from backend.body.anny_body import AnnyBody

    AnnyBody()
    log.info("Anny body model ready (%.1f s in all)", time.perf_counter() - clock)
