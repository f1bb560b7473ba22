"""Validation of `exec` params against the job schema and the relay's exec policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hostrelay_relay.handlers.exec import ExecHandler, ExecParams
from hostrelay_relay.settings import RelaySettings

POLICY: dict[str, Any] = {
    "allowed_commands": [
        "/opt/tools/report-*",
        {"command": "/bin/sh", "launcher": True, "args": [[], ["-c", "*"]]},
    ],
    "allowed_users": ["nobody", "backup"],
    "allowed_env": ["LANG", "TZ"],
}


def handler(**policy: Any) -> ExecHandler:
    settings = RelaySettings.model_validate({"host": "dc01", "exec": {**POLICY, **policy}})
    return ExecHandler(settings)


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"argv": ["/usr/bin/curl", "http://x"]}, "not in this relay's exec.allowed_commands"),
        ({"argv": ["sh", "-c", "id"]}, "argv[0] must be an absolute, normalized path"),
        ({"argv": ["./sh"]}, "argv[0] must be an absolute"),
        ({"argv": ["/opt/tools/report-/../../bin/bash"]}, "argv[0] must be an absolute"),
        ({"argv": ["/opt/tools//x"]}, "argv[0] must be an absolute, normalized"),
        ({"argv": ["/bin/sh\x00", "-c"]}, "argv[0] contains a NUL byte"),
        ({"argv": ["/bin/sh", "-c", "echo a\x00b"]}, "argv[2] contains a NUL byte"),
        ({"argv": ["/bin/sh"], "env": {"LANG": "C\x00"}}, "env LANG contains a NUL byte"),
        ({"argv": ["/bin/sh"], "env": {"LD_PRELOAD": "/tmp/x.so"}}, "LD_PRELOAD"),
        ({"argv": ["/bin/sh"], "env": {"A=B": "c"}}, "not a valid variable name"),
        ({"argv": ["/bin/sh"], "cwd": "relative/dir"}, "cwd must be an absolute"),
        ({"argv": ["/bin/sh"], "cwd": "/tmp\x00/x"}, "cwd contains a NUL byte"),
        ({"argv": ["/bin/sh"], "isolation": {"user": "root"}}, "not in exec.allowed_users"),
        ({"argv": ["/bin/sh"], "isolation": {"user": "../etc"}}, "user must be a user name"),
        ({"argv": ["/bin/sh"], "isolation": {"network": "host"}}, "allow_host_network"),
        ({"argv": ["/bin/sh"], "isolation": {"network": "bridge"}}, "'none' or 'host'"),
        ({"argv": ["/bin/sh"], "isolation": {"readonly_root": False}}, "allow_writable_root"),
        ({"argv": ["/bin/sh"], "limits": {"memory_mb": 100_000}}, "exec.max_memory_mb"),
        ({"argv": ["/bin/sh"], "limits": {"pids": 0}}, "greater than or equal to 1"),
        ({"argv": ["/bin/sh"], "limits": {"cpu_percent": "50"}}, "valid integer"),
        ({"argv": []}, "at least 1 item"),
        ({"argv": ["/bin/sh"], "shell": True}, "Extra inputs are not permitted"),
        ({"argv": ["/bin/sh"], "timeout_s": 0}, "greater than 0"),
    ],
)
def test_bad_params_are_rejected_with_a_clear_reason(
    params: dict[str, Any], complaint: str
) -> None:
    """Given params the schema or the policy refuses, when validated, then a ValueError (the
    relay's `invalid_params` rejection) names the problem."""
    with pytest.raises(ValueError) as raised:
        handler().validate(params)

    assert complaint in str(raised.value)


def test_allowed_params_validate_with_defaults() -> None:
    """Given a command matching an allow-list glob, then params validate with safe defaults."""
    params = handler().validate({"argv": ["/opt/tools/report-daily", "-V"], "env": {"TZ": "UTC"}})

    assert isinstance(params, ExecParams)
    assert params.isolation.user == "nobody"
    assert params.isolation.network == "none"
    assert params.isolation.readonly_root is True
    assert params.cwd == "/tmp"


def test_relay_may_allow_host_network_and_a_writable_root() -> None:
    """Given a policy allowing them, then host network and a writable root validate."""
    permissive = handler(allow_host_network=True, allow_writable_root=True)

    params = permissive.validate(
        {"argv": ["/bin/sh"], "isolation": {"network": "host", "readonly_root": False}}
    )

    assert params.isolation.network == "host"


def test_validation_error_is_a_value_error() -> None:
    """Given schema errors, then they surface as pydantic ValidationError (a ValueError)."""
    with pytest.raises(ValidationError):
        handler().validate({"argv": "not a list"})


def test_exec_is_disabled_by_default() -> None:
    """Given the default relay settings, then exec says it is disabled and why."""
    default = ExecHandler(RelaySettings.model_validate({"host": "dc01"}))

    assert default.enabled() == "exec is disabled on this relay: exec.allowed_commands is empty"


@pytest.mark.parametrize(
    ("policy", "complaint"),
    [
        ({"allowed_commands": ["bin/*"]}, "must be an absolute path pattern"),
        ({"writable_paths": ["/"]}, "absolute path other than /"),
        ({"writable_paths": ["var/tmp"]}, "absolute path other than /"),
        ({"writable_paths": ["/var/../etc"]}, "absolute path other than /"),
        ({"kill_grace_s": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_exec_policy_is_refused_at_start_up(policy: dict[str, Any], complaint: str) -> None:
    """Given a relay config with an unsafe exec section, then loading the settings fails."""
    with pytest.raises(ValidationError) as raised:
        RelaySettings.model_validate({"host": "dc01", "exec": policy})

    assert complaint in str(raised.value)
