"""Capture the machine-account secrets of the computer an image was uploaded from."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from hostrelay_relay.macct.capture_store import Capture, CaptureStore
from hostrelay_relay.macct.computer_locks import computer_locks
from hostrelay_relay.macct.errors import AccountHasNoSecrets, AccountRefused, ComputerNotFound
from hostrelay_relay.macct.machine_accounts import match_accounts, search_names
from hostrelay_relay.macct.run_limits import RunLimits
from hostrelay_relay.macct.samdb import SECRET_ATTRIBUTES, SamDb
from hostrelay_relay.settings import RelaySettings

logger = logging.getLogger(__name__)


def capture_machine_account(
    settings: RelaySettings, image: str, computer: str, limits: RunLimits
) -> dict[str, Any]:
    """Store `computer`'s unicodePwd and supplementalCredentials for `image` on this DC.

    The result names what was captured, never a value.
    """
    samdb = SamDb(settings.macct)
    store = CaptureStore(settings.state_dir)
    with computer_locks(settings.state_dir, [computer], limits):
        accounts = samdb.find_accounts(search_names([computer]), samdb.domain_dn(limits), limits)
        lookup = match_accounts([computer], accounts)[computer]
        if not lookup.found:
            raise ComputerNotFound(f"no account named {computer}$ in the domain")
        if lookup.account is None:
            raise AccountRefused(f"{computer} cannot be captured: {lookup.refusal}")
        secrets = lookup.account.secrets()
        if secrets is None:
            raise AccountHasNoSecrets(f"{computer}$ has no password set; nothing to capture")
        captured_at = (
            datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
        store.save(Capture(image, computer, lookup.account.dn, captured_at, secrets))
    logger.info("macct captured", extra={"image": image, "computer": computer})
    return {
        "image": image,
        "computer": computer,
        "dn": lookup.account.dn,
        "captured_at": captured_at,
        "attributes": list(SECRET_ATTRIBUTES),
    }
