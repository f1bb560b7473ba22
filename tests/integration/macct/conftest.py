"""Fixtures for macct tests: one real provisioned Samba AD domain per session, fresh accounts."""

from __future__ import annotations

import base64
import itertools
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hostrelay_contract.job_types import JOB_TYPES
from hostrelay_local.samba_domain import (
    SambaDomain,
    add_computers,
    add_school_layout,
    add_users,
    ensure_domain,
    random_password,
    set_passwords,
)
from hostrelay_relay.handlers.base import Handler, JobContext, JobError
from hostrelay_relay.settings import MacctSettings, RelaySettings

AS_SYSTEM = "local_oid:1.3.6.1.4.1.7165.4.3.7:0"
DC_NAME = "DC1"
_batches = itertools.count(1)


@dataclass(frozen=True)
class AccountSecrets:
    """What ldbsearch (as system) shows for an account's two secret attributes."""

    unicode_pwd: bytes | None = field(repr=False)
    supplemental_credentials: bytes | None = field(repr=False)


def read_secrets(domain: SambaDomain, account: str) -> AccountSecrets:
    """Read an account's secrets with a plain ldbsearch call, independent of the relay code."""
    out = subprocess.run(
        [
            "ldbsearch",
            f"--url={domain.sam_ldb}",
            f"--controls={AS_SYSTEM}",
            f"--basedn={domain.domain_dn}",
            f"(sAMAccountName={account})",
            "unicodePwd",
            "supplementalCredentials",
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    unfolded = out.replace("\n ", "")
    values: dict[str, bytes] = {}
    for line in unfolded.splitlines():
        for name in ("unicodePwd", "supplementalCredentials"):
            if line.startswith(f"{name}:: "):
                values[name] = base64.b64decode(line.split(":: ", 1)[1])
    return AccountSecrets(values.get("unicodePwd"), values.get("supplementalCredentials"))


@dataclass
class Domain:
    """The session's domain plus helpers that create uniquely named accounts in it."""

    samba: SambaDomain

    def computers(self, count: int, parent_dn: str | None = None) -> dict[str, str]:
        """Given `count` new workstation accounts with random passwords: name → DN."""
        batch = next(_batches)
        names = {f"B{batch:03d}PC{index:02d}": random_password() for index in range(count)}
        return add_computers(self.samba, names, parent_dn=parent_dn)

    def user(self) -> str:
        name = f"user{next(_batches):04d}"
        add_users(self.samba, {name: random_password()})
        return name

    def school(self, school: str) -> str:
        return add_school_layout(self.samba, school, rooms=["r1"])

    def change_passwords(self, dns: list[str]) -> None:
        set_passwords(self.samba, {dn: random_password() for dn in dns})

    def secrets(self, computer: str) -> AccountSecrets:
        return read_secrets(self.samba, computer if computer.endswith("$") else f"{computer}$")

    def delete(self, dn: str) -> None:
        subprocess.run(
            ["ldbdel", f"--url={self.samba.sam_ldb}", dn], check=True, capture_output=True
        )


@pytest.fixture(scope="session")
def samba_domain(tmp_path_factory: pytest.TempPathFactory) -> SambaDomain:
    """Given a real Samba AD domain, provisioned once per session (~4 s)."""
    target = tmp_path_factory.mktemp("samba") / "macct"
    domain, created = ensure_domain(
        target, realm="MACCT.TEST", netbios_domain="MACCT", dc_name=DC_NAME
    )
    assert created
    return domain


@pytest.fixture
def domain(samba_domain: SambaDomain) -> Domain:
    return Domain(samba_domain)


@pytest.fixture
def settings(samba_domain: SambaDomain, tmp_path: Path) -> RelaySettings:
    """Given relay settings pointing at the domain's sam.ldb and a private state dir."""
    return RelaySettings(
        host="dc01",
        state_dir=tmp_path / "state",
        macct=MacctSettings(sam_ldb=samba_domain.sam_ldb),
    )


@dataclass
class JobRun:
    """The outcome of running one handler: its result or error, and the progress it reported."""

    result: dict[str, Any] | None
    error: JobError | None
    progress: list[tuple[int, int | None, str]]

    @property
    def report(self) -> dict[str, Any]:
        """The result object the control plane sees (also on failure)."""
        if self.error is not None:
            assert self.error.result is not None
            return self.error.result
        assert self.result is not None
        return self.result

    def statuses(self) -> dict[str, str]:
        return {c["computer"]: c["status"] for c in self.report["computers"]}


RunJob = Callable[..., JobRun]


@pytest.fixture
def run_job(settings: RelaySettings) -> RunJob:
    """Validate params and run a handler the way the relay does, collecting what it reports."""

    def run(
        handler_cls: type[Handler[Any]],
        params: dict[str, Any],
        *,
        timeout_s: float = 60.0,
        job_settings: RelaySettings | None = None,
        cancel: bool = False,
    ) -> JobRun:
        handler = handler_cls(job_settings or settings)
        progress: list[tuple[int, int | None, str]] = []
        ctx = JobContext(
            job_id="01JTEST",
            attempt=1,
            host="dc01",
            settings=job_settings or settings,
            timeout_s=timeout_s,
            report_progress=lambda done, total, message: progress.append((done, total, message)),
            report_output=lambda stream, data: None,
        )
        if cancel:
            ctx.cancel_event.set()
        result_model = JOB_TYPES[handler.type].result
        try:
            result = handler.run(handler.validate(params), ctx)
        except JobError as exc:
            if exc.result is not None:  # a repair that failed lists every computer
                result_model.model_validate(exc.result)
            return JobRun(None, exc, progress)
        # Every result has the shape the contract documents (docs/protocol.md)
        result_model.model_validate(result)
        return JobRun(result, None, progress)

    return run
