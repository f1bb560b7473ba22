"""An OAuth access token for a Google service account key (signed JWT → token endpoint).

google-auth signs and exchanges the assertion; it is imported on first use, so functions
that never read Google do not pay its import at cold start.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC

import urllib3

from hostrelay.dal.bearer_token import IssuedToken
from hostrelay.dal.rest_source import (
    SourceAuthFailed,
    SourcePermissionDenied,
    SourceUnreachable,
)
from hostrelay.domain.inventory import SourceReadError


class ServiceAccountKeyInvalid(SourceReadError):
    """The secret is not a service account's JSON key."""

    code = "credential_unavailable"


# OAuth errors (RFC 6749 §5.2) that mean "this account may not do that", not "bad key".
_DENIED = ("unauthorized_client", "access_denied", "invalid_scope")


def service_account_token(
    key_json: str,
    *,
    scopes: Sequence[str],
    token_uri: str,
    subject: str | None = None,
    ca_bundle: str | None = None,
    timeout_s: float = 30.0,
    clock: Callable[[], float] = time.time,
) -> IssuedToken:
    """An access token for `scopes`, as `subject` when given (domain-wide delegation), and
    when it expires. The token endpoint is `token_uri` (the deployment's), never the one the
    key names."""
    from google.auth import exceptions
    from google.auth.transport.urllib3 import Request
    from google.oauth2 import service_account

    try:
        info = json.loads(key_json)
        info["token_uri"] = token_uri
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=list(scopes), subject=subject
        )
    except (ValueError, KeyError, TypeError, exceptions.GoogleAuthError):
        # Never the message: it may quote the key.
        raise ServiceAccountKeyInvalid(
            "the connector's credential is not a Google service account JSON key"
        ) from None
    http = urllib3.PoolManager(
        ssl_context=ssl.create_default_context(cafile=ca_bundle),
        timeout=urllib3.Timeout(total=timeout_s),
        retries=False,
    )
    try:
        credentials.refresh(Request(http))
    except exceptions.RefreshError as exc:
        reason = _oauth_error(exc)
        if exc.retryable:  # the endpoint failed (5xx) after google-auth's own retries
            raise SourceUnreachable(f"google token: the token endpoint failed ({reason})") from None
        if reason in _DENIED:
            raise SourcePermissionDenied(
                f"google token: the service account may not get these scopes ({reason})"
            ) from None
        raise SourceAuthFailed(f"google token: the key was refused ({reason})") from None
    except exceptions.TransportError as exc:
        raise SourceUnreachable(f"google token: {type(exc).__name__}") from None
    # google-auth's expiry is a naive UTC datetime (wall time + expires_in); the lifetime is
    # what counts, on `clock`. Without one, assume Google's usual hour.
    expiry = credentials.expiry
    lifetime = expiry.replace(tzinfo=UTC).timestamp() - time.time() if expiry else 3600.0
    return IssuedToken(str(credentials.token), clock() + lifetime)


def _oauth_error(exc: Exception) -> str:
    """The OAuth `error` code of a refused exchange (google-auth passes the response body)."""
    for arg in exc.args[1:]:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return str(arg["error"])[:64]
    return "refused"
