"""Every `error.code` a job can end with is declared in the contract's registry, and every
code a type declares is one its code can report: read from the sources that raise them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hostrelay_contract import error_codes as codes
from hostrelay_contract.job_types import INTERNAL_JOB_TYPES, JOB_TYPES, JobTypeSpec

ROOT = Path(__file__).resolve().parents[3]
RELAY, LAYER = "relay/hostrelay_relay", "layers/hostrelay/hostrelay"
HANDLERS = f"{RELAY}/handlers"
SPECS: dict[str, JobTypeSpec] = {**JOB_TYPES, **INTERNAL_JOB_TYPES}
CLOUD_SYNCS = tuple(
    name for name, spec in JOB_TYPES.items() if spec.params_name == "SourceSyncParams"
)
SOURCE_READS = [f"{LAYER}/domain/inventory.py", "relay/hostrelay_sources"]
REST_SOURCES = [f"{LAYER}/dal/{dal}.py" for dal in ("rest_source", "cloud_secrets", "google_token")]

# Job types, and the files whose failures become their jobs' error codes.
AREAS: list[tuple[tuple[str, ...], list[str]]] = [
    (("ping",), [f"{HANDLERS}/ping.py"]),
    (
        ("macct.capture", "macct.repair"),
        [f"{RELAY}/macct", f"{HANDLERS}/macct_capture.py", f"{HANDLERS}/macct_repair.py"],
    ),
    (("exec",), [f"{HANDLERS}/exec.py", f"{RELAY}/isolation"]),
    (
        ("ldap.sync", "ldap.group_members"),
        [f"{RELAY}/directory", f"{HANDLERS}/ldap_sync.py", f"{HANDLERS}/ldap_group_members.py"],
    ),
    (
        ("connector.sync", "connector.group_members"),
        [f"{HANDLERS}/connector_sync.py", f"{HANDLERS}/connector_group_members.py",
         "relay/hostrelay_sources"],
    ),
    (("cert.install",), [f"{RELAY}/cert_rotation.py"]),
    (("discovery.aws",), [f"{LAYER}/logic/discovery_aws.py", f"{LAYER}/dal/aws_discovery.py",
                          f"{LAYER}/domain/inventory.py"]),
    (CLOUD_SYNCS, [f"{LAYER}/logic/source_sync.py", f"{LAYER}/dal/self_hosted_sources.py",
                   *SOURCE_READS, *REST_SOURCES]),
    (("okta.group_members",), [f"{LAYER}/logic/sync_okta.py", *SOURCE_READS, *REST_SOURCES]),
    (("authentik.group_members",), [f"{LAYER}/logic/sync_self_hosted.py",
                                    f"{LAYER}/dal/self_hosted_sources.py", *SOURCE_READS]),
]  # fmt: skip
# Files that end jobs of any type: the relay's executor, the cloud jobs' runner, the sweeper.
EVERY_HOST_JOB_SOURCES = [f"{RELAY}/executor.py", f"{HANDLERS}/base.py"]
EVERY_CLOUD_JOB_SOURCES = [f"{LAYER}/logic/cloud_jobs.py"]
EVERY_JOB_SOURCES = [f"{LAYER}/logic/sweep.py", f"{LAYER}/domain/jobs.py"]

# Where a code is set: a call that fails a job or raises a coded error with it as the first
# argument (JobError, DirectoryError, failed, job_error, _error, JobErrorInfo(code=...)),
# or an error class's `code` (`code = "a"`, or `code = "a" if ... else "b"`).
_RAISED = re.compile(
    r"\b(?:JobError|JobTimedOut|JobCanceled|DirectoryError|failed|job_error|_error|JobErrorInfo)"
    r"\(\s*(?:code=)?\"([a-z][a-z0-9_]*)\""
)
_CLASS_CODE = re.compile(
    r"^\s*code(?::[^=\n]+)?\s*=\s*\"([a-z][a-z0-9_]*)\"(?:\s+if\s.+?\selse\s+\"([a-z][a-z0-9_]*)\")?",
    re.MULTILINE,
)


def _texts(paths: list[str]) -> list[str]:
    files: list[Path] = []
    for path in paths:
        found = ROOT / path
        assert found.exists(), path
        files += sorted(found.rglob("*.py")) if found.is_dir() else [found]
    return [file.read_text() for file in files]


def codes_set_in(paths: list[str]) -> set[str]:
    found: set[str] = set()
    for text in _texts(paths):
        found.update(_RAISED.findall(text))
        for first, second in _CLASS_CODE.findall(text):
            found.update(code for code in (first, second) if code)
    return found


def literals_in(paths: list[str]) -> str:
    return "\n".join(_texts(paths))


def test_the_areas_cover_every_type() -> None:
    assert sorted(name for names, _ in AREAS for name in names) == sorted(SPECS)


@pytest.mark.parametrize(("types", "paths"), AREAS, ids=lambda v: ",".join(v)[:40])
def test_every_code_a_type_s_code_reports_is_declared(types: tuple[str, ...], paths: list[str]):
    # Given the codes the sources of these job types set
    found = codes_set_in(paths)

    # Then each is declared for one of them (or for every job where they run)
    declared = set().union(*(SPECS[name].error_codes() for name in types))
    assert found - declared == set()
    # and each type's own declared codes is one those sources set (no stale declarations)
    for name in types:
        own = {error.code for error in SPECS[name].errors}
        text = literals_in(paths)
        assert {code for code in own if f'"{code}"' not in text} == set(), name


def test_codes_of_every_job_are_declared_as_such() -> None:
    every = {error.code for error in codes.EVERY_JOB}
    host = every | {error.code for error in codes.EVERY_HOST_JOB}
    cloud = every | {error.code for error in codes.EVERY_CLOUD_JOB}
    assert codes_set_in(EVERY_JOB_SOURCES) <= every
    assert codes_set_in(EVERY_HOST_JOB_SOURCES) <= host
    assert codes_set_in(EVERY_CLOUD_JOB_SOURCES) <= cloud
    # The relay's own codes are all declared, and all are set by the executor
    relay_codes = {"handler_crashed", "relay_restarted", "relay_stopped", "relay_stopping"}
    assert relay_codes | {"result_too_large"} <= codes_set_in(EVERY_HOST_JOB_SOURCES)


def test_the_search_finds_codes_where_they_are_set() -> None:
    # A check of the check: codes set in each way the sources set them are found
    found = codes_set_in([f"{RELAY}/directory", f"{RELAY}/macct", f"{HANDLERS}/exec.py"])
    assert {"ldap_unreachable", "ldap_busy", "capture_untrusted", "sandbox_failed"} <= found
    assert {"bad_credentials", "source_error"} <= codes_set_in(["relay/hostrelay_sources"])
