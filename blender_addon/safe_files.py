"""Output safety for the files the add-on writes (.blend, .fbx, batch summaries); stdlib only.

The same rule as the backend's: write to a temporary name in the target's folder, rename it over the
target only once it is complete, never delete a file this run did not create, and refuse an output
path that is an input, another output, or a folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that would overwrite an input or another output, or that is a folder."""


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return a.exists() and b.exists() and os.path.samefile(a, b)
    return False


def check_outputs(outputs: Iterable[Path], inputs: Iterable[Path] = ()) -> None:
    """Raise OutputPathError unless every output is a distinct file path that no input shares."""
    outputs, inputs = [Path(p) for p in outputs], [Path(p) for p in inputs]
    for i, out in enumerate(outputs):
        if out.is_dir():
            raise OutputPathError(f"{out} is a folder: give a file name for the output.")
        for source in inputs:
            if _same(out, source):
                raise OutputPathError(f"{out} is also an input: choose another output path.")
        for other in outputs[:i]:
            if _same(out, other):
                raise OutputPathError(f"{out} is given for two outputs: give each output its own path.")


@contextlib.contextmanager
def atomic_target(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` when the block succeeds.

    On failure the temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix or ".part", dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise OSError(f"nothing was written for {path}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
