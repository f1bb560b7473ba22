"""What a newcomer does right after `make run`: macct, exec and the inventory, end to end."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Iterator

import pytest

from hostrelay_local.samba_domain import DEMO_COMPUTERS, SambaDomain, ensure_demo_domain
from hostrelay_local.stack import LocalStack, StackOptions
from tests.e2e.conftest import ApiClient

AS_SYSTEM = "local_oid:1.3.6.1.4.1.7165.4.3.7:0"


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Given `make run`'s stack: demo Samba domain for dc01 and a demo directory connector."""
    options = StackOptions(api_port=0, heartbeat_s=5, schedule_period_s=2.0)
    with LocalStack(tmp_path_factory.mktemp("hostrelay-full"), options) as running:
        assert running.host_state("dc01") == "online", running.relay and running.relay.log_tail()
        yield running


@pytest.fixture(scope="module")
def client(full_stack: LocalStack) -> ApiClient:
    return ApiClient(full_stack.api_url, full_stack.admin_token)


def unicode_pwd(domain: SambaDomain, account: str) -> bytes:
    """The account's unicodePwd read by a plain ldbsearch, independent of the relay."""
    out = subprocess.run(
        ["ldbsearch", f"--url={domain.sam_ldb}", f"--controls={AS_SYSTEM}",
         f"--basedn={domain.domain_dn}", f"(sAMAccountName={account})", "unicodePwd"],
        capture_output=True, check=True, text=True,
    ).stdout.replace("\n ", "")  # fmt: skip
    [line] = [line for line in out.splitlines() if line.startswith("unicodePwd:: ")]
    return base64.b64decode(line.split(":: ", 1)[1])


def test_capture_then_repair_restores_the_captured_hash_through_the_stack(
    full_stack: LocalStack, client: ApiClient
) -> None:
    domain = ensure_demo_domain(full_stack.state_dir)
    source, *others = DEMO_COMPUTERS
    # Given a capture of the first demo PC for an image
    capture = client.post(
        "/v1/macct/capture", {"host": "dc01", "image": "e2e-image", "computer": source}
    )
    assert capture.status_code == 201, capture.text
    assert client.wait_finished(capture.json()["id"])["state"] == "SUCCEEDED"
    captured = unicode_pwd(domain, f"{source}$")
    assert all(unicode_pwd(domain, f"{name}$") != captured for name in others)
    # When LINBO asks to repair the other PCs from that image
    repair = client.post(
        "/v1/macct/repair", {"host": "dc01", "image": "e2e-image", "computers": others}
    )
    assert repair.status_code == 201, repair.text
    job = client.wait_finished(repair.json()["created"]["id"])
    # Then each account now holds the captured hash, byte for byte, and the result says so
    assert job["state"] == "SUCCEEDED", job
    assert {c["computer"]: c["status"] for c in job["result"]["computers"]} == dict.fromkeys(
        others, "updated"
    )
    assert all(unicode_pwd(domain, f"{name}$") == captured for name in others)
    # And the secret never reached the control plane
    assert "unicodePwd" not in str(job["result"]).replace("'unicodePwd'", "")


def test_exec_output_is_stored_whole_with_its_digest(client: ApiClient) -> None:
    # Given an allowed command that prints 2 MB
    text = "0123456789abcdef" * 1024  # 16 KiB per line argument
    job_id = client.create_job(
        "exec", "dc01", {"argv": ["/bin/echo", *([text] * 7)], "timeout_s": 60}
    )
    job = client.wait_finished(job_id, timeout_s=60)
    assert job["state"] == "SUCCEEDED", job
    expected = (" ".join([text] * 7) + "\n").encode()
    # Then the stored output's size and sha256 match what the command printed
    assert job["output"]["size"] == len(expected)
    assert job["output"]["sha256"] == hashlib.sha256(expected).hexdigest()
    # And the chunks read back through the API are the same bytes
    chunks, after = [], -1
    while True:
        page = client.get(f"/v1/jobs/{job_id}/output?after_seq={after}").json()
        chunks += [base64.b64decode(c["data"]) for c in page["chunks"]]
        if not page["chunks"]:
            break
        after = page["chunks"][-1]["seq"]
    assert b"".join(chunks) == expected


def test_the_demo_directory_fills_the_inventory_on_its_own(client: ApiClient) -> None:
    # Given the stack created an ldap connector for dc01 on a schedule
    [connector] = client.get("/v1/connectors").json()["connectors"]
    assert (connector["kind"], connector["target"]) == ("ldap", "dc01")
    # When its first run finishes, then users, groups and OUs are in the inventory
    deadline = time.monotonic() + 60
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = client.get("/v1/inventory/counts").json()["by_kind"]
        if counts.get("user") == 300:
            break
        time.sleep(0.5)
    assert counts.get("user") == 300 and counts.get("group", 0) > 0 and counts.get("ou", 0) > 0
    runs = client.get(f"/v1/connectors/{connector['id']}/runs").json()
    assert any(run["state"] == "SUCCEEDED" for run in runs["runs"]), runs


def test_relay_health_endpoint_reports_connected(full_stack: LocalStack) -> None:
    import requests

    assert full_stack.relay is not None
    config = (full_stack.relay.config_path).read_text()
    listen = next(line for line in config.splitlines() if line.startswith("listen"))
    address = listen.split("=", 1)[1].strip().strip('"')
    response = requests.get(f"http://{address}/healthz", timeout=5)
    assert response.status_code == 200, response.text
