"""moto's TransactWriteItems rolled back per touched item instead of per whole table."""

from __future__ import annotations

import copy
import functools
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# moto 5.2 backs up every table a transaction touches with copy.deepcopy(table), once per
# transaction item, before it applies anything. That costs O(items x table size) per call:
# with a few thousand jobs in the table a 3-item transaction took tens of milliseconds
# (bench/run_orchestration.py: a 200-target run 116 s against 36 s for 200 single jobs),
# the fleet bench's last scenario never ended once the fan-out scenarios had filled the
# jobs table, and the inventory apply crawled at 9-12 entities/s. DynamoDB itself undoes a
# cancelled transaction item by item; so does this: it keeps a deep copy (or "absent") of
# exactly the items the transaction names and puts back exactly those on any failure.
# moto's own loop still runs unchanged (conditions, cancellation reasons, the duplicate-key
# check); only its whole-table copy is made a no-op while it runs.

_transaction = threading.local()


@dataclass(frozen=True)
class _SavedItem:
    table: Any
    hash_value: Any
    range_value: Any
    item: Any  # a deep copy of the item before the transaction; None when it was absent
    bucket_existed: bool  # range-key tables: whether the hash key had any item before


def _table_deepcopy(table: Any, memo: dict[int, Any]) -> Any:
    """The live table inside a transaction (its touched items are saved apart), else a copy
    exactly as copy.deepcopy makes one of a plain object."""
    if getattr(_transaction, "live_tables", False):
        return table
    clone = object.__new__(type(table))
    memo[id(table)] = clone
    clone.__dict__.update(copy.deepcopy(table.__dict__, memo))
    return clone


def _key_values(backend: Any, table: Any, op_type: str, op: dict[str, Any]) -> Any:
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(attrs, dict):
        return None
    from moto.dynamodb.exceptions import MockValidationException

    try:
        return backend.get_keys_value(table, attrs)
    except (MockValidationException, ValueError, TypeError, KeyError, StopIteration):
        return None  # moto cannot read this key either: the item fails, nothing is written


def _save_touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[_SavedItem]:
    saved: list[_SavedItem] = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table: Any = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            keys = _key_values(backend, table, op_type, op)
            if keys is None:
                continue
            hash_value, range_value = keys
            if table.has_range_key:
                bucket = table.items.get(hash_value)
                current = bucket.get(range_value) if bucket is not None else None
                existed = bucket is not None
            else:
                current, existed = table.items.get(hash_value), True
            saved.append(
                _SavedItem(table, hash_value, range_value, copy.deepcopy(current), existed)
            )
    return saved


def _restore(saved: list[_SavedItem]) -> None:
    # Reversed: when a key is named twice (moto then refuses the transaction), the first
    # copy, taken before anything was applied, is the one that stays.
    for entry in reversed(saved):
        items = entry.table.items
        if not entry.table.has_range_key:
            if entry.item is None:
                items.pop(entry.hash_value, None)
            else:
                items[entry.hash_value] = entry.item
            continue
        bucket = items.get(entry.hash_value)
        if entry.item is not None:
            items.setdefault(entry.hash_value, {})[entry.range_value] = entry.item
        elif bucket is not None:
            bucket.pop(entry.range_value, None)
            if not bucket and not entry.bucket_existed:
                del items[entry.hash_value]


def _has_stream(backend: Any, transact_items: list[dict[str, Any]]) -> bool:
    for entry in transact_items:
        for op in entry.values():
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is not None and table.stream_shard is not None:
                return True
    return False


def roll_back_only_touched_items() -> None:
    """Patch moto's DynamoDB backend (idempotent; the caller checked the moto release)."""
    models: Any = importlib.import_module("moto.dynamodb.models")
    backend_class = models.DynamoDBBackend
    if getattr(backend_class.transact_write_items, "_per_item_rollback", False):
        return
    moto_transact: Callable[..., None] = backend_class.transact_write_items

    @functools.wraps(moto_transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if _has_stream(self, transact_items):
            # A stream record already sent cannot be taken back item by item: moto's copy
            # of the table (and its stream) stays the rollback there. No table of ours
            # has a stream.
            moto_transact(self, transact_items)
            return
        saved = _save_touched(self, transact_items)
        _transaction.live_tables = True
        try:
            moto_transact(self, transact_items)
        except BaseException:
            _restore(saved)
            raise
        finally:
            _transaction.live_tables = False

    transact_write_items._per_item_rollback = True  # type: ignore[attr-defined]
    models.Table.__deepcopy__ = _table_deepcopy
    backend_class.transact_write_items = transact_write_items
