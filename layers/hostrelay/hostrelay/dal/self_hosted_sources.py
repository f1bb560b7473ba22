"""Self-hosted sources (Authentik, Kubernetes) read from the cloud, with the token its secret holds.

The reading itself is hostrelay_sources, the same code a relay runs; here it gets the token
from Secrets Manager/SSM and its failures become the run's source errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hostrelay.dal.cloud_secrets import read_credential
from hostrelay.domain.connector_settings import (
    AuthentikConnectorSettings,
    KubernetesConnectorSettings,
    SelfHostedSettings,
)
from hostrelay.domain.inventory import SourceReadError
from hostrelay.domain.sync_cursor import CursorExpired
from hostrelay_sources.authentik import AuthentikApi
from hostrelay_sources.errors import SourceError
from hostrelay_sources.kubernetes import KubernetesChanges, VersionExpired
from hostrelay_sources.readers import SourceRead, read_kubernetes_changes, read_source
from hostrelay_sources.retry import RetryPolicy


def as_read_error(error: SourceError) -> SourceReadError:
    """The source's failure as a run error, keeping its code (bad_credentials, ...)."""
    translated = SourceReadError(error.message, details=error.details)
    translated.code = error.code
    return translated


@contextmanager
def source_errors() -> Iterator[None]:
    try:
        yield
    except SourceError as error:
        raise as_read_error(error) from None


class CloudSourceSession:
    """One connector's source as the discovery function reaches it."""

    def __init__(
        self, settings: SelfHostedSettings, *, ca_file: str | None, max_wait_s: float
    ) -> None:
        self._settings = settings
        self._ca_file = ca_file
        self._retry = RetryPolicy(max_wait_s=max_wait_s)
        self.calls = 0
        self.positions: dict[str, str] = {}

    def _token(self) -> str:
        if self._settings.credential_arn is None:
            raise SourceReadError(
                "this connector's token is a file on a relay (credential_file): its runs are "
                "connector.sync jobs on that host, not cloud jobs"
            )
        return read_credential(self._settings.credential_arn)

    def read(self, should_stop: Callable[[], bool]) -> SourceRead:
        token = self._token()
        with source_errors():
            read = read_source(
                self._settings.source(),
                token,
                should_stop,
                ca_file=self._ca_file,
                retry=self._retry,
            )
        self.calls += read.api_calls
        self.positions = read.positions
        return read

    def read_changes(
        self, versions: dict[str, str], should_stop: Callable[[], bool]
    ) -> KubernetesChanges | None:
        """A Kubernetes cluster's changes since `versions`; CursorExpired when it no longer
        has them (the run then reads everything, on this session)."""
        if not isinstance(self._settings, KubernetesConnectorSettings):
            raise SourceReadError("only a kubernetes connector reads its changes")
        token = self._token()
        with source_errors():
            try:
                changes, calls = read_kubernetes_changes(
                    self._settings.source(),
                    token,
                    versions,
                    should_stop,
                    ca_file=self._ca_file,
                    retry=self._retry,
                )
            except VersionExpired as expired:
                self.calls += expired.api_calls
                raise CursorExpired from None
        self.calls += calls
        return changes

    def authentik(self) -> AuthentikApi:
        if not isinstance(self._settings, AuthentikConnectorSettings):
            raise SourceReadError("not an authentik connector")
        return AuthentikApi.connect(
            self._settings.base_url,
            self._token(),
            page_size=self._settings.page_size,
            ca_file=self._ca_file,
            retry=self._retry,
        )
