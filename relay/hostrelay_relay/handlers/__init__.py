"""Registry of relay job handlers: job type → handler class, imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hostrelay_contract.job_types import host_job_types

if TYPE_CHECKING:
    from hostrelay_relay.handlers.base import Handler
    from hostrelay_relay.settings import RelaySettings

# Every host job type of the contract has its handler in handlers/<name, '_' for '.'>.py;
# a test checks each module holds a Handler of its type.
HANDLERS: dict[str, str] = {
    name: f"hostrelay_relay.handlers.{name.replace('.', '_')}" for name in host_job_types()
}


def handler_class(job_type: str, where: str) -> type[Handler[Any]]:
    """The Handler subclass for `job_type` in module `where` ("module" or "module:Class")."""
    from hostrelay_relay.handlers.base import Handler

    module_name, _, class_name = where.partition(":")
    module = importlib.import_module(module_name)
    if class_name:
        found: type[Handler[Any]] = getattr(module, class_name)
        return found
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Handler)
            and getattr(value, "type", None) == job_type
        ):
            return value
    raise LookupError(f"{module_name} has no handler of type {job_type!r}")


class HandlerRegistry:
    """Instantiates each handler once, the first time its job type arrives."""

    def __init__(self, settings: RelaySettings, table: dict[str, str] | None = None) -> None:
        self._settings = settings
        self._table = HANDLERS if table is None else table
        self._loaded: dict[str, Handler[Any]] = {}

    def known(self, job_type: str) -> bool:
        return job_type in self._table

    def get(self, job_type: str) -> Handler[Any]:
        handler = self._loaded.get(job_type)
        if handler is None:
            handler = handler_class(job_type, self._table[job_type])(self._settings)
            self._loaded[job_type] = handler
        return handler
