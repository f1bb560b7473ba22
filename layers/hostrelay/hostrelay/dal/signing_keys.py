"""The envelope-signing key pair in SSM Parameter Store, created on first use."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hostrelay.dal.aws_clients import client


def _public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class SigningKeyStore:
    """Private key as a SecureString; the public key as a plain String others may read."""

    def __init__(self, private_param: str, public_param: str) -> None:
        self._private_param = private_param
        self._public_param = public_param

    def load_or_create(self) -> Ed25519PrivateKey:
        ssm = client("ssm")
        try:
            value = ssm.get_parameter(Name=self._private_param, WithDecryption=True)
        except ssm.exceptions.ParameterNotFound:
            return self._create()
        key = serialization.load_pem_private_key(value["Parameter"]["Value"].encode(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError(f"{self._private_param} does not hold an Ed25519 key")
        return key

    def _create(self) -> Ed25519PrivateKey:
        key = self._store_new_key()
        if key is None:
            # Another cold start won the race: use its key, never ours.
            return self.load_or_create()
        self._publish_public(key)
        return key

    def _store_new_key(self) -> Ed25519PrivateKey | None:
        """A fresh key pair, its private half stored if there is none yet; None if there was."""
        ssm = client("ssm")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        try:
            ssm.put_parameter(
                Name=self._private_param,
                Value=pem,
                Type="SecureString",
                Overwrite=False,
                Description="hostrelay envelope-signing key (Ed25519, PKCS#8 PEM)",
            )
        except ssm.exceptions.ParameterAlreadyExists:
            return None
        return key

    def _publish_public(self, key: Ed25519PrivateKey) -> str:
        public = _public_pem(key)
        client("ssm").put_parameter(
            Name=self._public_param, Value=public, Type="String", Overwrite=True
        )
        return public

    def public_key_pem(self) -> str | None:
        ssm = client("ssm")
        try:
            return str(ssm.get_parameter(Name=self._public_param)["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            return None

    def ensure_public_key_pem(self, wait_s: float = 5.0) -> str:
        """The public key, creating the pair first if there is none (before any dispatch).

        Never reads the private key: when another function created it concurrently, this
        waits for that function to publish the public half.
        """
        deadline = time.monotonic() + wait_s
        while True:
            pem = self.public_key_pem()
            if pem:
                return pem
            key = self._store_new_key()
            if key is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self._public_param} is missing") from None
                time.sleep(0.2)
                continue
            return self._publish_public(key)
