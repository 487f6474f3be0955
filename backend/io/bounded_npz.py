"""Read an ``.npz`` without trusting it: each entry's header is read before its data is inflated.

NumPy + standard library only: the Blender add-on vendors this file byte for byte
(``blender_addon/bounded_npz.py``), so that both sides read motion files through the same code.

:class:`NpzReader` lists every entry's shape and dtype from its ``.npy`` header (a few hundred bytes
inflated per entry), so a caller can check them against a schema and a memory budget before any
array is read. Every failure is a :class:`FileFormatError` with one line naming the file and the
entry; nothing else escapes (zlib, zipfile, EOF, memory or header errors included).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

ALLOWED_KINDS = frozenset("biufU")
"""bool, signed and unsigned int, float, unicode (labels); never objects, bytes or structures."""
MAX_ENTRIES = 20_000
MAX_HEADER_BYTES = 4096


class FileFormatError(ValueError):
    """A file that cannot be read as what it claims to be; the message names the file and the field."""


@dataclass(frozen=True)
class EntryHeader:
    """One entry of the archive, as its ``.npy`` header describes it."""

    name: str
    """Entry name without ``.npy``."""
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int
    """Bytes of ``.npy`` header before the data."""

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
)


class NpzReader:
    """``with NpzReader(path, max_file_bytes) as npz: npz.headers[...]; npz.read(name)``."""

    def __init__(self, path: str | Path, max_file_bytes: int) -> None:
        self.path = Path(path)
        self.headers: dict[str, EntryHeader] = {}
        self._members: dict[str, zipfile.ZipInfo] = {}
        if not self.path.is_file():
            raise FileFormatError(f"{self.path} does not exist (or is not a file).")
        size = self.path.stat().st_size
        if size > max_file_bytes:
            raise FileFormatError(f"{self.path} is {size} bytes, more than the {max_file_bytes} allowed.")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (*_READ_ERRORS, MemoryError) as exc:
            raise FileFormatError(f"{self.path} cannot be read as .npz ({_why(exc)}).") from exc
        try:
            self._read_headers()
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def _read_headers(self) -> None:
        infos = self._zip.infolist()
        if len(infos) > MAX_ENTRIES:
            raise FileFormatError(f"{self.path} holds {len(infos)} entries, more than {MAX_ENTRIES}.")
        for info in infos:
            if info.is_dir():
                continue
            if not info.filename.endswith(".npy"):
                raise FileFormatError(f"{self.path}: entry '{info.filename}' is not a .npy array.")
            name = info.filename[: -len(".npy")]
            if name in self.headers:
                raise FileFormatError(f"{self.path}: entry '{name}' appears twice.")
            self.headers[name] = self._header(name, info)
            self._members[name] = info

    def _header(self, name: str, info: zipfile.ZipInfo) -> EntryHeader:
        try:
            with self._zip.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, MAX_HEADER_BYTES)
                elif version in ((2, 0), (3, 0)):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, MAX_HEADER_BYTES)
                else:
                    raise ValueError(f"unknown .npy version {version}")
                offset = handle.tell()
        except (*_READ_ERRORS, MemoryError, SyntaxError, TypeError) as exc:
            raise FileFormatError(
                f"{self.path}: entry '{name}' has no readable array header ({_why(exc)})."
            ) from exc
        dtype = np.dtype(dtype)
        if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise FileFormatError(f"{self.path}: entry '{name}' has the unsupported type {dtype.str}.")
        if any((not isinstance(d, int)) or d < 0 for d in shape):
            raise FileFormatError(f"{self.path}: entry '{name}' has the invalid shape {shape}.")
        header = EntryHeader(name, tuple(int(d) for d in shape), dtype, bool(fortran), int(offset))
        if info.file_size != header.data_offset + header.nbytes:
            raise FileFormatError(
                f"{self.path}: entry '{name}' is {info.file_size} bytes, but its header says "
                f"{header.data_offset + header.nbytes} (the file is damaged or truncated)."
            )
        return header

    def read(self, name: str) -> np.ndarray:
        """The array of entry ``name`` (its size was fixed by the header; check it before calling)."""
        header, info = self.headers[name], self._members[name]
        try:
            with self._zip.open(info) as handle:
                handle.read(header.data_offset)
                data = handle.read(header.nbytes)
                if len(data) != header.nbytes or handle.read(1):
                    raise EOFError("the data is shorter or longer than its header says")
        except (*_READ_ERRORS, MemoryError) as exc:
            raise FileFormatError(f"{self.path}: entry '{name}' cannot be read ({_why(exc)}).") from exc
        array = np.frombuffer(data, dtype=header.dtype)
        order = "F" if header.fortran_order else "C"
        return array.reshape(header.shape, order=order).copy()


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
