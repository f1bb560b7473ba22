"""The local CA: it signs a host's CSR only for that host, and revocations reach the CRL."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hostrelay_local.pki import (
    CONTROL_PLANE_CN,
    CsrRejected,
    LocalCA,
    new_host_key_and_csr,
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return LocalCA(tmp_path_factory.mktemp("ca"))


def _csr(common_names, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def _pem(csr):
    from cryptography.hazmat.primitives import serialization

    return csr.public_bytes(serialization.Encoding.PEM)


def test_host_csr_is_signed_as_a_client_certificate_for_that_host(ca):
    # Given a host's key and CSR made on the host
    _key_pem, csr_pem = new_host_key_and_csr("dc01")

    # When the CA signs it for the enrolled host dc01
    cert = x509.load_pem_x509_certificate(ca.sign_host_csr(csr_pem, "dc01"))

    # Then the certificate names dc01, is for TLS clients only, and chains to the CA
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dc01"
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)


@pytest.mark.parametrize(
    ("csr_pem", "host", "message"),
    [
        pytest.param(
            lambda: _pem(_csr(["dc02"])),
            "dc01",
            "names 'dc02' but the enrolled host is 'dc01'",
            id="other-host",
        ),
        pytest.param(
            lambda: _pem(_csr(["dc01", "dc02"])),
            "dc01",
            "exactly one common name",
            id="two-names",
        ),
        pytest.param(
            lambda: _pem(_csr(["dc01"], rsa.generate_private_key(65537, 1024))),
            "dc01",
            "at least 2048 bits",
            id="weak-rsa",
        ),
        pytest.param(lambda: b"not a csr", "dc01", "not a PEM", id="garbage"),
        pytest.param(
            lambda: _pem(_csr([CONTROL_PLANE_CN])),
            CONTROL_PLANE_CN,
            "reserved",
            id="control-plane-name",
        ),
    ],
)
def test_csr_that_does_not_fit_the_host_is_refused(ca, csr_pem, host, message):
    # When the CA is asked to sign a CSR that does not belong to the enrolled host
    with pytest.raises(CsrRejected) as refused:
        ca.sign_host_csr(csr_pem(), host)

    # Then it refuses, saying why
    assert message in str(refused.value)


def test_host_name_that_is_not_a_dns_label_is_refused(ca, tmp_path):
    # When asked for a certificate for a name that cannot be a topic level
    with pytest.raises(ValueError, match="DNS label"):
        ca.issue_client_cert("dc01/#", tmp_path)


def test_revoked_certificate_is_listed_in_the_crl(ca, tmp_path):
    # Given a certificate the CA issued
    issued = ca.issue_client_cert("pc-revoked", tmp_path)

    # When it is revoked
    serial = ca.revoke(issued.cert_path.read_bytes())

    # Then the CRL, signed by the CA, lists its serial
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(ca.cert_pem).public_key())


def test_certificate_from_another_ca_cannot_be_revoked(ca, tmp_path):
    # Given a certificate from some other CA
    other = LocalCA(tmp_path / "other")
    foreign = other.issue_client_cert("dc01", tmp_path / "foreign")

    # When this CA is asked to revoke it, Then it refuses
    with pytest.raises(ValueError, match="not issued by this CA"):
        ca.revoke(foreign.cert_path.read_bytes())


def test_ca_key_is_private_and_the_ca_survives_reloading(tmp_path):
    # Given a CA created in a directory
    first = LocalCA(tmp_path / "ca")

    # When it is loaded again
    again = LocalCA(tmp_path / "ca")

    # Then it is the same CA, and its key is readable by its owner only
    assert again.cert_pem == first.cert_pem
    assert first.key_path.stat().st_mode & 0o077 == 0
