"""One directory sync run: read (all, or only what changed), diff against state, emit, commit."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hostrelay_contract.dn import dn_key
from hostrelay_contract.jobs.ldap import LdapSyncParams
from hostrelay_relay.directory.batches import BatchCutter, InventoryBatch
from hostrelay_relay.directory.connection import LdapConnection, connection_spec, open_connection
from hostrelay_relay.directory.entities import (
    DirectoryEntry,
    EntryParser,
    MemberResolver,
    build_entity,
    entity_hash,
    serialise,
)
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.filters import all_of, any_of, check_filter
from hostrelay_relay.directory.flavors import FLAVORS, KINDS, Flavor, Kind, detect_flavor
from hostrelay_relay.directory.gc_pause import gc_paused
from hostrelay_relay.directory.state import KnownEntity, SyncState, SyncStateStore
from hostrelay_relay.directory.watermarks import (
    change_filter,
    context_csn,
    highest_usn,
    later_timestamp,
    next_since,
)
from hostrelay_relay.settings import LdapCredential, LdapSettings

log = logging.getLogger(__name__)

# Bump when the entity mapping changes: states written by older code then force a full sync.
MAPPING_VERSION = 1
IDS_PER_FILTER = 50

Progress = Callable[[int, int | None, str], None]


@dataclass(frozen=True)
class SyncSummary:
    """What a run did; becomes the job result."""

    connector: str
    mode: Literal["full", "incremental"]
    flavor: str
    created: int
    updated: int
    deleted: int
    unchanged: int
    total: int
    entries_read: int
    ids_scanned: int
    full_scan: bool
    batches: int
    duration_s: float
    watermark: str | None

    def to_result(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Run:
    """Mutable bookkeeping of one run."""

    connection: LdapConnection
    flavor: Flavor
    params: LdapSyncParams
    filters: dict[Kind, str]
    checkpoint: Callable[[], None]
    progress: Progress
    entries_read: int = 0
    ids_scanned: int = 0

    def search(
        self, kind: Kind, search_filter: str, attributes: list[str]
    ) -> Iterable[DirectoryEntry]:
        parser = EntryParser(self.flavor, kind)
        for page in self.connection.paged_search(
            self.params.base_dn, search_filter, attributes, self.params.page_size, self.checkpoint
        ):
            for dn, raw in page:
                entry = parser.parse(dn, raw)
                if entry is None:
                    continue
                if entry.ranged_members is not None:
                    self._complete_ranged(entry)
                yield entry
            self.entries_read += len(page)
            self.progress(self.entries_read, None, "reading directory")

    def _complete_ranged(self, entry: DirectoryEntry) -> None:
        assert entry.ranged_members is not None
        attribute, first = entry.ranged_members
        for values in self.connection.read_ranged(entry.dn, attribute, first):
            entry.member_dns.extend(value.decode("utf-8", "replace") for value in values)
        entry.ranged_members = None

    def read_kind(self, kind: Kind, extra_filter: str | None = None) -> Iterable[DirectoryEntry]:
        search_filter = self.filters[kind]
        if extra_filter is not None:
            search_filter = all_of(search_filter, extra_filter)
        return self.search(kind, search_filter, self.flavor.requested_attributes(kind))

    def read_ids(self, kind: Kind, ids: list[str]) -> Iterable[DirectoryEntry]:
        for start in range(0, len(ids), IDS_PER_FILTER):
            chunk = ids[start : start + IDS_PER_FILTER]
            yield from self.read_kind(kind, any_of(*(self.flavor.id_filter(i) for i in chunk)))

    def scan_ids(self) -> dict[str, Kind]:
        """Every id in scope, reading nothing but the id attribute."""
        live: dict[str, Kind] = {}
        id_attribute = self.flavor.id_attribute
        for kind in KINDS:
            for page in self.connection.paged_search(
                self.params.base_dn,
                self.filters[kind],
                [id_attribute],
                max(self.params.page_size, 1000),
                self.checkpoint,
            ):
                for _, raw in page:
                    values = raw.get(id_attribute) or next(
                        (v for k, v in raw.items() if k.lower() == id_attribute.lower()), None
                    )
                    if values:
                        live.setdefault(self.flavor.decode_id(values[0]), kind)
                self.ids_scanned += len(page)
        return live


def effective_filters(params: LdapSyncParams, flavor: Flavor) -> dict[Kind, str]:
    """The three search filters; operator-supplied ones must pass the strict RFC 4515 check."""
    given: dict[Kind, str | None] = {
        "user": params.user_filter,
        "group": params.group_filter,
        "ou": params.ou_filter,
    }
    filters: dict[Kind, str] = {}
    for kind, text in given.items():
        if text is None:
            filters[kind] = flavor.default_filters[kind]
            continue
        try:
            filters[kind] = check_filter(text)
        except DirectoryError as error:
            raise DirectoryError("ldap_filter", f"{kind}_filter: {error.message}") from None
    return filters


def _fingerprint(params: LdapSyncParams, url: str, flavor: Flavor, filters: dict[Kind, str]) -> str:
    # The URL is part of it: AD update sequence numbers are per domain controller.
    identity = {
        "mapping": MAPPING_VERSION,
        "url": url.rstrip("/").lower(),
        "base": dn_key(params.base_dn),
        "flavor": flavor.name,
        "filters": filters,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class _Inventory:
    """Resolves members, derives member_of and diffs the entities a run produced."""

    def __init__(self, old: dict[str, KnownEntity]) -> None:
        self.old = old
        self.resolver = MemberResolver()

    def group_members(self, entry: DirectoryEntry) -> list[str]:
        return self.resolver.resolve_all(entry.member_dns)

    def finish(
        self,
        entries: dict[str, DirectoryEntry],
        deleted: set[str],
        old_groups_by_member: dict[str, set[str]] | None,
        cutter: BatchCutter,
        checkpoint: Callable[[], None],
    ) -> tuple[dict[str, KnownEntity], dict[str, int]]:
        """Emit upserts for new/changed entities and deletes; return the new known map + counts."""
        members_of_group: dict[str, list[str]] = {}
        member_of: dict[str, list[str]] = defaultdict(list)
        for entity_id, entry in entries.items():
            if entry.kind == "group":
                members = self.group_members(entry)
                members_of_group[entity_id] = members
                for member in members:
                    member_of[member].append(entity_id)
        if old_groups_by_member is not None:
            # Incremental: groups not re-read this run still hold their previous members.
            for entity_id in entries:
                for group_id in old_groups_by_member.get(entity_id, ()):
                    if group_id not in entries and group_id not in deleted:
                        member_of[entity_id].append(group_id)
        known = {key: value for key, value in self.old.items() if key not in deleted}
        counts = {"created": 0, "updated": 0}
        for position, (entity_id, entry) in enumerate(entries.items()):
            group_members = members_of_group.get(entity_id) if entry.kind == "group" else None
            entity = build_entity(entry, group_members, sorted(member_of.get(entity_id, ())))
            data = serialise(entity)
            digest = entity_hash(data)
            previous = self.old.get(entity_id)
            known[entity_id] = KnownEntity(digest, entry.kind, entry.dn, group_members)
            if previous is not None and previous.hash == digest:
                continue
            counts["updated" if previous is not None else "created"] += 1
            cutter.upsert(entity, len(data))
            if position % 1000 == 0:
                checkpoint()
        for entity_id in sorted(deleted):
            if entity_id in self.old:
                cutter.delete(entity_id)
        cutter.flush()
        counts["deleted"] = sum(1 for entity_id in deleted if entity_id in self.old)
        return known, counts


def _old_groups_by_member(old: dict[str, KnownEntity]) -> dict[str, set[str]]:
    """member id (or lower-cased unresolved DN) → ids of the groups that listed it."""
    index: dict[str, set[str]] = defaultdict(set)
    for group_id, known in old.items():
        if known.members:
            for member in known.members:
                index[member.lower()].add(group_id)
    return index


def _full_read(run: _Run, inventory: _Inventory) -> tuple[dict[str, DirectoryEntry], str | None]:
    entries: dict[str, DirectoryEntry] = {}
    newest: str | None = None
    for kind in KINDS:
        for entry in run.read_kind(kind):
            if entry.id in entries:
                continue  # matched two kinds' filters: the first kind wins
            entries[entry.id] = entry
            inventory.resolver.add(entry.dn, entry.id)
            newest = later_timestamp(newest, entry.change_marker)
    return entries, newest


class _ChangeReader:
    """Reads what changed since the watermark, then whatever those changes touch.

    Touched means: groups that list a deleted or renamed entry (or name a new entry's DN), and
    members that joined or left a changed group — their member_of changed although their own
    change marker did not move.
    """

    def __init__(
        self,
        run: _Run,
        inventory: _Inventory,
        state: SyncState,
        by_member: dict[str, set[str]],
    ) -> None:
        self.run = run
        self.resolver = inventory.resolver
        self.group_members = inventory.group_members
        self.state = state
        self.old = state.entities
        self.by_member = by_member
        self.entries: dict[str, DirectoryEntry] = {}
        self.deleted: set[str] = set()
        self.touched: set[str] = set()
        self.kind_of: dict[str, Kind] = {key: known.kind for key, known in self.old.items()}
        self.newest: str | None = None
        for known_id, known in self.old.items():
            self.resolver.add(known.dn, known_id)

    def read(self, scan: bool) -> tuple[dict[str, DirectoryEntry], set[str], str | None]:
        changed_since = change_filter(self.run.flavor, self.state)
        for kind in KINDS:
            for entry in self.run.read_kind(kind, changed_since):
                self.take(entry)
        if scan:
            self.scan()
        diffed: set[str] = set()
        while True:
            for entity_id, entry in list(self.entries.items()):
                if entry.kind == "group" and entity_id not in diffed:
                    diffed.add(entity_id)
                    self.diff_members(entity_id, entry)
            pending = sorted(self.touched - self.entries.keys() - self.deleted)
            self.touched.clear()
            if not pending:
                return self.entries, self.deleted, self.newest
            self.read_again(pending)

    def take(self, entry: DirectoryEntry) -> None:
        if entry.id in self.entries:
            return
        self.entries[entry.id] = entry
        self.newest = later_timestamp(self.newest, entry.change_marker)
        previous = self.old.get(entry.id)
        if previous is None or previous.dn.lower() != entry.dn.lower():
            if previous is not None:
                self.touched.update(self.by_member.get(entry.id, ()))
                self.resolver.discard(previous.dn)
            self.touched.update(self.by_member.get(entry.dn.lower(), ()))
        self.resolver.add(entry.dn, entry.id)

    def drop(self, entity_id: str) -> None:
        self.deleted.add(entity_id)
        previous = self.old.get(entity_id)
        if previous is None:
            return
        self.touched.update(self.by_member.get(entity_id, ()))
        self.touched.update(member for member in previous.members or () if member in self.old)
        self.resolver.discard(previous.dn)

    def scan(self) -> None:
        live = self.run.scan_ids()
        for entity_id in self.old:
            if entity_id not in live and entity_id not in self.entries:
                self.drop(entity_id)
        for entity_id, kind in live.items():
            if entity_id not in self.old and entity_id not in self.entries:
                # It came into scope without its change marker moving: read it.
                self.kind_of[entity_id] = kind
                self.touched.add(entity_id)

    def diff_members(self, entity_id: str, entry: DirectoryEntry) -> None:
        previous = self.old.get(entity_id)
        before = set(previous.members or ()) if previous is not None else set()
        after = set(self.group_members(entry))
        self.touched.update(m for m in before ^ after if m in self.old or m in self.entries)

    def read_again(self, pending: list[str]) -> None:
        for kind in KINDS:
            wanted = [entity_id for entity_id in pending if self.kind_of.get(entity_id) == kind]
            found: set[str] = set()
            for entry in self.run.read_ids(kind, wanted):
                found.add(entry.id)
                self.take(entry)
            for entity_id in wanted:
                if entity_id not in found:
                    self.drop(entity_id)


def _resolve_flavor(params: LdapSyncParams, connection: LdapConnection) -> Flavor:
    if params.flavor != "auto":
        return FLAVORS[params.flavor]
    capabilities = connection.root_dse(["supportedCapabilities"]).get("supportedCapabilities", [])
    return detect_flavor(capabilities)


def _handing_over(
    emit_batch: Callable[[InventoryBatch], None],
    checkpoint: Callable[[], None],
    progress: Progress,
) -> Callable[[InventoryBatch], None]:
    def hand_over(batch: InventoryBatch) -> None:
        checkpoint()
        emit_batch(batch)
        progress(batch.seq + 1, None, "publishing inventory")

    return hand_over


def _no_checkpoint() -> None:
    return None


def _no_progress(done: int, total: int | None, message: str) -> None:
    return None


def sync_directory(
    params: LdapSyncParams,
    credential: LdapCredential,
    state_store: SyncStateStore,
    emit_batch: Callable[[InventoryBatch], None],
    *,
    settings: LdapSettings | None = None,
    checkpoint: Callable[[], None] = _no_checkpoint,
    progress: Progress = _no_progress,
) -> SyncSummary:
    """Sync one connector. State is committed only after every batch was handed to emit_batch,
    so a run that fails anywhere leaves the state as it was and the next run redoes the work."""
    started = time.monotonic()
    settings = settings or LdapSettings()
    if params.flavor != "auto":
        effective_filters(params, FLAVORS[params.flavor])  # a bad filter fails before any I/O
    spec = connection_spec(params, credential, settings)
    with state_store.locked(params.connector), gc_paused():
        with open_connection(spec, settings.client) as connection:
            client = connection.client_name
            flavor = _resolve_flavor(params, connection)
            filters = effective_filters(params, flavor)
            fingerprint = _fingerprint(params, spec.url, flavor, filters)
            state = state_store.load(params.connector)
            usable = state is not None and state.fingerprint == fingerprint and state.watermark
            if params.mode == "incremental" and not usable:
                raise DirectoryError(
                    "ldap_no_state",
                    f"connector {params.connector!r} has no full sync with these settings yet;"
                    " run it with mode 'full' or 'auto' first",
                )
            # Read the exact watermark (AD: USN, OpenLDAP: contextCSN) before searching: changes
            # made during the search come after it and are read again next time.
            exact_watermark = (
                highest_usn(connection)
                if flavor.name == "ad"
                else context_csn(connection, params.base_dn)
            )
            read_started, read_started_wall = time.monotonic(), time.time()
            run = _Run(connection, flavor, params, filters, checkpoint, progress)
            old = state.entities if state is not None else {}
            inventory = _Inventory(old)
            groups_by_member: dict[str, set[str]] | None = None
            if state is not None and usable and params.mode != "full":
                incremental, runs_since_scan = True, state.runs_since_scan + 1
                scan = runs_since_scan >= params.full_scan_every
                groups_by_member = _old_groups_by_member(old)
                reader = _ChangeReader(run, inventory, state, groups_by_member)
                entries, deleted, newest = reader.read(scan)
            else:
                incremental, runs_since_scan, scan = False, 0, True
                entries, newest = _full_read(run, inventory)
                deleted = set(old) - entries.keys()
            read_s = time.monotonic() - read_started
        cutter = BatchCutter(_handing_over(emit_batch, checkpoint, progress))
        known, counts = inventory.finish(entries, deleted, groups_by_member, cutter, checkpoint)
        watermark = exact_watermark or next_since(
            newest,
            state.watermark if incremental and state is not None else None,
            read_started_wall,
            read_s,
            settings.clock_skew_s,
        )
        state_store.save(
            params.connector,
            SyncState(
                fingerprint=fingerprint,
                flavor=flavor.name,
                watermark=watermark,
                runs_since_scan=0 if scan else runs_since_scan,
                entities=known,
            ),
        )
    summary = SyncSummary(
        connector=params.connector,
        mode="incremental" if incremental else "full",
        flavor=flavor.name,
        created=counts["created"],
        updated=counts["updated"],
        deleted=counts["deleted"],
        unchanged=len(known) - counts["created"] - counts["updated"],
        total=len(known),
        entries_read=run.entries_read,
        ids_scanned=run.ids_scanned,
        full_scan=scan,
        batches=cutter.batches,
        duration_s=round(time.monotonic() - started, 3),
        watermark=watermark,
    )
    log.info(
        "directory sync finished",
        extra={
            "connector": params.connector,
            "mode": summary.mode,
            "batches": summary.batches,
            "client": client,
        },
    )
    return summary
