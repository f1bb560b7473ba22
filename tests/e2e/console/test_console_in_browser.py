"""The web console in a real headless Chromium against the whole local stack.

One stack and one browser for the module; the tests run in file order (dc01 is revoked last).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from hostrelay_local.stack import LocalStack
from tests.e2e.conftest import ApiClient
from tests.e2e.console.conftest import SLOW_LINES, Browser

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secrets_used(stack: LocalStack) -> list[str]:
    """Every API token the browser was given: none may ever show up in a URL or the page."""
    return [stack.admin_token]


@pytest.fixture(scope="module")
def admin_browser(browser: Browser, stack: LocalStack) -> Iterator[Browser]:
    browser.sign_in(stack.admin_token)
    browser.element("#hosts")
    yield browser


def new_token(api: ApiClient, name: str, *scopes: str) -> tuple[str, str]:
    response = api.post("/v1/tokens", {"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return response.json()["token"], response.json()["id"]


def session_token(browser: Browser) -> str | None:
    value = browser.driver.execute_script("return sessionStorage.getItem('hostrelay.token')")
    return None if value is None else str(value)


def test_admin_signs_in_with_the_keyboard_and_sees_dc01_online(
    browser: Browser, stack: LocalStack
) -> None:
    # Given the console's sign-in page
    browser.open()
    browser.element("#token")
    browser.screenshot("sign-in")
    # When the admin types the token and presses Enter
    browser.element("#token").send_keys(stack.admin_token, Keys.ENTER)
    # Then the hosts list shows dc01 online, its state in words, times in local time with UTC
    row = browser.element("#hosts tr[data-host=dc01]")
    browser.wait_text("#hosts tr[data-host=dc01] .badge", "online")
    assert "0.1" in row.text  # relay version
    last_seen = row.find_element(By.CSS_SELECTOR, "time")
    assert last_seen.get_attribute("title").endswith("(UTC)")
    browser.screenshot("hosts")
    # And the token lives in this tab's sessionStorage only, never in the page
    assert session_token(browser) == stack.admin_token
    assert browser.driver.execute_script("return localStorage.length") == 0
    assert stack.admin_token not in browser.driver.page_source
    # And on a 390-px phone screen the page does not scroll sideways (tables scroll alone)
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    browser.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    try:
        browser.wait(
            lambda d: (
                d.execute_script("return window.innerWidth") == 390 and browser.elements("#hosts")
            )
        )
        overflow = browser.driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        browser.screenshot("hosts-phone")
    finally:
        browser.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_ping_started_from_the_generated_form_succeeds(admin_browser: Browser) -> None:
    browser = admin_browser
    # Given the start form, generated from the API's schemas
    browser.go("#/jobs/new")
    Select(browser.element("#job-type")).select_by_value("ping")
    sleep_field = browser.element("input[name='params.sleep_s']")
    # Then its fields carry the API's own bounds: the browser refuses what the API would
    assert sleep_field.get_attribute("max") == "3600"
    sleep_field.send_keys("99999")
    assert browser.driver.execute_script("return arguments[0].validity.valid", sleep_field) is False
    sleep_field.clear()
    # And a pattern the browser cannot check first is still the API's to refuse, in detail
    Select(browser.element("#job-type")).select_by_value("macct.capture")
    image = browser.element("input[name='params.image']")
    assert image.get_attribute("pattern")  # the API's pattern, in the browser's regex dialect
    image.send_keys("no spaces allowed")
    assert browser.driver.execute_script("return arguments[0].validity.valid", image) is False
    browser.element("input[name='params.computer']").send_keys("pc01")
    browser.driver.execute_script("document.getElementById('new-job').noValidate = true")
    browser.element("#submit-job").click()
    assert "params.image" in browser.wait_text("#new-job .error", "422")
    Select(browser.element("#job-type")).select_by_value("ping")
    # When the operator starts a ping on dc01 with a message
    browser.element("[name='params.message']").send_keys("hello from the console")
    Select(browser.element("#job-host")).select_by_value("dc01")
    browser.screenshot("job-new")
    browser.element("#submit-job").click()
    # Then the job page follows it to SUCCEEDED, with its history and result
    browser.wait_text("#job-state", "SUCCEEDED")
    assert "Queued" in browser.text(".timeline")
    assert browser.elements("#job-result")
    assert "ping on dc01" in browser.text("h1")
    # And the output view stops following once the job's output is complete
    browser.wait_text("#output-title", "complete")
    browser.screenshot("job-ping")


def test_exec_output_appears_while_it_runs_and_cancel_stops_it(admin_browser: Browser) -> None:
    browser = admin_browser
    # Given an exec job that prints a line a second, started from the form
    browser.go("#/jobs/new")
    Select(browser.element("#job-type")).select_by_value("exec")
    argv = browser.element("textarea[name='params.argv']")
    argv.send_keys("/bin/sh\n-c\n" + SLOW_LINES)
    browser.element("#submit-job").click()
    # When its first lines arrive
    browser.wait_text("#job-output", "line 1")
    # Then they are on the page while the job still runs, and more follow
    assert "IN_PROGRESS" in browser.text("#job-state")
    assert browser.elements(".live")
    browser.wait_text("#job-output", "line 3")
    assert "IN_PROGRESS" in browser.text("#job-state")
    browser.screenshot("job-exec-live")
    # And cancel ends it
    browser.element("#cancel-job").click()
    browser.wait_text("#job-state", "CANCELED", timeout_s=30)
    assert "line 40" not in browser.text("#job-output")


def test_jobs_list_filters_and_pages(admin_browser: Browser, api: ApiClient) -> None:
    browser = admin_browser
    # Given more ping jobs than fit on one page
    for _ in range(26):
        api.create_job("ping", "dc01")
    # When the list is filtered to ping jobs
    browser.go("#/jobs")
    # (the type list fills in once the console has read the job types)
    browser.wait(lambda d: browser.elements("#job-filters select[name=type] option[value=ping]"))
    Select(browser.element("#job-filters select[name=type]")).select_by_value("ping")
    browser.element("#job-filters button[type=submit]").click()
    # Then a full page in which every row is a ping job (the unfiltered list, also a full
    # page, may show until the filtered one replaces it), and the next page holds other jobs
    browser.wait(lambda d: _rows_all_mention(browser, "ping", count=25))
    first_page = {row.get_attribute("data-job") for row in browser.elements("#jobs tr[data-job]")}
    browser.screenshot("jobs")
    browser.element(".pager button:last-child").click()
    browser.wait_text(".pager", "Page 2")
    browser.wait(lambda d: browser.elements("#jobs tr[data-job]"))
    second_page = {row.get_attribute("data-job") for row in browser.elements("#jobs tr[data-job]")}
    assert second_page and not (second_page & first_page)


def test_enrollment_shows_the_command_once_with_copy_and_countdown(
    admin_browser: Browser,
) -> None:
    browser = admin_browser
    browser.driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    # Given the hosts page
    browser.go("#/hosts")
    # When the admin enrolls pc01, tagged role=pc
    browser.element("#enroll input[name=host]").send_keys("pc01")
    browser.element("#enroll input[name=tags]").send_keys("role=pc")
    browser.element("#enroll button[type=submit]").click()
    # Then the one-line command appears, with a copy button and its expiry counting down
    command = browser.element("#enroll-command").get_attribute("value")
    assert "/v1/enroll/" in command
    assert re.search(r"expires in \d+:\d\d", browser.text("#enroll-offer"))
    browser.element("#copy-command").click()
    browser.wait_text("#copy-command", "Copied")
    assert browser.driver.execute_script("return navigator.clipboard.readText()") == command
    browser.screenshot("enroll")
    # And once dismissed it is gone from the page
    browser.driver.find_element(By.XPATH, "//button[contains(., 'Done')]").click()
    assert not browser.elements("#enroll-command")


def test_admin_edits_tags_and_filters_hosts_by_them(
    admin_browser: Browser, stack: LocalStack, api: ApiClient
) -> None:
    browser = admin_browser
    row = "#hosts tr[data-host=dc01]"
    # Given the hosts page
    browser.go("#/hosts")
    browser.element(row)
    # When the admin edits dc01's tags
    browser.element(f"{row} button.edit-tags").click()
    field = browser.element(f"{row} .tag-editor input[name=tags]")
    field.send_keys("role=dc site=north", Keys.ENTER)
    # Then the row shows them, and the API has them
    browser.wait_text(f"{row} .tags", "role=dc")
    assert browser.text(f"{row} .tag") == "role=dc site=north"
    assert api.get("/v1/hosts/dc01").json()["tags"] == {"role": "dc", "site": "north"}
    # When a tag is removed and another is invalid, Then the API's 422 is shown, nothing changes
    browser.element(f"{row} button.edit-tags").click()
    field = browser.element(f"{row} .tag-editor input[name=tags]")
    field.clear()
    field.send_keys("Role=dc", Keys.ENTER)
    assert "Role" in browser.wait_text(f"{row} .error", "(422)")
    assert api.get("/v1/hosts/dc01").json()["tags"] == {"role": "dc", "site": "north"}
    browser.driver.find_element(By.XPATH, "//button[normalize-space()='Cancel']").click()
    # When the hosts are filtered by tag, Then only the hosts carrying every tag are listed
    tag_filter = browser.element("form.filters input[name=tag]")
    tag_filter.send_keys("role:dc site:north", Keys.ENTER)
    browser.wait_text("#hosts caption", "tagged")
    assert [r.get_attribute("data-host") for r in browser.elements("#hosts tr[data-host]")] == [
        "dc01"
    ]
    browser.screenshot("hosts-tags")
    tag_filter.clear()
    tag_filter.send_keys("role:web", Keys.ENTER)
    browser.wait_text("#hosts caption", "0 hosts")
    browser.driver.find_element(By.XPATH, "//button[normalize-space()='Clear']").click()
    browser.element(row)


def test_inventory_connectors_and_audit_pages(admin_browser: Browser) -> None:
    browser = admin_browser
    # Given the demo directory connector has synced
    browser.go("#/inventory")
    browser.wait(lambda d: "user" in browser.text("#inventory-counts"), timeout_s=60)
    # When the operator opens an entity
    browser.element("#entities tbody button").click()
    # Then its attributes and the connector it came from are shown
    detail = browser.element("#entity-detail")
    assert "From connector" in detail.text and "Attributes" in detail.text
    browser.screenshot("inventory")
    # And the connectors page offers run now, whose run appears in the history
    browser.go("#/connectors")
    browser.element("#connectors tbody tr")
    # (with the outcome of its last run)
    browser.wait(lambda d: browser.elements("#connectors .last-run .badge"))
    browser.driver.find_element(By.XPATH, "//button[normalize-space()='Run now']").click()
    browser.wait(lambda d: browser.elements("#connector-runs tbody tr"))
    browser.screenshot("connectors")
    # And the audit trail lists what the admin did, enrollment of pc01 included
    # (filtered by action: a 1 s schedule fills the newest page with connector job audits)
    browser.go("#/audit")
    browser.element("input[name='action']").send_keys("enrollment.create\n")
    browser.wait_text("#audit", "pc01")
    assert '"tags":{"role":"pc"}' in browser.text("#audit").replace(" ", "")
    browser.screenshot("audit")


def start_run(api: ApiClient, params: dict[str, Any], **targets: Any) -> str:
    body = {"type": "ping", "params": params, "targets": targets}
    response = api.post("/v1/runs", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_runs_page_follows_a_ping_run_to_succeeded(admin_browser: Browser, api: ApiClient) -> None:
    browser = admin_browser
    # Given a ping run over the hosts tagged role=dc (dc01, tagged by the test above)
    run_id = start_run(api, {"message": "fleet hello"}, tags={"role": "dc"})
    # When the operator opens it from the runs list
    browser.go("#/runs")
    browser.element(f"#runs tr[data-run='{run_id}'] a").click()
    # Then its page follows it to SUCCEEDED, with progress and dc01's target row
    browser.wait_text("#run-state", "SUCCEEDED")
    assert "1 done · 0 in flight · 0 failed of 1" in browser.wait_text("#run-progress", "1 done")
    target = "#run-targets tr[data-host=dc01]"
    browser.wait_text(f"{target} .badge", "SUCCEEDED")
    job_link = browser.element(f"{target} a")
    assert job_link.get_attribute("href").endswith(f"#/jobs/{job_link.text}")
    # And times are local, with the UTC value on hover
    assert browser.element("#run-targets time").get_attribute("title").endswith("(UTC)")
    # And the finished run offers no cancel
    assert not browser.elements("#cancel-run")
    browser.screenshot("runs")
    # When the targets are filtered by a state none is in, Then no row is left
    Select(browser.element("#target-filters select[name=state]")).select_by_value("FAILED")
    browser.element("#target-filters button[type=submit]").click()
    browser.wait_text("#run-targets", "No targets on this page in FAILED")
    assert not browser.elements(target)
    # And the job link opens the target's job
    Select(browser.element("#target-filters select[name=state]")).select_by_value("SUCCEEDED")
    browser.element("#target-filters button[type=submit]").click()
    browser.element(f"{target} a").click()
    browser.wait_text("#job-state", "SUCCEEDED")
    assert "ping on dc01" in browser.text("h1")


def test_run_started_from_the_form_reaches_succeeded(
    admin_browser: Browser, api: ApiClient
) -> None:
    browser = admin_browser
    runs_before = len(api.get("/v1/runs").json()["runs"])
    # Given the run form, its params generated like the job form's
    browser.go("#/runs")
    browser.element("#start-run").click()
    Select(browser.element("#run-type")).select_by_value("ping")
    assert browser.element("input[name='params.sleep_s']").get_attribute("max") == "3600"
    # When a tag the API refuses is given, Then its 422 is shown and no run is started
    browser.element("#run-tags").send_keys("Role=dc")
    browser.element("#submit-run").click()
    assert "Role" in browser.wait_text("#new-run .error", "422")
    assert len(api.get("/v1/runs").json()["runs"]) == runs_before
    # When the operator starts a ping over role=dc, half the targets at once
    tags = browser.element("#run-tags")
    tags.clear()
    tags.send_keys("role=dc")
    browser.element("#run-max-concurrency").send_keys("50%")
    browser.element("[name='params.message']").send_keys("run from the console")
    browser.element("#submit-run").click()
    # Then its page follows it to SUCCEEDED, and the API has the run as the form said
    browser.wait_text("#run-state", "SUCCEEDED")
    browser.wait_text("#run-targets tr[data-host=dc01] .badge", "SUCCEEDED")
    run_id = browser.text("h1 + p.mono")
    run = api.get(f"/v1/runs/{run_id}").json()
    assert run["targets"]["tags"] == {"role": "dc"}
    assert run["max_concurrency"] == "50%"
    assert run["params"]["message"] == "run from the console"


def test_operator_cancels_a_run_after_a_confirmation_naming_it(
    admin_browser: Browser, api: ApiClient
) -> None:
    browser = admin_browser
    # Given a run whose ping on dc01 sleeps a minute, seen running on its page
    run_id = start_run(api, {"sleep_s": 60}, hosts=["dc01"])
    browser.go(f"#/runs/{run_id}")
    browser.wait_text("#run-targets", "IN_PROGRESS")
    assert "0 done · 1 in flight · 0 failed of 1" in browser.text("#run-progress")
    # When the admin asks to cancel it, Then the confirmation names the run, keeping it is safe
    browser.element("#cancel-run").click()
    assert run_id in browser.text(".confirm")
    assert browser.driver.switch_to.active_element.text == "Keep it running"
    # And confirming cancels the run and its running job
    browser.element("#confirm-cancel-run").click()
    browser.wait_text("#run-state", "CANCELED", timeout_s=30)
    assert api.get(f"/v1/runs/{run_id}").json()["state"] == "CANCELED"
    browser.wait_text("#run-targets tr[data-host=dc01] .badge", "CANCELED")


def test_reader_is_offered_nothing_it_cannot_do(
    browser: Browser, api: ApiClient, secrets_used: list[str]
) -> None:
    # Given a reader token and a running job
    reader, _ = new_token(api, "wall display", "reader")
    secrets_used.append(reader)
    running = api.create_job("ping", "dc01", {"sleep_s": 60})
    api.wait_for(running, lambda job: job["state"] == "IN_PROGRESS")
    run_id = None
    try:
        # When the reader signs in
        browser.sign_in(reader)
        browser.wait_text("#hosts tr[data-host=dc01]", "dc01")
        # Then dc01's row counts its running job
        browser.wait_text("#hosts tr[data-host=dc01] .running", "1")
        # And there is no enroll, revoke, tag editor, start, cancel or audit to click
        assert not browser.elements("#enroll")
        assert not browser.elements("button.edit-tags")
        assert not browser.driver.find_elements(By.XPATH, "//button[contains(., 'Revoke')]")
        assert "Audit" not in browser.text("header nav")
        browser.go("#/jobs")
        browser.element("#jobs")
        assert not browser.elements("#start-job")
        browser.go(f"#/jobs/{running}")
        browser.wait_text("#job-state", "IN_PROGRESS")
        assert not browser.elements("#cancel-job")
        # (nor a run's cancel, though the run still runs and the reader sees its targets)
        run_id = start_run(api, {"sleep_s": 60}, hosts=["dc01"])
        browser.go(f"#/runs/{run_id}")
        browser.wait_text("#run-state", "IN_PROGRESS")
        browser.element("#run-targets tr[data-host=dc01]")
        assert not browser.elements("#cancel-run")
        browser.go("#/runs")
        browser.element(f"#runs tr[data-run='{run_id}']")
        assert not browser.elements("#start-run")
        # And a page it reaches anyway says which scope is missing (the API's 403)
        browser.go("#/audit")
        assert "lacks the admin scope" in browser.wait_text(".error", "Not allowed")
    finally:
        api.post(f"/v1/jobs/{running}/cancel", {})
        if run_id:
            api.post(f"/v1/runs/{run_id}/cancel", {})


def test_service_token_is_offered_the_cancel_of_the_run_it_started(
    browser: Browser, api: ApiClient, secrets_used: list[str]
) -> None:
    # Given a service token for ping on dc01, and a run it started that sleeps a minute
    created = api.post(
        "/v1/tokens",
        {"name": "deploy bot", "scopes": ["service"], "job_types": ["ping"], "hosts": ["dc01"]},
    )
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    secrets_used.append(secret)
    run_id = start_run(ApiClient(api.base_url, secret), {"sleep_s": 60}, hosts=["dc01"])
    try:
        # When the service token signs in and opens its run
        browser.sign_in(secret)
        browser.element("#signout")
        browser.go(f"#/runs/{run_id}")
        browser.wait_text("#run-targets", "IN_PROGRESS")
        # Then it is offered the cancel the API allows it, and confirming cancels the run
        browser.element("#cancel-run").click()
        assert run_id in browser.text(".confirm")
        browser.element("#confirm-cancel-run").click()
        browser.wait_text("#run-state", "CANCELED", timeout_s=30)
        assert api.get(f"/v1/runs/{run_id}").json()["state"] == "CANCELED"
    finally:
        api.post(f"/v1/runs/{run_id}/cancel", {})


def test_invalid_or_revoked_token_lands_on_sign_in(
    browser: Browser, api: ApiClient, secrets_used: list[str]
) -> None:
    # When someone signs in with a token that does not exist
    browser.sign_in("hrt_this-is-not-a-token")
    # Then they stay on sign-in and are told why, and nothing is kept
    browser.wait_text(".error", "invalid token")
    assert browser.elements("#token")
    assert session_token(browser) is None
    # Given an operator signed in whose token is then revoked
    operator, token_id = new_token(api, "night shift", "operator")
    secrets_used.append(operator)
    browser.sign_in(operator)
    browser.element("#hosts")
    assert api.session.delete(f"{api.base_url}/v1/tokens/{token_id}", timeout=10).ok
    # When the console next calls the API
    browser.go("#/jobs")
    # Then the 401 sends them back to sign-in, with the token forgotten
    browser.element("#token")
    browser.wait_text(".error", "revoked")
    assert session_token(browser) is None


def test_revoke_asks_for_confirmation_naming_the_host(browser: Browser, stack: LocalStack) -> None:
    browser.sign_in(stack.admin_token)
    row = "#hosts tr[data-host=dc01]"
    # When the admin clicks revoke on dc01
    browser.element(f"{row} button.danger").click()
    # Then the confirmation names dc01, and keeping it changes nothing
    assert "Revoke dc01?" in browser.text(f"{row} .confirm")
    browser.screenshot("revoke-confirm")
    # (the keyboard lands on the safe choice)
    keep = browser.driver.switch_to.active_element
    assert keep.text == "Keep dc01"
    keep.send_keys(Keys.ENTER)
    assert not browser.elements(f"{row} .confirm")
    assert stack.host_state("dc01") != "revoked"
    # And confirming revokes it
    browser.element(f"{row} button.danger").click()
    browser.driver.find_element(By.XPATH, "//button[normalize-space()='Revoke dc01']").click()
    browser.wait_text(f"{row} .badge", "revoked")
    assert stack.host_state("dc01") == "revoked"


def test_no_token_ever_reached_a_url_or_the_page(browser: Browser, secrets_used: list[str]) -> None:
    # Given every URL the browser requested or showed during these tests
    urls = browser.collect_requests() + browser.history()
    assert any("/v1/hosts" in url for url in urls)  # the log did record the API calls
    # Then no token is in any of them, nor in the page
    for secret in secrets_used:
        assert not [url for url in urls if secret in url]
        assert secret not in browser.driver.page_source
    # And the page broke no rule of its Content-Security-Policy and threw no error
    console_log = browser.driver.get_log("browser")
    assert not [e for e in console_log if e["source"] == "security"]  # CSP violations
    assert not [e for e in console_log if e["source"] == "javascript"]
    # And signing out forgets the token
    browser.sign_out()
    assert session_token(browser) is None


def _rows_all_mention(browser: Browser, text: str, count: int) -> bool:
    """True when the jobs table shows `count` rows and each one mentions `text`."""
    try:
        rows = browser.elements("#jobs tr[data-job]")
        return len(rows) == count and all(text in row.text for row in rows)
    except StaleElementReferenceException:  # the table was re-rendered while being read
        return False
