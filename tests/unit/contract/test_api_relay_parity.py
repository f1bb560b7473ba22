"""The API accepts a job's params exactly when the relay would: one contract, both sides.

API side: the check POST /v1/jobs makes (`check_job_params`). Relay side: the params as
the relay gets them, signed by the control plane's envelope code, verified by the relay's,
then judged by the params model of the relay's handler for the type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hostrelay.domain.errors import InvalidRequest
from hostrelay.domain.job_params import check_job_params
from hostrelay.envelope import build_envelope, sign_envelope
from hostrelay_contract.job_types import JOB_TYPES, host_job_types
from hostrelay_relay.envelope import load_public_key, verify_envelope
from hostrelay_relay.handlers import HandlerRegistry
from hostrelay_relay.settings import RelaySettings

KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = load_public_key(
    KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
)
CONNECTION = {"base_dn": "dc=corp,dc=example", "credential": "svc"}
AUTHENTIK = {"kind": "authentik", "url": "https://auth.example.org"}
TOKEN_FILE = "/etc/hostrelay/sources/authentik.token"
GROUP = "3f2b9c1e-4a5d-4e6f-8a7b-9c0d1e2f3a4b"

# Per type: params the relay accepts, and params it rejects for their shape.
TABLE: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "ping": (
        [{}, {"message": "hi", "sleep_s": 0.5}, {"sleep_s": 2}],
        [{"sleep_s": "1"}, {"sleep_s": -1}, {"message": None}, {"extra": 1}],
    ),
    "macct.capture": (
        [{"image": "win11", "computer": "PC01"}, {"image": "a.b", "computer": "pc01$"}],
        [
            {"image": "win11", "computer": "A" * 16},  # issue #12: the API took 16
            {"image": "win..11", "computer": "PC01"},
            {"image": "win11", "computer": "12345"},
            {"image": "win11"},
        ],
    ),
    "macct.repair": (
        [
            {"image": "win11", "computers": ["PC01", "pc02$"], "school": "north-1"},
            {"image": "win11", "computers": ["A" * 15 + "$"], "dry_run": True},
        ],
        [
            {"image": "win11", "computers": ["A" * 16]},
            {"image": "win11", "computers": ["PC01"], "school": "north.1"},  # issue #12
            {"image": "win11", "computers": []},
            {"image": "win11", "computers": ["PC01"], "school": None, "dry_run": 1},
        ],
    ),
    "exec": (
        [
            {"argv": ["/bin/true"]},
            {"argv": ["/bin/echo", "x"], "env": {"A": "1"}, "limits": {"memory_mb": 64}},
            {"argv": ["/bin/sh"], "isolation": {"network": "host"}, "timeout_s": 1.5},
        ],
        [
            {"argv": ["/bin/true"], "env": None},  # issue #12: the API took null
            {"argv": ["/bin/true"], "limits": None},
            {"argv": ["/bin/true"], "isolation": None},
            {"argv": ["true"]},
            {"argv": ["/bin/../tmp/x"]},
            {"argv": ["/bin/true"], "env": {"1A": "x"}},
        ],
    ),
    "ldap.sync": (
        [{**CONNECTION, "connector": "corp"}, {**CONNECTION, "connector": "c", "page_size": 9}],
        [
            {**CONNECTION},
            {**CONNECTION, "connector": "corp", "verify_tls": False},
            {**CONNECTION, "connector": "../x"},
            {**CONNECTION, "connector": "corp", "base_dn": "corp"},
        ],
    ),
    "ldap.group_members": (
        [
            # issue #12: no connector; the relay and docs/protocol.md never required one
            {
                **CONNECTION, "group_dn": "cn=g,dc=corp,dc=example",
                "add": ["uid=a,dc=corp,dc=example"],
            },
            {
                **CONNECTION, "connector": "corp", "group_dn": "cn=g,dc=corp,dc=example",
                "remove": ["uid=b,dc=corp,dc=example"], "dry_run": True,
            },
        ],
        [
            {**CONNECTION, "group_dn": "cn=g,dc=corp,dc=example"},
            {**CONNECTION, "group_dn": "cn=g,dc=other", "add": ["uid=a,dc=corp,dc=example"]},
            {**CONNECTION, "group_dn": "cn=g,dc=corp,dc=example", "add": ["not a dn"]},
        ],
    ),
    "connector.sync": (
        [
            {"connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE},
            {
                "connector": "k8s", "credential_file": TOKEN_FILE,
                "source": {
                    "kind": "kubernetes", "url": "https://k8s.example.org:6443",
                    "resources": ["nodes", "services"],
                },
            },
        ],
        [
            {"connector": "auth", "source": AUTHENTIK},
            {"connector": "auth", "source": AUTHENTIK, "credential_file": "token"},
            {"connector": "auth", "source": AUTHENTIK, "credential_file": "/etc/../shadow"},
            {"connector": "auth", "credential_file": TOKEN_FILE,
             "source": {"kind": "authentik", "url": "http://auth.example.org"}},
            {"connector": "auth", "credential_file": TOKEN_FILE,
             "source": {"kind": "ldap", "url": "https://auth.example.org"}},
            {"connector": "../x", "source": AUTHENTIK, "credential_file": TOKEN_FILE},
        ],
    ),
    "connector.group_members": (
        [
            {
                "connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE,
                "group": GROUP, "add": [1, 2],
            },
            {
                "connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE,
                "group": GROUP, "remove": [3], "dry_run": False,
            },
        ],
        [
            {"connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE,
             "group": GROUP},
            {"connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE,
             "group": GROUP, "add": [1], "remove": [1]},
            {"connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE,
             "group": "not-a-uuid", "add": [1]},
            {"connector": "auth", "source": AUTHENTIK, "credential_file": TOKEN_FILE,
             "group": GROUP, "add": ["1"]},
        ],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> HandlerRegistry:
    state_dir: Path = tmp_path_factory.mktemp("relay")
    return HandlerRegistry(RelaySettings(host="dc01", state_dir=state_dir))


def api_accepts(job_type: str, params: Any) -> bool:
    try:
        check_job_params(job_type, params)
    except InvalidRequest:
        return False
    return True


def relay_accepts(registry: HandlerRegistry, job_type: str, params: Any) -> bool:
    """What the relay's intake makes of `params` on the wire: verified, then judged."""
    envelope = build_envelope(
        job_id="01JOB", attempt=1, job_type=job_type, host="dc01", params=params,
        timeout_s=60, ttl_s=300,
    )  # fmt: skip
    verified = verify_envelope(
        sign_envelope(envelope, KEY), public_key=PUBLIC_KEY, host="dc01",
        seen_nonce=lambda nonce, expires_at: False,
    )  # fmt: skip
    try:
        registry.get(job_type).params_model.model_validate(verified.params)
    except ValidationError:
        return False
    return True


def test_every_host_job_type_has_a_table() -> None:
    assert set(TABLE) == set(host_job_types())


@pytest.mark.parametrize(
    ("job_type", "params", "accepted"),
    [
        (job_type, params, accepted)
        for job_type, (good, bad) in TABLE.items()
        for accepted, cases in ((True, good), (False, bad))
        for params in cases
    ],
)
def test_the_api_and_the_relay_give_the_same_verdict(
    registry: HandlerRegistry, job_type: str, params: dict[str, Any], accepted: bool
) -> None:
    # Given params of a host job type
    # When the API and the relay each judge them
    # Then both give the verdict the table expects
    assert (api_accepts(job_type, params), relay_accepts(registry, job_type, params)) == (
        accepted,
        accepted,
    )


def test_the_relay_runs_each_type_with_the_contracts_model(registry: HandlerRegistry) -> None:
    for job_type in host_job_types():
        assert registry.get(job_type).params_model is JOB_TYPES[job_type].params


# Values drawn for a field: right and wrong types, nulls, names near the rules' edges.
NAMES = st.one_of(
    st.text(alphabet="Aa0._- $,=+\\", min_size=0, max_size=17),
    st.sampled_from(["PC01", "pc01$", "win11", "north-1", "dc=corp,dc=example", "x" * 16]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 6000), st.floats(-1, 5000), NAMES)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=6,
)


def params_of(job_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Mutations of the table's accepted params: fields dropped, replaced or added."""
    fields = sorted(set(JOB_TYPES[job_type].params.model_fields) | {"unknown"})
    good = TABLE[job_type][0]
    return st.builds(
        lambda base, drop, changes: {
            **{k: v for k, v in base.items() if k not in drop},
            **changes,
        },
        st.sampled_from(good),
        st.sets(st.sampled_from(fields), max_size=2),
        st.dictionaries(st.sampled_from(fields), VALUES, max_size=2),
    )


@pytest.mark.parametrize("job_type", sorted(TABLE))
def test_generated_params_get_the_same_verdict_on_both_sides(
    registry: HandlerRegistry, job_type: str
) -> None:
    verdicts: set[bool] = set()

    @given(params=params_of(job_type))
    @settings(
        max_examples=150,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def check(params: dict[str, Any]) -> None:
        wire = json.loads(json.dumps(params))  # what a client can send at all
        api = api_accepts(job_type, wire)
        assert api == relay_accepts(registry, job_type, wire), wire
        verdicts.add(api)

    check()
    # The cases were not all accepted or all refused: both verdicts were compared.
    assert verdicts == {True, False}
