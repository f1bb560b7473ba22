"""Cyclic garbage collection paused while a directory sync builds its many small objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


class CollectorPause:
    """Counts the blocks that want the collector paused; the last one out resumes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


_PAUSE = CollectorPause()


def gc_paused() -> AbstractContextManager[None]:
    """Pause the cyclic collector for the block (one process-wide pause, shared by threads).

    A full sync allocates hundreds of thousands of dicts, lists and strings that all live
    until it ends, and the collector would walk them again and again for nothing. Reference
    counting still frees everything acyclic, so memory stays bounded by what the sync holds
    anyway. Syncs in other threads may overlap: the collector is switched back on only when
    the last of them leaves, and only if it was on before the first came.
    """
    return _PAUSE.held()
