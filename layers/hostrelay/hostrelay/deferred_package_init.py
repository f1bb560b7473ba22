"""Import a package's submodules without running the package's `__init__` until it is needed.

Some packages' `__init__` re-export everything they have, so importing one submodule pays for
all of them. `defer_package_init(name, known)` registers the package in `sys.modules` with its
`__init__` not yet run:

- `import name.sub` and `from name import sub` import that submodule alone;
- `from name import X` with X in `known` takes X from the submodule `known` names;
- any other name runs the real `__init__` (in the same module object, once) and is served
  from it: whatever code asks for is there, only later.

So the package behaves as if imported normally; `known` only decides what is cheap. A name
that has moved to another submodule is found by the fallback (and the caller's test notices).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from typing import Any


def defer_package_init(name: str, known: Mapping[str, str]) -> None:
    """Register package `name` with its `__init__` deferred; `known`: name -> the submodule
    (absolute) that defines it. Nothing happens if the package is imported already."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def run_init() -> None:
        # Before running it: a name the real __init__ lacks is then an AttributeError, as
        # for a normally imported package, not a second run.
        package.__dict__.pop("__getattr__", None)
        loader.exec_module(package)

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        source = known.get(attr)
        if source is not None:
            try:
                value = getattr(importlib.import_module(source), attr)
            except (ImportError, AttributeError):
                pass  # moved in a newer release: the real __init__ knows where
            else:
                setattr(package, attr, value)
                return value
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")
        run_init()
        return getattr(package, attr)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, package)
