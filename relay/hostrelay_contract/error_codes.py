"""The `error.code`s a job can end with: those of every job, and each job type's own.

Declared here once: the job types registry names each type's codes, docs/protocol.md's
table is generated from them, and tests/unit/contract/test_error_codes.py checks that
every code the relay's handlers and the cloud jobs can report is declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostrelay_contract.envelope import (
    HARMLESS_REJECTIONS,
    REJECT_REASONS,
    UNATTRIBUTED_REJECTIONS,
)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    meaning: str


def _codes(*pairs: tuple[str, str]) -> tuple[ErrorCode, ...]:
    return tuple(ErrorCode(code, meaning) for code, meaning in pairs)


def rejection_code(reason: str) -> str:
    """The `error.code` of a job a relay refused (`rejected` event) for `reason`."""
    return f"rejected_{reason}"


_ENDING_REASONS = [
    why for why in REJECT_REASONS if why not in HARMLESS_REJECTIONS | UNATTRIBUTED_REJECTIONS
]

# Any job, wherever it runs.
EVERY_JOB = _codes(
    ("timeout", "no result within `timeout_s` (the handler gave up, or the sweeper did)"),
    ("canceled", "canceled on request (`POST /v1/jobs/{id}/cancel`)"),
    ("expired", "not delivered before `deliver_by` (the host stayed offline)"),
)
# Any job a relay runs: what the relay and its executor report, whatever the handler.
EVERY_HOST_JOB = _codes(
    ("invalid_params", "params the relay's own policy refuses (allowed commands, users, paths)"),
    ("handler_crashed", "a bug in the handler; the message names the exception"),
    ("relay_restarted", "the relay stopped while the job ran; it may have partly run"),
    ("relay_stopped", "the relay stopped before the job started (`retryable`)"),
    ("relay_stopping", "SIGTERM, and the job did not end within `drain_timeout_s`"),
    ("result_too_large", "the result event would exceed 96 KB"),
    *((rejection_code(why), f"the relay refused the envelope: `{why}`") for why in _ENDING_REASONS),
)
# Any job the control plane runs itself (host `cloud`).
EVERY_CLOUD_JOB = _codes(
    ("invalid_params", "params that no longer fit the type's model"),
    ("connector_missing", "no connector of the job's kind with that id"),
)

MACCT = _codes(
    ("samdb_error", "sam.ldb could not be read or changed"),
    ("search_base_missing", "the school's computer OU does not exist"),
    ("school_not_found", "no such school under OU=SCHOOLS"),
    ("macct_error", "any other machine-account failure"),
)
MACCT_CAPTURE = _codes(
    ("computer_not_found", "no such computer account"),
    ("account_refused", "the account is no plain computer account (a DC, a user)"),
    ("no_secrets", "the account has no machine secrets to keep"),
)
MACCT_REPAIR = _codes(
    ("capture_not_found", "no capture of that image on this DC"),
    ("capture_untrusted", "the capture file was tampered with, or has the wrong mode or owner"),
    ("repair_failed", "some computers could not be repaired; the result lists each"),
)
EXEC = _codes(
    ("exit_code", "the command exited non-zero; the result holds its exit code"),
    ("killed_by_signal", "the command was killed by a signal"),
    ("memory_limit", "the command hit `limits.memory_mb`"),
    ("unknown_user", "the `isolation.user` does not exist on the host"),
    ("limit_unsupported", "a limit this host's cgroups cannot enforce"),
    ("cgroup_failed", "the job's cgroup could not be made (`retryable`)"),
    ("spawner_unavailable", "the relay's spawner process did not start or answer (`retryable`)"),
    ("exec_failed", "the command could not be executed (execve failed)"),
    ("sandbox_failed", "the namespaces, filesystem view or privilege drop could not be set up"),
)
LDAP = _codes(
    ("ldap_unreachable", "the server could not be reached (`retryable`)"),
    ("ldap_tls", "TLS failed, or the password would be sent unencrypted"),
    ("ldap_timeout", "the server did not answer in time (`retryable`)"),
    ("ldap_auth", "the bind was refused"),
    ("ldap_access", "the credential may not do this"),
    ("ldap_filter", "a bad search filter"),
    ("ldap_no_such_object", "the base DN or group does not exist"),
    ("ldap_unsupported", "the server lacks paged results"),
    ("ldap_limit", "the server limited the result"),
    ("ldap_credential", "unknown credential, unreadable or empty password, or another server"),
    ("ldap_client", "the `ldap.client` library is not installed"),
    ("ldap_error", "any other LDAP error"),
)
LDAP_SYNC = _codes(
    ("ldap_busy", "a sync of that connector is running on this relay (`retryable`)"),
    ("ldap_no_state", "an incremental sync before any full sync with these settings"),
    ("ldap_state", "the stored watermark is unreadable; run a full sync"),
    ("inventory_unsupported", "this relay cannot publish inventory events"),
)
LDAP_GROUP_MEMBERS = _codes(
    ("ldap_not_group", "the DN is no group (groupOfNames, groupOfUniqueNames, group)"),
    ("ldap_rejected", "the server refused the change"),
)
SOURCE = _codes(
    ("bad_credentials", "the source refused the credential (401)"),
    ("permission_denied", "the credential may not do this (403; Google: scopes or delegation)"),
    ("source_unreachable", "connection or TLS failure"),
    ("source_throttled", "asked to wait longer than `SOURCE_MAX_WAIT_S`, or 429 every time"),
    ("source_error", "any other error answer from the source"),
    ("credential_unavailable", "the secret or credential file is missing, unreadable or unfit"),
)
CLOUD_SOURCE = _codes(("source_read_failed", "the source could not be read (any other reason)"))
WRITE_BACK = _codes(
    ("group_not_found", "no such group"),
    ("write_back_partial", "some changes failed; the result lists each"),
)
CLOUD_WRITE_BACK = _codes(("write_back_disabled", "the connector's `write_back` is false"))
OKTA_WRITE_BACK = _codes(("group_not_writable", "an `APP_GROUP` or `BUILT_IN` group"))
DISCOVERY_AWS = _codes(("discovery_failed", "nothing could be read; the message has the AWS error"))
CONNECTOR_SYNC = _codes(
    ("source_busy", "a sync of that connector is running on this relay (`retryable`)"),
    ("inventory_unsupported", "this relay cannot publish inventory events"),
)
CERT_INSTALL = _codes(
    ("bad_certificate", "the certificate does not name this host or carry its pending key"),
)
