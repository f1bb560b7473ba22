"""The one place that touches PynamoDB's private connection API (see each function for why)."""

from __future__ import annotations

from pynamodb.connection.table import TableConnection
from pynamodb.models import Model


def table_connection(model: type[Model]) -> TableConnection:
    """The low-level connection of `model`'s table.

    PynamoDB has no public way to run a query whose items are not parsed into the model (the
    output store checks items AWS IoT wrote itself) or an update that returns the old item
    (`Model.update` asks only for ALL_NEW); both need this connection. A `TransactWrite` takes
    its `.connection`, which models expose no other way.
    """
    return model._get_connection()


def forget_connection(model: type[Model]) -> None:
    """Drop `model`'s cached connection, which holds the table name and region it was first
    used with: the next call connects to the table its Meta names now."""
    model._connection = None
