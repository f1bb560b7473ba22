"""Renewal through the results and dispatch functions: CSR event → signed cert.install job."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from hostrelay.clock import utcnow
from hostrelay.dal.certificates import certificate_fingerprint
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.jobs_repo import JobRepository
from hostrelay.domain.jobs import JobState
from hostrelay.logic import certificate_renewal
from hostrelay_local.lambda_runtime import FakeLambdaContext
from tests.conftest import AwsStack, sqs_event
from tests.integration.api.conftest import Api
from tests.integration.enrollment.conftest import HostKey

pytestmark = pytest.mark.integration


def results(aws: AwsStack, host: str, event: dict[str, Any], topic_host: str | None = None) -> None:
    """Deliver one relay event to the results function, as the IoT topic rule would."""
    body = {"v": 1, "event_id": "01J" + "0" * 23, "sent_at": 0.0, **event}
    message = json.dumps(
        {
            "payload": base64.b64encode(json.dumps(body).encode()).decode(),
            "topic": f"hostrelay/{topic_host or host}/events",
        }
    )
    handler = aws.handler("ResultsFunction")
    outcome = handler(sqs_event([message]), FakeLambdaContext(function_name="results"))
    assert outcome == {"batchItemFailures": []}


def cert_install_jobs(host: str) -> list[Any]:
    return [job for job in JobRepository().pending_for_host(host) if job.type == "cert.install"]


@pytest.fixture
def enrolled(admin: Api, api: Api, aws: AwsStack) -> str:
    """Given web01 enrolled through the API and online."""
    token = admin.post("/v1/enrollments", json_body={"host": "web01"}).body["token"]
    response = api.post(
        f"/v1/enroll/{token}/csr", json_body={"host": "web01", "csr": HostKey.new().csr("web01")}
    )
    assert response.status == 200
    results(aws, "web01", {"kind": "hello", "relay_version": "0.1.0", "jobs": []})
    return "web01"


class Clock:
    """The control plane's time for renewals, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(certificate_renewal, "utcnow", moved)
    return moved


@pytest.fixture
def due(enrolled: str, clock: Clock) -> str:
    """Given web01's certificate (a year long) 200 days old: inside its renewal window."""
    clock.offset = timedelta(days=200)
    return enrolled


def certificate_count(aws: AwsStack) -> int:
    return len(aws.client("iot").list_certificates()["certificates"])


def refusals(admin: Api) -> list[str]:
    events = admin.get("/v1/audit", query={"action": "host.cert_renew_refused"}).body["events"]
    return [event["details"]["reason"] for event in events]


def test_a_renewal_becomes_a_signed_install_job_and_the_old_cert_retires_on_use(
    due: str, aws: AwsStack
) -> None:
    hosts = HostRepository()
    old_cert = hosts.get("web01").cert_id
    assert old_cert is not None
    next_key = HostKey.new()

    # When the relay asks for its next certificate, twice (a repeat must not issue twice)
    results(aws, "web01", {"kind": "cert_renewal", "csr": next_key.csr("web01")})
    results(aws, "web01", {"kind": "cert_renewal", "csr": next_key.csr("web01")})

    # Then one cert.install job carries the new certificate, made by the system
    jobs = cert_install_jobs("web01")
    assert len(jobs) == 1
    job = jobs[0]
    assert job.created_by == "system:cert-renewal" and job.state is JobState.QUEUED
    new_pem = job.params["certificate_pem"]
    assert x509.load_pem_x509_certificate(new_pem.encode()).subject.rfc4514_string() == "CN=web01"
    # And the dispatcher signs it for web01 like any job
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.ref("DispatchQueue"), MaxNumberOfMessages=10)
    bodies = [m["Body"] for m in messages.get("Messages", [])]
    dispatch = aws.handler("DispatchFunction")
    dispatch(sqs_event(bodies), FakeLambdaContext(function_name="dispatch"))
    assert JobRepository().get(job.id).state is JobState.DISPATCHED
    # And the old certificate stays active until the host uses the new one
    iot = aws.client("iot")
    assert (
        iot.describe_certificate(certificateId=old_cert)["certificateDescription"]["status"]
        == "ACTIVE"
    )

    # When the relay says hello with the new certificate
    results(
        aws, "web01", {"kind": "hello", "jobs": [], "cert_id": certificate_fingerprint(new_pem)}
    )

    # Then the new one is the host's certificate and the old one is inactive
    host = hosts.get("web01")
    assert host.cert_id not in (None, old_cert) and not host.pending_cert
    assert (
        iot.describe_certificate(certificateId=old_cert)["certificateDescription"]["status"]
        == "INACTIVE"
    )


def test_a_renewal_naming_another_host_is_refused(enrolled: str, aws: AwsStack) -> None:
    results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("dc01")})
    assert cert_install_jobs("web01") == []
    assert not HostRepository().get("web01").pending_cert


def test_unknown_or_revoked_hosts_get_no_certificate(
    enrolled: str, admin: Api, aws: AwsStack
) -> None:
    results(aws, "web02", {"kind": "cert_renewal", "csr": HostKey.new().csr("web02")})
    assert cert_install_jobs("web02") == []

    admin.delete("/v1/hosts/web01")
    results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("web01")})
    assert cert_install_jobs("web01") == []


def test_a_fresh_certificate_is_not_renewed(enrolled: str, admin: Api, aws: AwsStack) -> None:
    # Given web01 enrolled just now, When it asks for a new certificate
    before = certificate_count(aws)
    results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("web01")})

    # Then nothing is issued, and the refusal is in the audit trail with its reason
    assert cert_install_jobs("web01") == [] and certificate_count(aws) == before
    assert not HostRepository().get("web01").pending_cert
    assert refusals(admin) == ["outside_window"]


def test_unsolicited_renewals_with_fresh_keys_get_one_certificate(
    due: str, admin: Api, aws: AwsStack
) -> None:
    # Given web01 inside its renewal window
    before = certificate_count(aws)

    # When it asks ten times, each time with a fresh key
    for _ in range(10):
        results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("web01")})

    # Then one certificate is issued, and the nine others are refused and audited
    assert len(cert_install_jobs("web01")) == 1
    assert certificate_count(aws) == before + 1
    assert refusals(admin) == ["pending"] * 9
    granted = admin.get("/v1/audit", query={"action": "host.cert_renew"}).body["events"]
    assert len(granted) == 1


def test_after_a_failed_install_the_next_renewal_waits_for_the_rate_limit(
    due: str, clock: Clock, admin: Api, aws: AwsStack
) -> None:
    # Given a renewal whose cert.install job never reached the host
    results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("web01")})
    [install] = cert_install_jobs("web01")
    first_cert = HostRepository().get("web01").pending_cert["id"]
    JobRepository().transition(install, JobState.EXPIRED)

    # When the host asks again with a new key ten minutes later
    clock.offset += timedelta(minutes=10)
    results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("web01")})
    # Then it is refused as too soon
    assert cert_install_jobs("web01") == [] and refusals(admin) == ["rate_limited"]

    # When it asks again after the rate limit's hour
    clock.offset += certificate_renewal.RENEWAL_INTERVAL
    results(aws, "web01", {"kind": "cert_renewal", "csr": HostKey.new().csr("web01")})
    # Then a new certificate is issued, and the unused one is deactivated
    assert len(cert_install_jobs("web01")) == 1
    iot = aws.client("iot")
    status = iot.describe_certificate(certificateId=first_cert)["certificateDescription"]["status"]
    assert status == "INACTIVE"
