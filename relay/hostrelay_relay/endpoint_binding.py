"""A secret in the relay config goes only to the servers listed beside it, with verified TLS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


class EndpointNotAllowed(ValueError):
    """A job asked to send a credential somewhere its config does not list, or with weaker TLS."""


@dataclass(frozen=True)
class BoundEndpoint:
    """Where a credential may be used for one job, and whether the server must prove itself."""

    url: str
    verify_tls: bool


def endpoint_key(url: str, default_ports: Mapping[str, int]) -> tuple[str, str, int | None]:
    """(scheme, host, port) with case and default ports evened out, for comparing URLs."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    return (
        scheme,
        (parts.hostname or "").lower().rstrip("."),
        parts.port or default_ports.get(scheme),
    )


def bind_endpoint(
    credential_name: str,
    allowed_urls: Sequence[str],
    credential_verifies_tls: bool,
    *,
    requested_url: str | None,
    requested_verify_tls: bool | None,
    default_ports: Mapping[str, int],
) -> BoundEndpoint:
    """The endpoint a job gets: one of the credential's own URLs (the first when it names none).

    A job can ask for TLS verification the config turned off, never turn it off itself.
    Raises EndpointNotAllowed before anything was sent anywhere.
    """
    if not allowed_urls:
        raise EndpointNotAllowed(f"credential {credential_name!r} lists no server it is for")
    if requested_verify_tls is False and credential_verifies_tls:
        raise EndpointNotAllowed(
            f"a job cannot turn TLS verification off for credential {credential_name!r};"
            " only the relay config can"
        )
    verify = credential_verifies_tls or requested_verify_tls is True
    if requested_url is None:
        return BoundEndpoint(allowed_urls[0], verify)
    wanted = endpoint_key(requested_url, default_ports)
    for url in allowed_urls:
        if endpoint_key(url, default_ports) == wanted:
            return BoundEndpoint(url, verify)
    raise EndpointNotAllowed(
        f"credential {credential_name!r} may only be sent to {', '.join(allowed_urls)};"
        f" not to {requested_url}"
    )
