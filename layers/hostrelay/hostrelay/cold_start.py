"""Imported first by every handler: no garbage collection while the function loads.

A cold start creates some 100k objects that live as long as the container (modules, classes,
pydantic schemas, routes). Collecting while they pile up frees nothing and costs tens of
milliseconds of init; `loaded()` turns collection back on with them frozen, so later collections
skip them as well. Only the first load in a process pauses: a Lambda container loads its handler
once, while tests and the local stack load many.
"""

from __future__ import annotations

import gc

_pausing = [gc.isenabled()]
gc.disable()


def loaded() -> None:
    """The handler has built its services: collect as usual from now on (idempotent)."""
    if _pausing[0]:
        _pausing[0] = False
        gc.freeze()
        gc.enable()
