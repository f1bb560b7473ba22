"""Bench: signed envelopes one relay verifies, records and acknowledges (`accepted`) per second."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from hostrelay_contract.canonical_json import canonical_json
from hostrelay_local.broker import MosquittoBroker
from hostrelay_local.local_relay import LocalRelay, RelayOptions
from hostrelay_local.pki import LocalCA

TARGET_PER_S = 1000.0
HOST = "ingest01"


class EventCounter:
    """The control plane's side: counts `accepted` and `result` events as they arrive."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.results: dict[str, str] = {}
        self.hello = threading.Event()
        self.lock = threading.Condition()

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        event = json.loads(message.payload)
        with self.lock:
            if event["kind"] == "hello":
                self.hello.set()
            elif event["kind"] == "accepted":
                self.accepted.setdefault(event["job_id"], time.perf_counter())
            elif event["kind"] == "result":
                self.results.setdefault(event["job_id"], event["outcome"])
            elif event["kind"] == "rejected":
                raise RuntimeError(f"envelope rejected: {event['reason']} {event['message']}")
            self.lock.notify_all()

    def wait_for(self, job_ids: list[str], field: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while not all(j in getattr(self, field) for j in job_ids):
                if time.monotonic() > deadline:
                    have = sum(j in getattr(self, field) for j in job_ids)
                    raise TimeoutError(f"only {have}/{len(job_ids)} {field} events arrived")
                self.lock.wait(0.5)


def signed_pings(key: Ed25519PrivateKey, count: int) -> list[tuple[str, bytes]]:
    now = int(time.time())
    wires = []
    for _ in range(count):
        envelope = {
            "v": 1,
            "job_id": secrets.token_hex(13),
            "attempt": 1,
            "type": "ping",
            "host": HOST,
            "params": {},
            "issued_at": now,
            "expires_at": now + 600,
            "nonce": secrets.token_hex(16),
            "timeout_s": 60,
        }
        signature = base64.b64encode(key.sign(canonical_json(envelope))).decode()
        wire = json.dumps({"envelope": envelope, "signature": signature}).encode()
        wires.append((envelope["job_id"], wire))
    return wires


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish_all(client: mqtt.Client, wires: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(f"hostrelay/{HOST}/jobs", wire, qos=1) for _, wire in wires]
    for info in infos:
        info.wait_for_publish(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3000, help="envelopes to send")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    counter = EventCounter()
    with tempfile.TemporaryDirectory(prefix="relay-ingest-") as tmp:
        work = Path(tmp)
        ca = LocalCA(work / "pki")
        with MosquittoBroker(work / "broker", ca, max_queued_messages=1_000_000) as broker:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-control-plane")
            client.tls_set(
                ca_certs=str(ca.cert_path),
                certfile=str(broker.control_plane.cert_path),
                keyfile=str(broker.control_plane.key_path),
            )
            client.max_inflight_messages_set(1000)
            client.on_message = counter.on_message
            client.connect(broker.endpoint.host, broker.port)
            client.subscribe(f"hostrelay/{HOST}/events", qos=1)
            client.loop_start()
            # `accepted` at once: this bench times acknowledgements, and pings end too fast
            # for the default hold to let theirs out.
            options = RelayOptions(log_level="WARNING", extra={"accepted_hold_s": 0})
            relay = LocalRelay(HOST, work / "relay", options)
            relay.prepare(ca, broker.endpoint, public_pem)
            relay.start()
            try:
                if not counter.hello.wait(20):
                    raise TimeoutError(f"relay did not say hello:\n{relay.log_tail()}")
                warmup = signed_pings(key, args.warmup)
                publish_all(client, warmup)
                counter.wait_for([j for j, _ in warmup], "results", 60)

                wires = signed_pings(key, args.jobs)
                assert relay.pid is not None
                cpu_before = cpu_seconds(relay.pid)
                started = time.perf_counter()
                publish_all(client, wires)
                published = time.perf_counter()
                job_ids = [j for j, _ in wires]
                counter.wait_for(job_ids, "accepted", 120)
                last_accepted = max(counter.accepted[j] for j in job_ids)
                counter.wait_for(job_ids, "results", 120)
                finished = time.perf_counter()
                cpu_ms = (cpu_seconds(relay.pid) - cpu_before) * 1000 / args.jobs
            finally:
                relay.stop()
                client.loop_stop()
    failed = [j for j in job_ids if counter.results[j] != "succeeded"]
    accept_rate = args.jobs / (last_accepted - started)
    print(f"{args.jobs} signed ping envelopes → one relay over mosquitto (TLS, QoS 1):")
    print(f"  published in {published - started:.2f} s by a separate process")
    print(
        f"  verified + recorded + `accepted` received: {accept_rate:,.0f} envelopes/s "
        f"(target >= {TARGET_PER_S:,.0f}/s)"
    )
    print(f"  ran to a `result` event: {args.jobs / (finished - started):,.0f} jobs/s")
    print(
        f"  relay CPU per job (intake, run, result, acks): {cpu_ms:.2f} ms, i.e. "
        f"{1000 / cpu_ms:,.0f} jobs/s on one otherwise idle core; "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if failed:
        print(f"  {len(failed)} jobs did not succeed")
    ok = accept_rate >= TARGET_PER_S and not failed
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
