"""Powertools' event_handler and data_classes packages, imported without their __init__ until
a name they alone hold is asked for (hostrelay/api/__init__.py, deferred_package_init.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostrelay.deferred_package_init import defer_package_init


def run_fresh(code: str) -> dict[str, object]:
    """`code` in a new interpreter; it prints one JSON object last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_known_name_is_the_object_the_real_package_exports() -> None:
    # Given the real packages, imported whole before hostrelay.api (so nothing is deferred)
    report = run_fresh(
        """
        import importlib, json
        import aws_lambda_powertools.event_handler as handler
        import aws_lambda_powertools.utilities.data_classes as events
        from hostrelay.api import EVENT_CLASS_NAMES, EVENT_HANDLER_NAMES
        wrong = [
            name
            for package, names in ((handler, EVENT_HANDLER_NAMES), (events, EVENT_CLASS_NAMES))
            for name, source in names.items()
            if getattr(package, name) is not getattr(importlib.import_module(source), name)
        ]
        print(json.dumps({"wrong": wrong, "handler_all": sorted(handler.__all__)}))
        """
    )
    # Then each name the maps send to a submodule is the very object the package exports
    assert report["wrong"] == []
    assert "APIGatewayHttpResolver" in report["handler_all"]  # type: ignore[operator]


def test_a_name_the_api_does_not_use_loads_the_whole_package_and_is_the_same_object() -> None:
    # Given hostrelay.api imported first (the packages deferred) and the API's resolver
    report = run_fresh(
        """
        import json, sys
        import hostrelay.api.app
        import aws_lambda_powertools.event_handler as handler
        before = "aws_lambda_powertools.event_handler.appsync" in sys.modules
        # When code asks the package for a resolver the API does not use
        from aws_lambda_powertools.event_handler import AppSyncResolver, APIGatewayHttpResolver
        from aws_lambda_powertools.event_handler.appsync import AppSyncResolver as direct
        from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver as http
        missing = [name for name in handler.__all__ if not hasattr(handler, name)]
        print(json.dumps({
            "before": before,
            "same": AppSyncResolver is direct and APIGatewayHttpResolver is http,
            "missing": missing,
        }))
        """
    )
    # Then it was not loaded before, and now is: every exported name is there, once
    assert report == {"before": False, "same": True, "missing": []}


def make_package(root: Path) -> str:
    """A package whose __init__ re-exports its submodules and counts its own runs."""
    package = root / "heavy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import builtins\n"
        "builtins.heavy_pkg_inits = getattr(builtins, 'heavy_pkg_inits', 0) + 1\n"
        "from heavy_pkg.light import Light\n"
        "from heavy_pkg.heavy import Heavy\n"
    )
    (package / "light.py").write_text("class Light: ...\n")
    (package / "heavy.py").write_text("class Heavy: ...\n")
    (package / "other.py").write_text("VALUE = 1\n")
    return "heavy_pkg"


@pytest.fixture
def deferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import builtins

    name = make_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "heavy_pkg_inits", 0, raising=False)
    defer_package_init(name, {"Light": f"{name}.light"})
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def inits() -> int:
    import builtins

    return int(builtins.heavy_pkg_inits)  # type: ignore[attr-defined]


def test_submodules_and_known_names_import_without_the_init(deferred: str) -> None:
    # When a submodule, a submodule by `from package import`, and a known name are imported
    from heavy_pkg import Light, other  # type: ignore[import-not-found]
    from heavy_pkg.light import Light as direct  # type: ignore[import-not-found]

    # Then they are the submodules' own objects, and the package's __init__ has not run
    assert Light is direct
    assert other.VALUE == 1
    assert inits() == 0
    assert "heavy_pkg.heavy" not in sys.modules


def test_any_other_name_runs_the_init_once(deferred: str) -> None:
    # When a name the map does not know is asked for, twice
    from heavy_pkg import Heavy  # type: ignore[import-not-found]
    from heavy_pkg import Heavy as again  # type: ignore[import-not-found]
    from heavy_pkg.heavy import Heavy as direct  # type: ignore[import-not-found]

    # Then the __init__ ran once and served it; a name nobody defines is an ImportError
    assert Heavy is again is direct
    assert inits() == 1
    with pytest.raises(ImportError):
        from heavy_pkg import Nothing  # type: ignore[import-not-found] # noqa: F401
    assert inits() == 1


def test_an_already_imported_package_is_left_alone(deferred: str) -> None:
    # Given the package fully imported
    from heavy_pkg import Heavy  # type: ignore[import-not-found] # noqa: F401

    module = sys.modules[deferred]
    # When it is deferred again, Then nothing changes
    defer_package_init(deferred, {})
    assert sys.modules[deferred] is module
    assert inits() == 1
