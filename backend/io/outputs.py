"""Output safety: one rule for every file a run writes (motion file, preview MP4 and PNG, rig files).

- Output paths are checked before any work: not an input, not another output, not a folder, and in
  a folder where a file can be created (:func:`check_output_paths`, BadInput).
- Each output is written to a temporary name in its target's folder (:class:`StagedOutputs`).
- Only when every output of the run is complete are they renamed over their targets, together
  (:meth:`StagedOutputs.commit`, inside the cancel token's shielded section).
- A run that fails or is cancelled removes its temporary files and nothing else: an existing file
  at a target path is never touched unless the run completes.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from backend.errors import BadInput
from backend.io.atomic import check_writable_dir

log = logging.getLogger(__name__)

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)
    return False


def check_output_paths(outputs: Sequence[Path], inputs: Sequence[Path], labels: Sequence[str]) -> None:
    """Raise BadInput unless each output is a new or regular file path, distinct from every input and
    every other output, in a writable folder. ``labels`` name the outputs in messages (``--out``)."""
    outputs, inputs = [Path(p) for p in outputs], [Path(p) for p in inputs]
    for i, (out, label) in enumerate(zip(outputs, labels, strict=True)):
        if out.is_dir():
            raise BadInput(f"{label} {out} is a folder: give a file name, e.g. {out / 'clip.motion.npz'}.")
        if out.exists() and not out.is_file():
            raise BadInput(f"{label} {out} exists and is not a regular file: choose another path.")
        for source in inputs:
            if _same_file(out, source):
                raise BadInput(
                    f"{label} {out} is the input video: choose another output path (it would be overwritten)."
                )
        for other, other_label in zip(outputs[:i], labels[:i], strict=True):
            if _same_file(out, other):
                raise BadInput(
                    f"{label} {out} is also the path of {other_label}: give each output its own path."
                )
        check_writable_dir(out)


def temp_prefix(target: Path) -> str:
    """Name prefix of this process's temporary files for ``target`` (hidden, with the process id)."""
    return f".{Path(target).name}.{os.getpid()}."


def remove_temporaries(targets: Sequence[Path]) -> None:
    """Remove this process's temporary files for ``targets`` (a process ending in a hurry)."""
    for target in targets:
        target = Path(target)
        with contextlib.suppress(OSError):
            for tmp in target.parent.glob(glob.escape(temp_prefix(target)) + "*"):
                with contextlib.suppress(OSError):
                    tmp.unlink()


def disk_full_error(path: Path) -> BadInput:
    """The error for a full disk under ``path``'s folder (exit 2: the user can free space)."""
    return BadInput(f"The disk holding {Path(path).resolve().parent} is full: free some space and run again.")


class StagedOutputs:
    """Temporary files next to their targets, renamed over them all at once by :meth:`commit`.

    Use as a context manager: leaving the block without a commit removes the temporary files.
    """

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}
        self.committed: list[Path] = []

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()

    def path(self, target: Path) -> Path:
        """The temporary file (created empty, same folder and suffix) that stands for ``target``."""
        target = Path(target)
        if target not in self._staged:
            try:
                fd, name = tempfile.mkstemp(
                    prefix=temp_prefix(target), suffix=target.suffix or ".part", dir=target.parent
                )
            except OSError as exc:
                raise (disk_full_error(target) if exc.errno in DISK_FULL else exc) from exc
            os.close(fd)
            self._staged[target] = Path(name)
        return self._staged[target]

    @contextlib.contextmanager
    def writing(self, *targets: Path) -> Iterator[list[Path]]:
        """Yield the temporary paths of ``targets``; a full disk while writing them becomes BadInput."""
        try:
            yield [self.path(target) for target in targets]
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise disk_full_error(targets[0]) from exc
            raise

    def commit(self) -> list[Path]:
        """Rename every staged file over its target (normal permissions); return the targets."""
        umask = os.umask(0)
        os.umask(umask)
        for target, tmp in list(self._staged.items()):
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
            os.replace(tmp, target)
            del self._staged[target]
            self.committed.append(target)
        return self.committed

    def discard(self) -> None:
        """Remove the temporary files that were not committed (never a target)."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._staged.clear()
