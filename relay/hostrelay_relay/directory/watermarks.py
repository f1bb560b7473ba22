"""Change tracking: which entries a run must read again (AD USN, OpenLDAP CSN or timestamp)."""

from __future__ import annotations

import datetime as dt
import math
import re

from hostrelay_contract.dn import is_within
from hostrelay_relay.directory.connection import LdapConnection
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.directory.flavors import Flavor
from hostrelay_relay.directory.state import SyncState

EPOCH_WATERMARK = "19700101000000Z"
_GENERALIZED_TIME = re.compile(r"\d{14}(?:[.,]\d+)?Z")
# OpenLDAP change sequence number: time.micros Z # count # server id # modifier.
_CSN = re.compile(r"\d{14}\.\d{6}Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}")


def change_filter(flavor: Flavor, state: SyncState) -> str:
    """The filter for entries changed since the last committed run."""
    watermark = state.watermark or EPOCH_WATERMARK
    if flavor.name == "ad":
        if not watermark.isdigit():
            raise DirectoryError("ldap_state", "stored AD watermark is not a USN; run a full sync")
        return f"(uSNChanged>={int(watermark) + 1})"
    if _CSN.fullmatch(watermark):
        # Strictly after: entryCSN has an ordering rule but no ">" operator in LDAP filters.
        return f"(!(entryCSN<={watermark}))"
    if _GENERALIZED_TIME.fullmatch(watermark) is None:
        raise DirectoryError("ldap_state", "stored watermark is not a timestamp; run a full sync")
    return f"({flavor.change_attribute}>={watermark})"


def epoch_seconds(stamp: str) -> float:
    moment = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def next_since(
    newest: str | None, previous: str | None, started_wall: float, read_s: float, skew_s: float
) -> str:
    """The modifyTimestamp the next run reads from (inclusive).

    A change made while this run searched may have been missed; it carries a timestamp no
    older than the search start, which is (a) at most `read_s` before the newest timestamp this
    run saw and (b) after the relay's clock at the start minus the allowed clock skew.
    """
    candidates = [started_wall - skew_s]
    if newest is not None:
        candidates.append(epoch_seconds(newest) - math.ceil(read_s) - 1)
    if previous is not None:
        candidates.append(epoch_seconds(previous))
    since = dt.datetime.fromtimestamp(max(candidates), dt.timezone.utc)
    return since.strftime("%Y%m%d%H%M%SZ")


def highest_usn(connection: LdapConnection) -> str:
    """AD's current update sequence number, read before a run searches."""
    values = connection.root_dse(["highestCommittedUSN"]).get("highestCommittedUSN") or [b""]
    text = values[0].decode("ascii", "replace")
    if not text.isdigit():
        raise DirectoryError("ldap_error", "the server's root DSE has no highestCommittedUSN")
    return text


def later_timestamp(current: str | None, marker: str | None) -> str | None:
    """The later of two GeneralizedTime values (same format, so string order is time order)."""
    if marker is None or (current is not None and marker <= current):
        return current
    return marker if _GENERALIZED_TIME.fullmatch(marker) else current


def context_csn(connection: LdapConnection, base_dn: str) -> str | None:
    """The contextCSN of the naming context holding base_dn, if the server keeps one.

    OpenLDAP with the syncprov overlay (any replicated setup) keeps it: every change committed
    after it was read gets a higher entryCSN, so it is an exact watermark. With several
    providers there is one value per server id; the oldest is the safe one.
    """
    contexts = [
        value.decode("utf-8", "replace")
        for value in connection.root_dse(["namingContexts"]).get("namingContexts", [])
    ]
    holding = [context for context in contexts if context and _within(base_dn, context)]
    if not holding:
        return None
    suffix = max(holding, key=len)
    entry = connection.read_entry(suffix, ["contextCSN"]) or {}
    values = [
        value.decode("ascii", "replace")
        for key, found in entry.items()
        if key.lower() == "contextcsn"
        for value in found
    ]
    valid = [value for value in values if _CSN.fullmatch(value)]
    return min(valid) if valid else None


def _within(dn: str, suffix: str) -> bool:
    try:
        return is_within(dn, suffix)
    except ValueError:
        return False
