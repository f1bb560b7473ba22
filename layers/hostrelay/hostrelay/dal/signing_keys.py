"""The envelope-signing key pair in SSM Parameter Store, created on first use."""

from __future__ import annotations

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
            # Another cold start won the race: use its key, never ours.
            return self.load_or_create()
        ssm.put_parameter(
            Name=self._public_param, Value=_public_pem(key), Type="String", Overwrite=True
        )
        return key

    def public_key_pem(self) -> str | None:
        ssm = client("ssm")
        try:
            return str(ssm.get_parameter(Name=self._public_param)["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            return None
