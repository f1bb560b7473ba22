"""Envelope signatures checked through libcrypto agree with `cryptography` on every case."""

from __future__ import annotations

import ctypes
import os
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hostrelay_relay.ed25519 import Ed25519PublicKey, _libcrypto
from hostrelay_relay.envelope import load_public_key

# The order of the Ed25519 group: S + L encodes the same scalar as S (a malleated signature).
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def public_key(signing_key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return load_public_key(_pem(signing_key))


def test_a_genuine_signature_verifies(signing_key, public_key):
    # Given a message signed by the control plane's key
    message = b'{"job_id":"01J","type":"ping"}'

    # When the relay checks it, Then it verifies
    assert public_key.verify(signing_key.sign(message), message)
    assert public_key.verify(signing_key.sign(b""), b"")


def test_any_changed_bit_in_the_signature_fails(signing_key, public_key):
    # Given a valid signature
    message = os.urandom(200)
    signature = signing_key.sign(message)

    # When any single bit of it is flipped, Then it no longer verifies
    for position in range(len(signature) * 8):
        flipped = bytearray(signature)
        flipped[position // 8] ^= 1 << (position % 8)
        assert not public_key.verify(bytes(flipped), message), position


def test_changed_message_other_key_and_wrong_lengths_fail(signing_key, public_key):
    message = b"hello"
    signature = signing_key.sign(message)
    assert not public_key.verify(signature, b"hellO")
    assert not public_key.verify(signature, message + b"\x00")
    assert not public_key.verify(Ed25519PrivateKey.generate().sign(message), message)
    assert not public_key.verify(signature[:63], message)
    assert not public_key.verify(signature + b"\x00", message)
    assert not public_key.verify(b"", message)
    assert not public_key.verify(bytes(64), message)


def test_a_malleated_signature_is_refused(signing_key, public_key):
    # Given a valid signature R || S and the same S plus the group order (not canonical)
    message = b"pay once"
    signature = signing_key.sign(message)
    s_value = int.from_bytes(signature[32:], "little") + GROUP_ORDER
    malleated = signature[:32] + s_value.to_bytes(32, "little")

    # Then only the canonical one verifies
    assert public_key.verify(signature, message)
    assert not public_key.verify(malleated, message)


def test_a_failed_check_leaves_no_openssl_error_behind(signing_key, public_key):
    # Given the thread's OpenSSL error queue (the ssl module reads it to explain TLS errors)
    lib = _libcrypto()
    lib.ERR_peek_error.restype = ctypes.c_ulong

    # When a bad signature is checked, Then nothing is left queued
    assert not public_key.verify(bytes(64), b"x")
    assert lib.ERR_peek_error() == 0


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a key", id="text"),
        pytest.param(
            b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", id="bad-base64"
        ),
        pytest.param(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            id="ec-key",
        ),
    ],
)
def test_a_public_key_that_is_not_ed25519_is_refused(pem):
    with pytest.raises(ValueError):
        load_public_key(pem)


def test_a_truncated_ed25519_key_is_refused(signing_key):
    # Given the raw bytes of an Ed25519 public key
    raw = signing_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )

    # Then the 32 bytes load and the first 31 do not
    with pytest.raises(ValueError):
        Ed25519PublicKey(raw[:31])
    assert Ed25519PublicKey(raw).raw == raw


def test_one_key_verifies_from_many_threads(signing_key, public_key):
    # Given signed messages and forged ones
    messages = [os.urandom(64) for _ in range(50)]
    signatures = [signing_key.sign(message) for message in messages]
    failures: list[str] = []

    def check() -> None:
        for message, signature in zip(messages, signatures, strict=True):
            if not public_key.verify(signature, message):
                failures.append("genuine refused")
            if public_key.verify(signature, message[::-1]):
                failures.append("forgery accepted")

    # When eight threads check them at once, Then each answer is right
    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
