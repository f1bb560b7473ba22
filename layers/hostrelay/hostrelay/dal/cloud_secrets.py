"""Read a connector's credential from the secret its config names (never stored elsewhere)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from hostrelay.dal.aws_clients import client
from hostrelay.domain.inventory import SourceReadError


class CredentialUnavailable(SourceReadError):
    """The secret a connector names cannot be read: missing, denied, or empty."""

    code = "credential_unavailable"


def read_credential(arn: str) -> str:
    """The secret string behind `arn` (Secrets Manager secret or SSM SecureString)."""
    service = arn.split(":", 3)[2] if arn.count(":") >= 3 else ""
    try:
        if service == "secretsmanager":
            value = client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString")
        elif service == "ssm":
            name = "/" + arn.split(":parameter/", 1)[1]
            parameter = client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
            value = parameter.get("Value")
        else:
            raise CredentialUnavailable("the credential must be a Secrets Manager or SSM ARN")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        # The ARN names where to look; the message never carries what was (or was not) there.
        raise CredentialUnavailable(
            f"cannot read the connector's credential {arn}: {code}", details=[{"aws_error": code}]
        ) from None
    except BotoCoreError as exc:
        raise CredentialUnavailable(
            f"cannot read the connector's credential {arn}: {type(exc).__name__}"
        ) from None
    if not isinstance(value, str) or not value.strip():
        raise CredentialUnavailable(f"the connector's credential {arn} is empty or binary")
    return value.strip()
