"""Enrollment through the API function on moto: one-shot tokens, CSR checks, certificates."""

from __future__ import annotations

import base64
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from hostrelay.clock import utcnow
from hostrelay.dal.enrollments_repo import hash_enrollment_token
from hostrelay.dal.hosts_repo import HostRepository
from hostrelay.dal.security_tables import EnrollmentRecord
from hostrelay_local.lambda_runtime import load_handler
from tests.conftest import AwsStack
from tests.integration.api.conftest import Api
from tests.integration.enrollment.conftest import HostKey, fetch_script

pytestmark = pytest.mark.integration


def offer(admin: Api, host: str = "web01", **fields: object) -> dict[str, object]:
    response = admin.post("/v1/enrollments", json_body={"host": host, **fields})
    assert response.status == 201, response.body
    return dict(response.body)


def send_csr(api: Api, token: str, host: str, csr: str):  # type: ignore[no-untyped-def]
    return api.post(f"/v1/enroll/{token}/csr", json_body={"host": host, "csr": csr})


def iot_status(aws: AwsStack, certificate_id: str) -> str:
    described = aws.client("iot").describe_certificate(certificateId=certificate_id)
    return str(described["certificateDescription"]["status"])


def test_admin_gets_a_one_line_command_with_a_long_random_token(admin: Api, aws: AwsStack) -> None:
    # When an admin enrolls web01
    body = offer(admin)

    # Then the command is one line to pipe into bash as root, naming the token's script
    token = str(body["token"])
    assert body["command"] == (
        f"curl -fsSL https://api.example.com/v1/enroll/{token}.sh | sudo bash"
    )
    assert "\n" not in str(body["command"])
    # And the token carries at least 192 random bits and expires in 5 minutes
    secret = base64.urlsafe_b64decode(token.removeprefix("hre_") + "=")
    assert len(secret) * 8 >= 192
    expires = body["expires_at"]
    assert isinstance(expires, str)
    # And only its hash is stored
    items = aws.client("dynamodb").scan(TableName=aws.ref("EnrollmentsTable"))["Items"]
    assert len(items) == 1
    assert token not in str(items)
    assert items[0]["token_hash"]["S"] == hash_enrollment_token(token)


def test_only_admins_enroll(operator: Api, api: Api) -> None:
    assert operator.post("/v1/enrollments", json_body={"host": "web01"}).status == 403
    assert api.post("/v1/enrollments", json_body={"host": "web01"}).status == 401


@pytest.mark.parametrize("host", ["Web01", "-web", "web_01", "a" * 64, "web.example", "cloud"])
def test_host_names_must_be_dns_labels(admin: Api, host: str) -> None:
    response = admin.post("/v1/enrollments", json_body={"host": host})
    assert response.status == 422, response.body


def test_script_runs_the_relay_enrollment_with_the_token_on_stdin(admin: Api, api: Api) -> None:
    token = str(offer(admin, roles=["dc"])["token"])

    script = fetch_script(api, f"/v1/enroll/{token}.sh")

    assert script.status == 200 and script.content_type == "text/x-shellscript"
    assert 'hostrelay-relay" enroll' in script.text and "--token-stdin" in script.text
    assert "HOSTRELAY_HOST=web01" in script.text
    assert "HOSTRELAY_URL=https://api.example.com" in script.text


def test_enrolling_with_a_csr_returns_the_certificate_and_consumes_the_token(
    admin: Api, api: Api, aws: AwsStack, host_key: HostKey
) -> None:
    # Given an enrollment for web01 with role dc
    token = str(offer(admin, roles=["dc"])["token"])

    # When the host sends a CSR for its own key
    response = send_csr(api, token, "web01", host_key.csr("web01"))

    # Then it gets a certificate, the broker, the CA and the envelope key (moto's IoT signs
    # a key of its own; that the certificate carries the host's key is checked against the
    # local stack's IoT stand-in in tests/integration/security)
    assert response.status == 200, response.body
    bundle = response.body
    cert = x509.load_pem_x509_certificate(bundle["certificate_pem"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web01"
    assert bundle["broker_port"] == 8883 and bundle["broker_host"].endswith("amazonaws.com")
    assert "Amazon Root CA 1" not in bundle["ca_pem"] and "BEGIN CERTIFICATE" in bundle["ca_pem"]
    assert "BEGIN PUBLIC KEY" in bundle["envelope_public_key_pem"]
    assert bundle["control_plane_url"] == "https://api.example.com"
    # And the host is registered with its certificate: a thing with the relay policy
    host = HostRepository().get("web01")
    assert host.cert_id and list(host.roles) == ["dc"]
    iot = aws.client("iot")
    principals = iot.list_thing_principals(thingName="web01")["principals"]
    assert [p.rpartition("/")[2] for p in principals] == [host.cert_id]
    policies = iot.list_attached_policies(target=principals[0])["policies"]
    assert [p["policyName"] for p in policies] == ["hostrelay-dev-relay"]
    # And the token does not work again, neither for a CSR nor for the script
    again = send_csr(api, token, "web01", host_key.csr("web01"))
    assert again.status == 409 and "already used" in again.body["error"]["message"]
    assert "already used" in fetch_script(api, f"/v1/enroll/{token}.sh").text


def test_an_expired_token_is_refused(admin: Api, api: Api, host_key: HostKey) -> None:
    token = str(offer(admin)["token"])
    record = EnrollmentRecord.get(hash_enrollment_token(token))
    record.update(actions=[EnrollmentRecord.valid_until.set(utcnow() - timedelta(seconds=1))])

    response = send_csr(api, token, "web01", host_key.csr("web01"))

    assert response.status == 403 and "expired" in response.body["error"]["message"]
    assert "expired" in fetch_script(api, f"/v1/enroll/{token}.sh").text
    assert HostRepository().find("web01") is None


def test_an_unknown_token_is_refused(api: Api, host_key: HostKey) -> None:
    token = "hre_" + "B" * 43
    assert send_csr(api, token, "web01", host_key.csr("web01")).status == 404
    assert "unknown or has expired" in fetch_script(api, f"/v1/enroll/{token}.sh").text


def test_a_token_for_another_host_is_refused(admin: Api, api: Api, host_key: HostKey) -> None:
    token = str(offer(admin, host="web01")["token"])

    response = send_csr(api, token, "web02", host_key.csr("web02"))

    assert response.status == 403 and "for host web01" in response.body["error"]["message"]
    assert HostRepository().find("web02") is None


def test_a_tampered_csr_naming_another_host_is_refused(
    admin: Api, api: Api, host_key: HostKey
) -> None:
    # Given a token for web01, When the CSR names dc01 (CN != enrolled name)
    token = str(offer(admin, host="web01")["token"])
    response = send_csr(api, token, "web01", host_key.csr("dc01"))

    # Then it is refused, nothing is issued, and the token still works for the real host
    assert response.status == 403 and "CN=web01" in response.body["error"]["message"]
    assert HostRepository().find("web01") is None
    assert send_csr(api, token, "web01", host_key.csr("web01")).status == 200


def test_re_enrolling_needs_replace_and_revokes_the_old_certificate(
    admin: Api, api: Api, aws: AwsStack, host_key: HostKey
) -> None:
    # Given web01 enrolled
    send_csr(api, str(offer(admin)["token"]), "web01", host_key.csr("web01"))
    old_cert = HostRepository().get("web01").cert_id
    assert old_cert is not None

    # When an admin enrolls web01 again without replace, Then it conflicts
    conflict = admin.post("/v1/enrollments", json_body={"host": "web01"})
    assert conflict.status == 409 and "replace" in conflict.body["error"]["message"]

    # When with replace, and the host enrolls with a new key
    token = str(offer(admin, replace=True)["token"])
    assert send_csr(api, token, "web01", HostKey.new().csr("web01")).status == 200

    # Then the old certificate is inactive and the new one active
    new_cert = HostRepository().get("web01").cert_id
    assert new_cert and new_cert != old_cert
    assert iot_status(aws, old_cert) == "INACTIVE"
    assert iot_status(aws, new_cert) == "ACTIVE"


def test_revoking_a_host_deactivates_its_certificate(
    admin: Api, api: Api, aws: AwsStack, host_key: HostKey
) -> None:
    send_csr(api, str(offer(admin)["token"]), "web01", host_key.csr("web01"))
    cert_id = HostRepository().get("web01").cert_id
    assert cert_id is not None

    response = admin.delete("/v1/hosts/web01")

    assert response.status == 200 and response.body["state"] == "revoked"
    assert iot_status(aws, cert_id) == "INACTIVE"
    refused = admin.post("/v1/jobs", json_body={"type": "ping", "host": "web01", "params": {}})
    assert refused.status == 422 and "revoked" in refused.body["error"]["message"]


def test_revoking_a_host_deactivates_and_audits_where_enrollment_is_not_deployed(
    admin: Api, api: Api, aws: AwsStack, host_key: HostKey
) -> None:
    # Given web01 enrolled, and an API container of a deployment without an enrollments table
    send_csr(api, str(offer(admin)["token"]), "web01", host_key.csr("web01"))
    cert_id = HostRepository().get("web01").cert_id
    assert cert_id is not None
    without_enrollment = {**aws.environments["ApiFunction"], "ENROLLMENTS_TABLE": ""}
    spec = next(f for f in aws.template.functions() if f.logical_id == "ApiFunction")
    other = Api(load_handler(spec, without_enrollment), token=admin.token)
    assert other.post("/v1/enrollments", json_body={"host": "web02"}).status == 404

    # When an admin revokes web01 through that container
    response = other.delete("/v1/hosts/web01")

    # Then the host is revoked, its certificate is inactive, and the trail says who did it
    assert response.status == 200 and response.body["state"] == "revoked"
    assert iot_status(aws, cert_id) == "INACTIVE"
    events = other.get("/v1/audit", query={"action": "host.revoke"}).body["events"]
    assert [(e["target"], e["details"]["cert_ids"]) for e in events] == [("host:web01", [cert_id])]


def test_the_script_for_a_used_link_fails_in_bash_without_changes(
    admin: Api, api: Api, host_key: HostKey, tmp_path: Path
) -> None:
    token = str(offer(admin)["token"])
    send_csr(api, token, "web01", host_key.csr("web01"))
    script = fetch_script(api, f"/v1/enroll/{token}.sh").text

    done = subprocess.run(
        ["bash"], input=script, capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin", "HOSTRELAY_PREFIX": str(tmp_path / "opt")},
    )  # fmt: skip

    assert done.returncode == 1 and "already used" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_tags_given_at_enrollment_are_the_host_s_once_it_enrolls(
    admin: Api, api: Api, host_key: HostKey
) -> None:
    # Given an enrollment of web01 with two tags
    token = str(offer(admin, tags={"role": "web", "site": "north"})["token"])
    # When the host enrolls
    assert send_csr(api, token, "web01", host_key.csr("web01")).status == 200
    # Then it carries them, and the tag filter finds it
    assert admin.get("/v1/hosts/web01").body["tags"] == {"role": "web", "site": "north"}
    found = admin.get("/v1/hosts", query={"tag": "role:web"}).body["hosts"]
    assert [host["name"] for host in found] == ["web01"]
    # And a re-enrollment without tags keeps them, one with tags replaces them
    token = str(offer(admin, replace=True)["token"])
    assert send_csr(api, token, "web01", HostKey.new().csr("web01")).status == 200
    assert admin.get("/v1/hosts/web01").body["tags"] == {"role": "web", "site": "north"}
    token = str(offer(admin, replace=True, tags={"role": "dc"})["token"])
    assert send_csr(api, token, "web01", HostKey.new().csr("web01")).status == 200
    assert admin.get("/v1/hosts/web01").body["tags"] == {"role": "dc"}


@pytest.mark.parametrize(
    "tags", [{"Role": "web"}, {"role": "a b"}, {f"k{n}": "v" for n in range(17)}, ["role=web"]]
)
def test_bad_tags_at_enrollment_are_refused_and_nothing_is_offered(
    admin: Api, aws: AwsStack, tags: object
) -> None:
    response = admin.post("/v1/enrollments", json_body={"host": "web01", "tags": tags})
    assert response.status == 422, response.body
    assert aws.client("dynamodb").scan(TableName=aws.ref("EnrollmentsTable"))["Items"] == []
