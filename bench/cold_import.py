"""Times the cold import of every function's handler module, each in a fresh interpreter.

For each function in template.yaml this starts a new Python with the function's environment
(intrinsics resolved to parameter defaults and dummy resource names: nothing is contacted at
import) and the variables Lambda sets. The child measures only `exec_module` of the handler
file with time.perf_counter, so interpreter start-up is excluded. Each function is measured
--runs times after one warm-up run (which writes .pyc files, as the deployed layer ships them:
layers/hostrelay/Makefile), in rounds that run the floor and every function once each, so a
change in the machine's load falls on both sides of a ratio; the median CPU time of the import
is compared with --target-ms (wall time is shown too, but on a busy machine it also counts
waiting for a CPU). A figure over its goal is marked, not an error: the exit status is 1 only
when a handler fails to import (`make bench` goes on to the next script).

Beside each function: its import as a multiple of the floor, measured the same way in the same
run: importing botocore and creating one client, which any Python function that talks to AWS
pays (and which the Lambda runtime's own boto3 does not spare it). --target-ratio (1.3) is the
goal; the ratio, not the milliseconds, is comparable between machines. On a loaded machine
(load average above the core count) even CPU time swells with the other processes' cache and
memory traffic, unevenly from run to run: the ratio of the fastest runs ("min x") is printed
beside the medians', as the steadier figure of the code's own cost.

Packages come from this virtualenv by default. It holds dev tools Lambda does not have (awscrt,
pyOpenSSL), which botocore picks up when present and which slow its import; for figures that
match Lambda, point --site at a directory holding only the layer's requirements, such as what
`sam build` leaves in .aws-sam/build/SharedLayer/python, or `pip install --target DIR -r
layers/hostrelay/requirements.txt`. The child then runs isolated (-I -S) with just the stdlib,
that directory and the layer code on its path.

    python bench/cold_import.py                          # table for every function
    python bench/cold_import.py --site .aws-sam/build/SharedLayer/python   # as deployed
    python bench/cold_import.py --profile Api            # plus the slowest imports
    python bench/cold_import.py --first-request /v1/jobs/01J0000000000000000000000Z  # API: + 1st

The API builds each router (its module, its models, its routes' validation) on the first
request under its paths, so its import alone understates a container's start:
--first-request adds one unauthenticated GET (answered 401 without contacting AWS, after the
route's router and request models are built) to the API's timed part.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostrelay_local.template import FunctionSpec, Resolver, Template, load_template

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = REPO_ROOT / "layers" / "hostrelay"

# Runs in the child: put the code on the path as Lambda does, import the handler file, report.
# With HOSTRELAY_BENCH_EVENT set, a handler module with a `resolver` (the API) also answers
# that event, as a container's first request: what the import defers is paid there.
CHILD = """
import importlib.util, json, os, sys, time
path = sys.argv[1]
sys.path[:0] = sys.argv[2:]
start, cpu_start = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("handler_module", path)
module = importlib.util.module_from_spec(spec)
sys.modules["handler_module"] = module
spec.loader.exec_module(module)
event = os.environ.get("HOSTRELAY_BENCH_EVENT")
if event and hasattr(module, "resolver"):
    module.resolver.resolve(json.loads(event), None)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
print(json.dumps({"import_ms": elapsed * 1000, "cpu_ms": cpu * 1000, "modules": len(sys.modules)}))
"""

# The floor: import botocore and create one client, measured like a handler import.
FLOOR_CODE = """
import botocore.session
botocore.session.get_session().create_client(
    "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
)
"""


@dataclass
class Measurement:
    function: str
    handler: str
    runs_ms: list[float]
    cpu_ms: list[float] = field(default_factory=list)
    modules: int = 0
    error: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms) if self.runs_ms else float("nan")

    @property
    def median_cpu_ms(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")

    @property
    def min_cpu_ms(self) -> float:
        return min(self.cpu_ms) if self.cpu_ms else float("nan")


@dataclass
class Child:
    """How to start the child interpreter for one function."""

    spec: FunctionSpec
    env: dict[str, str]
    site: Path | None

    @property
    def handler_path(self) -> Path:
        module_name = self.spec.handler.rpartition(".")[0]
        return self.spec.code_uri / f"{module_name.replace('.', '/')}.py"

    def command(self, *python_flags: str) -> list[str]:
        # Lambda's path: the function's code, then the layer (/opt/python), which also holds
        # the job contract the relay shares (relay/hostrelay_contract).
        paths = [str(self.spec.code_uri), str(LAYER_DIR), str(REPO_ROOT / "relay")]
        flags = list(python_flags)
        if self.site is not None:
            paths.append(str(self.site))
            flags += ["-I", "-S"]  # no virtualenv, no site-packages, no PYTHON* variables
        return [sys.executable, *flags, "-c", CHILD, str(self.handler_path), *paths]

    def run(self, *python_flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*python_flags),
            env=self.env,
            cwd=self.spec.code_uri,
            capture_output=True,
            text=True,
            check=False,
        )


@dataclass
class FloorChild(Child):
    """The floor, run as a handler file of its own with a function's environment."""

    path: Path = Path()

    @property
    def handler_path(self) -> Path:
        return self.path


def floor_child(env: dict[str, str], site: Path | None, work: Path) -> FloorChild:
    path = work / "floor.py"
    path.write_text(FLOOR_CODE)
    spec = FunctionSpec(
        logical_id="floor", code_uri=work, handler="floor.handler", environment={}, timeout_s=3
    )
    return FloorChild(spec, env, site, path)


def dummy_resolver(template: Template) -> Resolver:
    """Resolves intrinsics to parameter defaults and dummy resource names."""
    refs = {name: str(spec.get("Default", "")) for name, spec in template.parameters.items()}
    refs.update({"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"})
    refs.update({"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"})
    attrs: dict[tuple[str, str], str] = {}
    for logical_id, resource in template.resources.items():
        refs[logical_id] = f"dummy-{logical_id}"
        if resource["Type"] == "AWS::SQS::Queue":
            refs[logical_id] = f"https://sqs.us-east-1.amazonaws.com/123456789012/{logical_id}"
        for attr in ("Arn", "QueueName", "QueueUrl"):
            attrs[(logical_id, attr)] = f"dummy-{logical_id}-{attr}"
    return Resolver(refs, attrs)


def function_env(spec: FunctionSpec, resolver: Resolver) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "AWS_", "PYTHON"))
    }
    env.update(
        {
            # What Lambda sets: Powertools behaves as in a real cold start (tracing on).
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{spec.logical_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
    )
    resolved = resolver.resolve(spec.environment)
    env.update({name: str(value) for name, value in resolved.items()})
    return env


def measure_in_rounds(children: list[Child], runs: int) -> list[Measurement]:
    """One warm-up run of each (it writes the .pyc files a deployed layer has), then `runs`
    rounds of one run of each, in turn."""
    results = [Measurement(child.spec.logical_id, _handler_label(child), []) for child in children]
    for attempt in range(runs + 1):
        for child, result in zip(children, results, strict=True):
            if result.error:
                continue
            done = child.run()
            if done.returncode != 0:
                result.error = (done.stderr.strip().splitlines() or ["failed"])[-1]
                continue
            report = json.loads(done.stdout.strip().splitlines()[-1])
            if attempt > 0:
                result.runs_ms.append(report["import_ms"])
                result.cpu_ms.append(report["cpu_ms"])
            result.modules = report["modules"]
    return results


def _handler_label(child: Child) -> str:
    if isinstance(child, FloorChild):
        return "botocore + one client"
    return str(child.handler_path.relative_to(REPO_ROOT))


def import_profile(child: Child, top: int) -> list[tuple[float, str]]:
    """The modules with the largest cumulative import time (-X importtime), in ms."""
    rows: list[tuple[float, str]] = []
    for line in child.run("-X", "importtime").stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part for part in line[len("import time:") :].split("|"))
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if depth <= 3:
            rows.append((int(cumulative) / 1000, "  " * depth + name.strip()))
    return sorted(rows, key=lambda row: row[0], reverse=True)[:top]


def first_request(path: str) -> dict[str, Any]:
    """A GET of `path` without a token, from the sample event of the health route."""
    event: dict[str, Any] = json.loads((REPO_ROOT / "events" / "api_health.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per function")
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument(
        "--target-ratio", type=float, default=1.3, help="goal: import CPU time / the floor's"
    )
    parser.add_argument(
        "--site", type=Path, help="packages dir to use instead of this virtualenv (isolated)"
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="also list the slowest imports of a function (prefix of its logical id)",
    )
    parser.add_argument("--top", type=int, default=20, help="rows of --profile output")
    parser.add_argument(
        "--first-request",
        metavar="PATH",
        help="the API also answers a GET of PATH without a token (a 401, after its router and "
        "models are built), timed with its import: e.g. /v1/jobs/01J0000000000000000000000Z",
    )
    args = parser.parse_args(argv)

    template = load_template()
    resolver = dummy_resolver(template)
    site = args.site.resolve() if args.site else None
    children = [Child(spec, function_env(spec, resolver), site) for spec in template.functions()]
    if args.first_request:
        for child in children:
            child.env["HOSTRELAY_BENCH_EVENT"] = json.dumps(first_request(args.first_request))
    print(f"packages: {site or sys.prefix}")
    with tempfile.TemporaryDirectory(prefix="hostrelay-floor-") as work:
        floor_run = floor_child(children[0].env, site, Path(work))
        floor, *measured = measure_in_rounds([floor_run, *children], args.runs)
    if floor.error:
        print(f"floor: {floor.error}")
        return 1
    header = f"{'function':<20} {'handler':<28} {'median ms':>9} {'min ms':>7} {'cpu ms':>7}"
    print(f"{header} {'modules':>7} {'x floor':>7} {'min x':>6}")
    print(
        f"{floor.function:<20} {floor.handler:<28} {floor.median_ms:>9.0f} "
        f"{min(floor.runs_ms):>7.0f} {floor.median_cpu_ms:>7.0f} {floor.modules:>7} {1:>7.2f} "
        f"{1:>6.2f}"
    )
    failed = False
    for r in measured:
        if r.error:
            failed = True
            print(
                f"{r.function:<20} {r.handler:<28} {'-':>9} {'-':>7} {'-':>7} {'-':>7} {'-':>7}"
                f" {'-':>6}  {r.error}"
            )
            continue
        # CPU time decides: wall time also counts waiting for a busy CPU.
        ratio = r.median_cpu_ms / floor.median_cpu_ms
        min_ratio = r.min_cpu_ms / floor.min_cpu_ms
        # The ratio is the goal (comparable between machines); milliseconds are this machine's.
        over = [f"over {args.target_ratio:g}x floor"] if ratio > args.target_ratio else []
        slow = r.median_cpu_ms > args.target_ms
        over += [f"over {args.target_ms:.0f} ms"] if slow else []
        verdict = ", ".join(over) or "ok"
        print(
            f"{r.function:<20} {r.handler:<28} {r.median_ms:>9.0f} {min(r.runs_ms):>7.0f} "
            f"{r.median_cpu_ms:>7.0f} {r.modules:>7} {ratio:>7.2f} {min_ratio:>6.2f}  {verdict}"
        )
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    for prefix in args.profile:
        for child in children:
            if child.spec.logical_id.lower().startswith(prefix.lower()):
                print(f"\nslowest imports of {child.spec.logical_id} (cumulative ms):")
                for ms, name in import_profile(child, args.top):
                    print(f"  {ms:>7.1f}  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
