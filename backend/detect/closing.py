"""A base for objects that hold a MediaPipe graph: ``with`` closes them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Closing(ABC):
    """``with obj: ...`` calls ``obj.close()`` on the way out; subclasses define ``close``."""

    @abstractmethod
    def close(self) -> None:
        """Release the graph."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
