"""Long runs keep a valid bearer token: renewed before it expires, and once after a 401.

Against the Azure and Google fakes, whose tokens expire after `expires_in` (3599 s) on a clock
the test moves forward: an hour passes between two pages without sleeping an hour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostrelay.dal.azure_arm import AzureSubscriptions, client_credentials_token
from hostrelay.dal.bearer_token import RefreshingToken
from hostrelay.dal.google_apis import WORKSPACE_SCOPES, WorkspaceDirectory
from hostrelay.dal.google_token import service_account_token
from hostrelay.dal.rest_source import RestSource, SourceAuthFailed
from hostrelay.domain.cloud_sources import AzureResourceType
from tests.fakes.azure import AzureFake
from tests.fakes.google import GoogleFake, ServiceAccount

pytestmark = pytest.mark.integration

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0f6b2b7e-3c1a-4b7e-9d8e-5a1b2c3d4e5f"
SECRET = "Zq8~azure-client-secret-for-tests.Xy"
SUBSCRIPTION = "11111111-2222-4333-8444-555555555555"
ADMIN = "admin@example.test"
VMS = AzureResourceType.VIRTUAL_MACHINE


class Clock:
    """Wall time plus however far the test moved it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def azure(tmp_path: Path, clock: Clock) -> Iterator[AzureFake]:
    """Given a subscription with six VMs, listed two a page, and tokens that expire."""
    fake = AzureFake(tmp_path / "azure", TENANT, CLIENT, SECRET).start()
    fake.state.clock = clock
    for index in range(6):
        fake.state.add_vm(SUBSCRIPTION, "rg-web", f"web-{index}")
    yield fake
    fake.stop()


def azure_client(azure: AzureFake, clock: Clock) -> tuple[AzureSubscriptions, RefreshingToken]:
    login = RestSource(azure.base_url, {}, ca_bundle=azure.ca_file, clock=clock)
    token = RefreshingToken(
        lambda: client_credentials_token(login, TENANT, CLIENT, SECRET, clock=clock), clock=clock
    )
    arm = RestSource(azure.base_url, {}, ca_bundle=azure.ca_file, clock=clock, token=token)
    return AzureSubscriptions(arm, login), token


def test_an_azure_token_about_to_expire_is_renewed_before_the_next_page(
    azure: AzureFake, clock: Clock
) -> None:
    subscriptions, token = azure_client(azure, clock)
    pages = subscriptions.resources(SUBSCRIPTION, VMS)
    # Given the first page was read with a fresh token
    first = [next(pages), next(pages)]
    assert token.fetches == 1
    # When an hour passes before the next page (the token expires after 3599 s)
    clock.offset += 3600
    rest = list(pages)
    # Then a new token was fetched before asking, and no request was refused
    assert len(first + rest) == 6
    assert token.fetches == 2
    assert len(azure.state.tokens) == 2
    gets = [path for method, path in azure.state.requests if method == "GET"]
    assert len(gets) == 3  # one per page: nothing was asked twice
    # And 54 minutes later (more than the 5 minute margin before expiry) nothing renews
    clock.offset += 54 * 60
    assert len(list(subscriptions.resources(SUBSCRIPTION, VMS))) == 6
    assert token.fetches == 2


def test_a_token_refused_early_is_renewed_once_then_the_refusal_counts(
    azure: AzureFake, clock: Clock
) -> None:
    subscriptions, token = azure_client(azure, clock)
    pages = subscriptions.resources(SUBSCRIPTION, VMS)
    next(pages)
    # When the issuer revokes every token it gave (the next GET is a 401)
    azure.state.tokens.clear()
    # Then one new token is fetched and the listing goes on
    assert len([next(pages), *pages]) == 5
    assert token.fetches == 2
    # When the app's secret is rotated away, the renewal itself is refused: bad credentials
    azure.state.tokens.clear()
    azure.state.client_secret = "rotated"
    with pytest.raises(SourceAuthFailed):
        list(subscriptions.resources(SUBSCRIPTION, VMS))


@pytest.fixture
def google(tmp_path: Path, clock: Clock) -> Iterator[GoogleFake]:
    """Given a Workspace with five users, listed two a page, and tokens that expire."""
    fake = GoogleFake(tmp_path / "google", ServiceAccount("sync@corp.iam.gserviceaccount.com"))
    fake.start()
    fake.state.clock = clock
    fake.state.delegated_admins.add(ADMIN)
    for index in range(5):
        fake.state.add_user(f"10{index}", f"user{index}@example.test")
    yield fake
    fake.stop()


def test_a_google_token_is_renewed_before_it_expires_in_a_long_listing(
    google: GoogleFake, clock: Clock
) -> None:
    key_json = google.state.account.key_json(google.token_uri)
    token = RefreshingToken(
        lambda: service_account_token(
            key_json,
            scopes=WORKSPACE_SCOPES,
            token_uri=google.token_uri,
            subject=ADMIN,
            ca_bundle=google.ca_file,
            clock=clock,
        ),
        clock=clock,
    )
    source = RestSource(google.base_url, {}, ca_bundle=google.ca_file, clock=clock, token=token)
    directory = WorkspaceDirectory(source, "my_customer", page_size=2, token=token)
    users = directory.users()
    first = [next(users), next(users)]
    assert token.fetches == 1
    # When 59 minutes pass (inside the 5 minute margin before the 3599 s expiry)
    clock.offset += 59 * 60
    rest = list(users)
    # Then the listing finished with a second token, and nothing was refused
    assert len(first + rest) == 5
    assert token.fetches == 2 == len(google.state.token_requests)
    assert directory.calls == 2 + 3  # two token exchanges, three pages
    assert google.state.violations == []
