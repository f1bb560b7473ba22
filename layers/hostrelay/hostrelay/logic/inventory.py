"""Apply inventory batches idempotently, and read the inventory back (lists, relations, counts).

Ordering rule: every batch carries the moment it was observed (`seen`). An upsert never
overwrites an observation newer than its own and a delete never hides a later upsert, so
re-delivered and reordered batches converge on the same state.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from hostrelay.clock import utcnow
from hostrelay.dal.connectors_repo import ConnectorRepository
from hostrelay.dal.inventory_repo import MAX_TRANSACTION_ITEMS, GuardedWrite, InventoryRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.connectors import (
    RELAY_SYNC_JOB,
    SELF_HOSTED_KINDS,
    ConnectorKind,
)
from hostrelay.domain.errors import NotFound, StaleWrite
from hostrelay.domain.inventory import (
    LDAP_KINDS,
    MEMBER_OF,
    MEMBERS,
    ApplyReport,
    EntitySummary,
    EntityUpsert,
    InventoryChanges,
    InventoryCount,
    InventoryEntity,
    MemberPage,
    RelatedEntity,
    StoredItem,
    Tombstone,
)
from hostrelay.observability import logger
from hostrelay_contract.inventory import InventoryBody, InventoryUpsert
from hostrelay_sources.kinds import ENTITY_KINDS

if TYPE_CHECKING:  # the API and discovery never parse relay events: keep their cold start lean
    from hostrelay_contract.events import InventoryEvent

Outcome = Literal["created", "updated", "unchanged", "deleted", "stale", "tombstone"]
# Counter deltas per kind: (active, deleted).
CountDeltas = dict[str, list[int]]
MAX_RELATED = 500
# Rounds of read-decide-write a batch gets against concurrent writers before SQS retries it.
MAX_APPLY_ROUNDS = 5
RETRY_PAUSE_S = 0.02


# ---------------------------------------------------------------- the relay's wire shape


def changes_from_relay(
    body: InventoryBody, allowed_kinds: frozenset[str] = LDAP_KINDS
) -> tuple[InventoryChanges, int]:
    """Normalise a relay batch; returns (changes, number of upserts that were unreadable)."""
    changes = InventoryChanges(deletes=list(body.deletes))
    rejected = 0
    for raw in body.upserts:
        try:
            entity = InventoryUpsert.model_validate(raw)
        except ValidationError:
            rejected += 1
            continue
        if entity.kind not in allowed_kinds:
            rejected += 1
            continue
        page = entity.members_page
        if page is not None and page.index > 0:
            changes.pages.append(
                MemberPage(
                    id=entity.id,
                    kind=entity.kind,
                    index=page.index,
                    count=page.count,
                    members=entity.members or [],
                )
            )
            continue
        relations: dict[str, list[str]] = {MEMBER_OF: entity.member_of}
        if entity.members is not None:
            relations[MEMBERS] = entity.members
        changes.upserts.append(
            EntityUpsert(
                id=entity.id,
                kind=entity.kind,
                name=entity.name or entity.dn or entity.id,
                dn=entity.dn,
                attributes=entity.attributes,
                relations=relations,
                member_pages=page.count if page is not None and page.count > 1 else None,
            )
        )
    return changes, rejected


# ---------------------------------------------------------------- deciding one change


def _entity(
    connector: str, upsert: EntityUpsert, first_seen: datetime, seen: datetime
) -> InventoryEntity:
    return InventoryEntity(
        id=upsert.id,
        connector=connector,
        kind=upsert.kind,
        name=upsert.name,
        dn=upsert.dn,
        attributes=upsert.attributes,
        relations=upsert.relations,
        member_pages=upsert.member_pages,
        first_seen=first_seen,
        last_seen=seen,
    )


def decide_upsert(
    old: StoredItem | None, connector: str, upsert: EntityUpsert, seen: datetime
) -> tuple[InventoryEntity | None, Outcome]:
    """The entity to store for `upsert` (None: nothing to write) and what that means."""
    if old is None:
        return _entity(connector, upsert, seen, seen), "created"
    if isinstance(old, Tombstone):
        if old.deleted_at >= seen:
            return None, "stale"
        return _entity(connector, upsert, seen, seen), "created"
    if old.last_seen > seen or (old.deleted_at is not None and old.deleted_at >= seen):
        return None, "stale"
    new = _entity(connector, upsert, min(old.first_seen, seen), seen)
    if old.deleted_at is not None:
        return new, "created"
    if old.same_content(upsert):
        # An exact replay changes nothing; a new observation only moves last_seen.
        return (None if old.last_seen == seen else new), "unchanged"
    return new, "updated"


def decide_delete(
    old: StoredItem | None, connector: str, entity_id: str, seen: datetime
) -> tuple[StoredItem | None, Outcome]:
    if old is None:
        return Tombstone(id=entity_id, connector=connector, deleted_at=seen), "tombstone"
    if isinstance(old, Tombstone) or old.deleted_at is not None:
        return None, "unchanged"
    if old.last_seen > seen:
        return None, "stale"
    return old.model_copy(update={"deleted_at": seen}), "deleted"


def _count(
    deltas: CountDeltas, outcome: Outcome, old: StoredItem | None, new_kind: str | None
) -> None:
    old_entity = old if isinstance(old, InventoryEntity) else None
    if outcome == "deleted" and old_entity is not None:
        deltas[old_entity.kind][0] -= 1
        deltas[old_entity.kind][1] += 1
    elif outcome in ("created", "updated") and new_kind is not None:
        if old_entity is not None and old_entity.deleted_at is None:
            deltas[old_entity.kind][0] -= 1
        elif old_entity is not None:
            deltas[old_entity.kind][1] -= 1
        deltas[new_kind][0] += 1


def _tally(report: ApplyReport, outcome: Outcome) -> None:
    if outcome == "created":
        report.created += 1
    elif outcome == "updated":
        report.updated += 1
    elif outcome == "deleted":
        report.deleted += 1
    elif outcome == "stale":
        report.stale += 1
    elif outcome == "unchanged":
        report.unchanged += 1


@dataclass(frozen=True)
class _Change:
    """One entity of a batch: an upsert, or (upsert None) a delete."""

    id: str
    upsert: EntityUpsert | None


@dataclass(frozen=True)
class _Decision:
    change: _Change
    outcome: Outcome
    write: GuardedWrite | None
    deltas: CountDeltas


def _decide(connector: str, change: _Change, old: StoredItem | None, seen: datetime) -> _Decision:
    deltas: CountDeltas = defaultdict(lambda: [0, 0])
    item: StoredItem | None
    if change.upsert is not None:
        item, outcome = decide_upsert(old, connector, change.upsert, seen)
        _count(deltas, outcome, old, change.upsert.kind)
    else:
        item, outcome = decide_delete(old, connector, change.id, seen)
        _count(deltas, outcome, old, None)
    write = GuardedWrite(item=item, read=old) if item is not None else None
    return _Decision(change, outcome, write, deltas)


def _sum_deltas(decisions: Iterable[_Decision]) -> dict[str, tuple[int, int]]:
    total: CountDeltas = defaultdict(lambda: [0, 0])
    for decision in decisions:
        for kind, (active, deleted) in decision.deltas.items():
            total[kind][0] += active
            total[kind][1] += deleted
    return {kind: (active, deleted) for kind, (active, deleted) in total.items()}


def _transactions(decisions: list[_Decision]) -> Iterator[list[_Decision]]:
    """Decisions packed so that each part's items plus its counters fit one transaction."""
    part: list[_Decision] = []
    kinds: set[str] = set()
    for decision in decisions:
        more = kinds | set(decision.deltas)
        if part and len(part) + 1 + len(more) > MAX_TRANSACTION_ITEMS:
            yield part
            part, more = [], set(decision.deltas)
        part.append(decision)
        kinds = more
    if part:
        yield part


# ---------------------------------------------------------------- applying batches


class InventoryService:
    """Applies changes: `batched` reads with BatchGetItem and writes conditional
    TransactWriteItems (up to 100 items a call); otherwise one conditional UpdateItem per
    entity."""

    def __init__(self, repo: InventoryRepository, *, batched: bool = True) -> None:
        self._repo = repo
        self._batched = batched

    def apply(self, connector: str, changes: InventoryChanges, seen: datetime) -> ApplyReport:
        deletes = list(dict.fromkeys(changes.deletes))
        deleted = set(deletes)
        # The last upsert of an id in a batch wins; a delete in the same batch wins over it.
        upserts = list({u.id: u for u in changes.upserts if u.id not in deleted}.values())
        if self._batched:
            return self._apply_batched(connector, upserts, changes.pages, deletes, seen)
        return self._apply_one_by_one(connector, upserts, changes.pages, deletes, seen)

    def _apply_batched(
        self,
        connector: str,
        upserts: list[EntityUpsert],
        pages: list[MemberPage],
        deletes: list[str],
        seen: datetime,
    ) -> ApplyReport:
        """Read all, decide, then write in transactions of up to 100 items, each item on
        condition it is still what was read, with the counter changes those writes make.
        Two containers applying overlapping batches cannot lose an update or count one
        twice: the later transaction fails, and its part is read and decided again."""
        report = ApplyReport()
        changes = [_Change(u.id, u) for u in upserts] + [_Change(d, None) for d in deletes]
        pending = changes
        for round_ in range(MAX_APPLY_ROUNDS):
            if not pending:
                break
            if round_:
                # Containers that collided on the same items (or counters) retry apart.
                time.sleep(random.uniform(0, RETRY_PAUSE_S * 2**round_))  # noqa: S311 - jitter
            stored = self._repo.read(connector, [c.id for c in pending])
            decided = [_decide(connector, c, stored.get(c.id), seen) for c in pending]
            for decision in decided:
                if decision.write is None:
                    _tally(report, decision.outcome)
            writes = [d for d in decided if d.write is not None]
            pending = []
            for part in _transactions(writes):
                try:
                    self._repo.write_guarded(
                        connector, [d.write for d in part if d.write], _sum_deltas(part)
                    )
                except StaleWrite:
                    pending.extend(d.change for d in part)  # changed meanwhile: decide again
                    continue
                for decision in part:
                    _tally(report, decision.outcome)
                report.writes += len(part)
        if pending:
            raise StaleWrite(f"inventory of {connector} keeps changing; the batch is retried")
        report.writes += self._repo.write_pages(
            (p.id, connector, p.index, p.members, seen) for p in pages
        )
        return report

    def _apply_one_by_one(
        self,
        connector: str,
        upserts: list[EntityUpsert],
        pages: list[MemberPage],
        deletes: list[str],
        seen: datetime,
    ) -> ApplyReport:
        report = ApplyReport()
        deltas: CountDeltas = defaultdict(lambda: [0, 0])
        for upsert in upserts:
            new = _entity(connector, upsert, seen, seen)
            try:
                old = self._repo.upsert_one(new)
            except StaleWrite:
                _tally(report, "stale")
                continue
            report.writes += 1
            outcome: Outcome
            if not isinstance(old, InventoryEntity) or old.deleted_at is not None:
                outcome = "created"
            elif old.same_content(upsert):
                outcome = "unchanged"
            else:
                outcome = "updated"
            _tally(report, outcome)
            _count(deltas, outcome, old, upsert.kind)
        for entity_id in deletes:
            try:
                old = self._repo.delete_one(entity_id, connector, seen)
            except StaleWrite:
                _tally(report, "unchanged")
                continue
            report.writes += 1
            if isinstance(old, InventoryEntity):
                _tally(report, "deleted")
                _count(deltas, "deleted", old, None)
        for page in pages:
            self._repo.write_page(page.id, connector, page.index, page.members, seen)
            report.writes += 1
        self._repo.add_counts(connector, {k: (v[0], v[1]) for k, v in deltas.items()})
        return report

    def live(self, connector: str, ids: Iterable[str]) -> dict[str, InventoryEntity]:
        """The connector's stored, not deleted, entities among `ids`."""
        return {
            entity_id: item
            for entity_id, item in self._repo.read(connector, ids).items()
            if isinstance(item, InventoryEntity) and item.active
        }

    def apply_all(
        self,
        connector: str,
        changes: InventoryChanges,
        seen: datetime,
        *,
        chunk: int = 500,
    ) -> ApplyReport:
        """Changes of any size (an incremental run's), applied `chunk` entities at a time."""
        report = ApplyReport()
        for start in range(0, len(changes.upserts), chunk):
            part = InventoryChanges(upserts=changes.upserts[start : start + chunk])
            report.add(self.apply(connector, part, seen))
        for start in range(0, len(changes.deletes), chunk):
            part = InventoryChanges(deletes=changes.deletes[start : start + chunk])
            report.add(self.apply(connector, part, seen))
        return report

    def replace_all(
        self,
        connector: str,
        upserts: list[EntityUpsert],
        seen: datetime,
        *,
        complete_kinds: Iterable[str],
        chunk: int = 500,
    ) -> ApplyReport:
        """A full snapshot: apply `upserts`, then delete live entities of `complete_kinds`
        (kinds read without error everywhere) that the snapshot no longer has."""
        report = self.apply_all(connector, InventoryChanges(upserts=upserts), seen, chunk=chunk)
        gone = self._gone(connector, upserts, set(complete_kinds), report)
        report.add(self.apply_all(connector, InventoryChanges(deletes=gone), seen, chunk=chunk))
        return report

    def _gone(
        self, connector: str, upserts: list[EntityUpsert], complete: set[str], report: ApplyReport
    ) -> list[str]:
        """Live entities of `complete` kinds that the applied snapshot `upserts` lacks.

        When no upsert lost to a newer observation, every snapshot entity is now live; if the
        kinds' live counters then hold exactly the snapshot's entities, nothing else is live
        and the listing of every live entity (the costly part of a run that changed
        nothing) is skipped."""
        kinds = {u.id: u.kind for u in upserts}  # the last upsert of an id wins, as in apply
        if report.stale == 0:
            live = self._repo.active_counts(connector)
            expected = Counter(kind for kind in kinds.values() if kind in complete)
            if all(live.get(kind, 0) == expected[kind] for kind in complete):
                return []
        return [
            entity_id
            for entity_id, kind in self._repo.live_ids(connector)
            if kind in complete and entity_id not in kinds
        ]


# ---------------------------------------------------------------- relay events → inventory


def seen_moment(sent_at: float, now: datetime | None = None) -> datetime:
    """When the relay observed a batch; never in the future (a fast relay clock)."""
    now = now or utcnow()
    if sent_at <= 0:
        return now
    return min(datetime.fromtimestamp(sent_at, UTC), now)


def relay_inventory(kind: ConnectorKind) -> tuple[str, frozenset[str]] | None:
    """(the job type whose inventory events a relay sends, the entity kinds they may hold)
    for connectors of `kind` that a relay runs; None for the others."""
    if kind is ConnectorKind.LDAP:
        return "ldap.sync", LDAP_KINDS
    if kind in SELF_HOSTED_KINDS:
        return RELAY_SYNC_JOB, ENTITY_KINDS[kind.value]
    return None


class InventorySink:
    """The results function's hook for `inventory` events of ldap.sync and connector.sync jobs.

    The ingester has already checked that the job is this host's; here the batch must also
    name the job's own connector, and that connector must target this host.
    """

    def __init__(
        self, connectors: ConnectorRepository, jobs: JobRepository, inventory: InventoryService
    ) -> None:
        self._connectors = connectors
        self._jobs = jobs
        self._inventory = inventory

    def __call__(self, host: str, event: InventoryEvent) -> None:
        self.apply(host, event)

    def apply(self, host: str, event: InventoryEvent) -> str:
        """Apply one `inventory` event (its shape already checked by the contract's model)."""
        connector = self._connectors.find(event.connector)
        served = relay_inventory(connector.kind) if connector is not None else None
        if connector is None or served is None or connector.target != host:
            logger.warning(
                "inventory for a connector this host does not serve",
                extra={"host": host, "connector": event.connector, "job_id": event.job_id},
            )
            return "foreign"
        try:
            job = self._jobs.get(event.job_id)
        except NotFound:
            return "unknown_job"
        # A run the connector started, or a sync job made by hand for this connector.
        job_type, allowed_kinds = served
        if (
            job.type != job_type
            or (job.connector_id or job.params.get("connector")) != connector.id
        ):
            logger.warning(
                "inventory for another connector than the job's",
                extra={"host": host, "connector": event.connector, "job_id": event.job_id},
            )
            return "foreign"
        changes, rejected = changes_from_relay(event, allowed_kinds)
        report = self._inventory.apply(connector.id, changes, seen_moment(event.sent_at))
        logger.info(
            "inventory batch applied",
            extra={
                "host": host,
                "connector": connector.id,
                "job_id": job.id,
                "seq": event.seq,
                "rejected": rejected,
                "counts": report.counts(),
                "stale": report.stale,
            },
        )
        return "applied"


# ---------------------------------------------------------------- reading the inventory


@dataclass(frozen=True)
class Relation:
    name: str
    total: int
    items: list[RelatedEntity]


@dataclass(frozen=True)
class EntityDetail:
    entity: InventoryEntity
    relations: list[Relation]


class InventoryQueries:
    def __init__(
        self, repo: InventoryRepository, connector_ids: Callable[[], Iterable[str]]
    ) -> None:
        self._repo = repo
        self._connector_ids = connector_ids

    def search(
        self,
        *,
        kind: str | None,
        connector: str | None,
        q: str | None,
        include_deleted: bool,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> tuple[list[EntitySummary], dict[str, Any] | None]:
        return self._repo.list(
            kind=kind,
            connector=connector,
            name_prefix=q,
            include_deleted=include_deleted,
            limit=limit,
            start_key=start_key,
        )

    def get(self, entity_id: str, connector: str | None = None) -> EntityDetail:
        """An entity with its relations resolved (up to MAX_RELATED per relation)."""
        found = self._repo.find(entity_id, connector)
        if not found:
            raise NotFound(f"entity {entity_id} not found")
        # Prefer what a connector still sees over what another one deleted.
        entity = sorted(found, key=lambda e: (e.deleted_at is not None, e.connector))[0]
        relations = dict(entity.relations)
        if entity.member_pages:
            pages = self._repo.member_pages(entity.id, entity.connector, entity.member_pages)
            relations[MEMBERS] = [*relations.get(MEMBERS, []), *(m for p in pages for m in p)]
            entity = entity.model_copy(update={"relations": relations})
        resolved = []
        for name, ids in sorted(relations.items()):
            shown = ids[:MAX_RELATED]
            known = self._repo.related(entity.connector, shown) if shown else {}
            resolved.append(
                Relation(
                    name=name,
                    total=len(ids),
                    items=[known.get(i) or RelatedEntity(id=i) for i in shown],
                )
            )
        return EntityDetail(entity=entity, relations=resolved)

    def counts(self) -> list[InventoryCount]:
        counts = self._repo.counts(self._connector_ids())
        return sorted(
            (c for c in counts if c.active or c.deleted), key=lambda c: (c.connector, c.kind)
        )
