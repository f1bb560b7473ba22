"""macct.capture against a real domain: secrets stored privately on the DC, never reported."""

from __future__ import annotations

import base64
import json
import os
import stat

from hostrelay_relay.handlers.macct_capture import MacctCaptureHandler
from hostrelay_relay.macct.capture_store import CaptureStore
from hostrelay_relay.settings import RelaySettings
from tests.integration.macct.conftest import DC_NAME, Domain, RunJob


def test_capture_stores_the_computers_secrets_in_a_private_file(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a computer account with a password
    (name,) = domain.computers(1)
    before = domain.secrets(name)
    # When its secrets are captured for an image (name given in lower case with '$')
    run = run_job(MacctCaptureHandler, {"image": "win11.qcow2", "computer": f"{name.lower()}$"})
    # Then the job reports what was captured, but no value
    assert run.error is None and run.result is not None
    assert run.result["image"] == "win11.qcow2"
    assert run.result["computer"] == name
    assert run.result["attributes"] == ["unicodePwd", "supplementalCredentials"]
    shown = json.dumps(run.result)
    assert before.unicode_pwd is not None and before.supplemental_credentials is not None
    for secret in (before.unicode_pwd, before.supplemental_credentials):
        assert base64.b64encode(secret).decode() not in shown
        assert secret.hex() not in shown
    # And the store holds exactly the directory's bytes, in 0600/0700 root-owned files
    store = CaptureStore(settings.state_dir)
    captured = store.load("win11.qcow2")
    assert captured.secrets.unicode_pwd == before.unicode_pwd
    assert captured.secrets.supplemental_credentials == before.supplemental_credentials
    path = store.path_for("win11.qcow2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.key_file.stat().st_mode) == 0o600
    for directory in (store.root, store.images_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert path.stat().st_uid == os.geteuid() == 0
    assert not [p for p in store.images_dir.iterdir() if p.name.endswith(".tmp")]


def test_capture_again_replaces_the_images_secrets(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given an image captured from one computer
    first, second = domain.computers(2)
    run_job(MacctCaptureHandler, {"image": "img", "computer": first})
    # When the image is captured again from another computer
    run = run_job(MacctCaptureHandler, {"image": "img", "computer": second})
    # Then the stored secrets are the second computer's
    assert run.error is None
    captured = CaptureStore(settings.state_dir).load("img")
    assert captured.computer == second
    assert captured.secrets.unicode_pwd == domain.secrets(second).unicode_pwd


def test_capture_of_an_unknown_computer_fails_and_stores_nothing(
    settings: RelaySettings, run_job: RunJob
) -> None:
    # When a computer that does not exist is captured
    run = run_job(MacctCaptureHandler, {"image": "img", "computer": "NOSUCHPC"})
    # Then the job fails with computer_not_found and no capture exists
    assert run.error is not None and run.error.code == "computer_not_found"
    assert not CaptureStore(settings.state_dir).path_for("img").exists()


def test_capture_refuses_a_domain_controller_and_a_user(
    domain: Domain, settings: RelaySettings, run_job: RunJob
) -> None:
    # Given a user account, and the domain's DC account
    user = domain.user()
    for computer in (DC_NAME, user):
        # When either is captured
        run = run_job(MacctCaptureHandler, {"image": "img", "computer": computer})
        # Then the job is refused and nothing is stored
        assert run.error is not None and run.error.code == "account_refused"
    assert not CaptureStore(settings.state_dir).path_for("img").exists()
