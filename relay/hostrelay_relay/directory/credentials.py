"""The bind credential a job names in `ldap.credentials`, and the server it may be sent to."""

from __future__ import annotations

from hostrelay_contract.jobs.ldap import LdapConnectionParams
from hostrelay_relay.directory.errors import DirectoryError
from hostrelay_relay.endpoint_binding import BoundEndpoint, EndpointNotAllowed, bind_endpoint
from hostrelay_relay.settings import LdapCredential, LdapSettings

LDAP_DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}


def find_credential(settings: LdapSettings, name: str) -> LdapCredential:
    credential = settings.credentials.get(name)
    if credential is None:
        raise DirectoryError(
            "ldap_credential",
            f"no credential named {name!r} in this relay's ldap.credentials config",
        )
    return credential


def credential_endpoint(params: LdapConnectionParams, credential: LdapCredential) -> BoundEndpoint:
    """The server (one of the credential's own) and TLS verification this job gets.

    Raises EndpointNotAllowed when the job names another server than the credential's.
    """
    return bind_endpoint(
        params.credential,
        credential.urls,
        credential.verify_tls,
        requested_url=params.url,
        requested_verify_tls=params.verify_tls,
        default_ports=LDAP_DEFAULT_PORTS,
    )


def check_job_endpoint(settings: LdapSettings, params: LdapConnectionParams) -> None:
    """At intake: refuse a job that would send a configured credential to another server.

    An unknown credential name is left to the run, which fails it as `ldap_credential`.
    """
    credential = settings.credentials.get(params.credential)
    if credential is not None:
        credential_endpoint(params, credential)


def bound_endpoint(params: LdapConnectionParams, credential: LdapCredential) -> BoundEndpoint:
    """credential_endpoint, failing as a DirectoryError (`ldap_credential`) for a run."""
    try:
        return credential_endpoint(params, credential)
    except EndpointNotAllowed as refusal:
        raise DirectoryError("ldap_credential", str(refusal)) from None
