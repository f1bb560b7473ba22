"""Registry of relay job handlers: job type → handler class, imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hostrelay_relay.handlers.base import Handler
    from hostrelay_relay.settings import RelaySettings

# Adding a job type: write handlers/<name>.py with a Handler subclass and add one line here.
HANDLERS: dict[str, str] = {
    "ping": "hostrelay_relay.handlers.ping:PingHandler",
    "macct.capture": "hostrelay_relay.handlers.macct_capture:MacctCaptureHandler",
    "macct.repair": "hostrelay_relay.handlers.macct_repair:MacctRepairHandler",
    "exec": "hostrelay_relay.handlers.exec:ExecHandler",
    "ldap.sync": "hostrelay_relay.handlers.ldap_sync:LdapSyncHandler",
    "ldap.group_members": "hostrelay_relay.handlers.ldap_group_members:LdapGroupMembersHandler",
    "connector.sync": "hostrelay_relay.handlers.connector_sync:ConnectorSyncHandler",
    "connector.group_members": (
        "hostrelay_relay.handlers.connector_group_members:ConnectorGroupMembersHandler"
    ),
}


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
            module_name, _, class_name = self._table[job_type].partition(":")
            handler_cls = getattr(importlib.import_module(module_name), class_name)
            handler = handler_cls(self._settings)
            self._loaded[job_type] = handler
        return handler
