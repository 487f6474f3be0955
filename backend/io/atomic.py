"""Atomic file writes: write to a temporary name in the target folder, then rename."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backend.errors import BadInput


def check_writable_dir(path: Path) -> None:
    """Raise BadInput unless a file can really be created in the folder that will hold ``path``.

    Probes by creating and removing a temporary file (permission bits alone say nothing for root,
    read-only mounts or special file systems).
    """
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise BadInput(f"Output folder {folder} does not exist: create it or choose another output path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise BadInput(f"The disk holding {folder} is full: free some space and run again.") from exc
        raise BadInput(
            f"Cannot write to the output folder {folder} ({exc.strerror}): choose another output path."
        ) from exc


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and nothing is left at ``path``.
    A full disk becomes a BadInput with a message that says so.
    """
    path = Path(path)
    check_writable_dir(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise BadInput(f"The disk holding {path.parent} is full: free some space and run again.") from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
