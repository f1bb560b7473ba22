"""The web console's figures against a local stack, each beside a baseline from the same run.

1. Navigation to the hosts list rendered with data (the page's own User Timing mark), with an
   empty browser cache and with a warm one (assets revalidated by ETag); baseline: the API
   calls that page makes, timed from Python.
2. Output latency of a running exec job: from the moment a line was printed (the line is the
   wall-clock time, printed by bench/print_times.py, so this includes the relay's batching
   before it publishes) until the text
   appears in the page (a MutationObserver on the output box); baseline: a client polling the
   same API every 50 ms, on the same job at the same time.
3. Size of the console's JavaScript and CSS as served gzip-compressed; baseline: uncompressed.

Goals from issue #14: hosts list <= 1 s, output latency <= 1.5 s, JS+CSS gzip <= 60 KB.
Run:

    python bench/console.py [--loads 10] [--lines 12]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hostrelay.console.assets import STATIC_DIR
from hostrelay_local.headless_chromium import chromium_missing, headless_chromium
from hostrelay_local.stack_process import StackProcess

# The exec job's command: a plain script allowed by its exact path (a shell is a launcher,
# which the relay refuses without argument rules).
PRINT_TIMES = str(Path(__file__).resolve().with_name("print_times.py"))
LINE_INTERVAL_S = 1.3
HOSTS_RENDERED = "hostrelay:hosts-rendered"
# Records, for each output line not seen before, the wall-clock second it appeared.
WATCH_OUTPUT = """
const box = document.getElementById('job-output');
window.__seen = {};
const note = () => {
  const now = (performance.timeOrigin + performance.now()) / 1000;
  for (const line of box.textContent.split('\\n')) {
    if (line && !(line in window.__seen)) window.__seen[line] = now;
  }
};
note();
window.__watchStarted = (performance.timeOrigin + performance.now()) / 1000;
new MutationObserver(note).observe(box, {childList: true, subtree: true, characterData: true});
"""


def summary(values: list[float], unit: str) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):.0f} {unit}, p90 {p90:.0f} {unit}, "
        f"max {ordered[-1]:.0f} {unit} (n={len(ordered)})"
    )


def api_round_ms(session: requests.Session, api: str) -> float:
    """What the hosts list waits for, one after the other as the page asks (the running-job
    counts fill in after it shows)."""
    started = time.perf_counter()
    session.get(f"{api}/v1/whoami", timeout=10).raise_for_status()
    session.get(f"{api}/v1/hosts", timeout=10).raise_for_status()
    return (time.perf_counter() - started) * 1000


def hosts_rendered_ms(driver: Any, url: str) -> float:
    driver.get("about:blank")
    driver.get(url)
    mark = WebDriverWait(driver, 20, poll_frequency=0.02).until(
        lambda d: d.execute_script(
            "const m = performance.getEntriesByName(arguments[0]);"
            " return m.length && m[0].startTime",
            HOSTS_RENDERED,
        )
    )
    return float(mark)


def measure_hosts(driver: Any, api: str, token: str, loads: int) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url = f"{api}/console/#/hosts"
    driver.get(f"{api}/console/")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "token"))
    driver.execute_script("sessionStorage.setItem('hostrelay.token', arguments[0])", token)
    driver.execute_cdp_cmd("Network.enable", {})
    results: dict[str, list[float]] = {"cold": [], "warm": [], "api": []}
    for n in range(loads + 2):
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        cold = hosts_rendered_ms(driver, url)
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
        warm = hosts_rendered_ms(driver, url)
        api_ms = api_round_ms(session, api)
        if n >= 2:  # the first two warm up the API's containers and the browser
            results["cold"].append(cold)
            results["warm"].append(warm)
            results["api"].append(api_ms)
    print("hosts list rendered with data, from navigation start (goal <= 1000 ms):")
    print(f"  empty cache            {summary(results['cold'], 'ms')}")
    print(f"  warm cache (ETag 304)  {summary(results['warm'], 'ms')}")
    print(f"  baseline: its 2 API calls from Python  {summary(results['api'], 'ms')}")


def poll_api_output(
    api: str, token: str, job_id: str, seen: dict[str, float], stop: threading.Event
) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    after, text = -1, b""
    while not stop.is_set():
        page = session.get(f"{api}/v1/jobs/{job_id}/output?after_seq={after}", timeout=10).json()
        now = time.time()
        for chunk in page["chunks"]:
            text += base64.b64decode(chunk["data"])
        for line in text.decode(errors="replace").split("\n"):
            if line:
                seen.setdefault(line, now)
        after = page["next_seq"]
        if page["complete"]:
            return
        stop.wait(0.05)


def measure_output(driver: Any, api: str, token: str, lines: int) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    argv = [PRINT_TIMES, str(lines), str(LINE_INTERVAL_S)]
    body = {"type": "exec", "host": "dc01", "params": {"argv": argv}}
    created = session.post(f"{api}/v1/jobs", json=body, timeout=10)
    created.raise_for_status()
    job_id = created.json()["id"]
    api_seen: dict[str, float] = {}
    stop = threading.Event()
    poller = threading.Thread(
        target=poll_api_output, args=(api, token, job_id, api_seen, stop), daemon=True
    )
    poller.start()
    driver.get(f"{api}/console/#/jobs/{job_id}")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "job-output"))
    driver.execute_script(WATCH_OUTPUT)
    WebDriverWait(driver, 30 + 2 * lines, poll_frequency=0.2).until(
        lambda d: (
            "SUCCEEDED" in d.find_element(By.ID, "job-state").text
            and "complete" in d.find_element(By.ID, "output-title").text
        )
    )
    stop.set()
    poller.join(timeout=10)
    page_seen: dict[str, float] = driver.execute_script("return window.__seen")
    started: float = driver.execute_script("return window.__watchStarted")
    page_ms, api_ms = [], []
    for line, shown in page_seen.items():
        try:
            printed = float(line)
        except ValueError:
            continue
        if printed < started:  # printed before the page was watching
            continue
        page_ms.append((shown - printed) * 1000)
        if line in api_seen:
            api_ms.append((api_seen[line] - printed) * 1000)
    print("output latency, line printed -> visible (goal <= 1500 ms):")
    print(f"  console page (polls ~1/s)           {summary(page_ms, 'ms')}")
    print(f"  baseline: API polled every 50 ms    {summary(api_ms, 'ms')}")


def measure_size(api: str) -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in (".js", ".css"))
    gzip_total = plain_total = 0
    for name in names:
        url = f"{api}/console/{name}"
        packed = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
        assert packed.headers.get("Content-Encoding") == "gzip", name
        gzip_total += len(packed.raw.read(decode_content=False))
        plain_total += len(requests.get(url, headers={"Accept-Encoding": "identity"}).content)
    print("console JavaScript and CSS as served (goal <= 60 KB gzip):")
    print(f"  gzip            {gzip_total / 1024:.1f} KB in {len(names)} files")
    print(f"  baseline: raw   {plain_total / 1024:.1f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=10, help="page loads of each kind")
    parser.add_argument(
        "--lines", type=int, default=12, help=f"output lines, {LINE_INTERVAL_S} s apart"
    )
    args = parser.parse_args()
    if reason := chromium_missing():
        raise SystemExit(reason)
    stack_args = ["--no-samba", "--no-directory", "--allow-exec", PRINT_TIMES]
    with (
        tempfile.TemporaryDirectory() as state,
        StackProcess(Path(state), extra_args=stack_args) as stack,
        headless_chromium() as driver,
    ):
        measure_size(stack.api_url)
        measure_hosts(driver, stack.api_url, stack.admin_token, args.loads)
        measure_output(driver, stack.api_url, stack.admin_token, args.lines)


if __name__ == "__main__":
    main()
