"""Times the cold import of every function's handler module, each in a fresh interpreter.

For each function in template.yaml this starts a new Python with the function's environment
(resource names replaced by dummies: nothing is contacted at import), and the child measures
only `exec_module` of the handler file with time.perf_counter, so interpreter start-up is
excluded. Each function is measured --runs times (after one warm-up run that writes .pyc
files) and the median is reported against --target-ms.

    python bench/cold_import.py                 # table for every function
    python bench/cold_import.py --profile Api   # plus the slowest imports (-X importtime)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hostrelay_local.template import FunctionSpec, Resolver, Template, load_template

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = REPO_ROOT / "layers" / "hostrelay"

# Runs in the child: import the handler file the way Lambda does and report the time.
CHILD = """
import importlib.util, json, sys, time
path = sys.argv[1]
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler_module", path)
module = importlib.util.module_from_spec(spec)
sys.modules["handler_module"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
print(json.dumps({"import_ms": elapsed * 1000, "modules": len(sys.modules)}))
"""


@dataclass
class Measurement:
    function: str
    handler: str
    runs_ms: list[float]
    modules: int
    error: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms) if self.runs_ms else float("nan")


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
        if not key.startswith(("POWERTOOLS_", "AWS_")) and key != "PYTHONPATH"
    }
    env.update(
        {
            # What Lambda sets: makes Powertools behave as in a real cold start.
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{spec.logical_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            # The layer first on the path, as /opt/python is in Lambda.
            "PYTHONPATH": str(LAYER_DIR),
        }
    )
    resolved = resolver.resolve(spec.environment)
    env.update({name: str(value) for name, value in resolved.items()})
    return env


def handler_path(spec: FunctionSpec) -> Path:
    module_name = spec.handler.rpartition(".")[0]
    return spec.code_uri / f"{module_name.replace('.', '/')}.py"


def measure(spec: FunctionSpec, env: dict[str, str], runs: int) -> Measurement:
    path = handler_path(spec)
    result = Measurement(spec.logical_id, str(path.relative_to(REPO_ROOT)), [], 0)
    for attempt in range(runs + 1):
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            env=env,
            cwd=spec.code_uri,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            result.error = (child.stderr.strip().splitlines() or ["failed"])[-1]
            return result
        report = json.loads(child.stdout.strip().splitlines()[-1])
        if attempt > 0:  # the first run writes .pyc files; Lambda's layer has them
            result.runs_ms.append(report["import_ms"])
        result.modules = report["modules"]
    return result


def import_profile(spec: FunctionSpec, env: dict[str, str], top: int) -> list[tuple[float, str]]:
    """The modules with the largest cumulative import time (-X importtime), in ms."""
    path = handler_path(spec)
    child = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CHILD, str(path)],
        env=env,
        cwd=spec.code_uri,
        capture_output=True,
        text=True,
        check=False,
    )
    rows: list[tuple[float, str]] = []
    for line in child.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 2:
            rows.append((int(cumulative) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per function")
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="also list the slowest imports of a function (prefix of its logical id)",
    )
    parser.add_argument("--top", type=int, default=15, help="rows of --profile output")
    args = parser.parse_args(argv)

    template = load_template()
    resolver = dummy_resolver(template)
    specs = template.functions()
    envs = {spec.logical_id: function_env(spec, resolver) for spec in specs}
    results = [measure(spec, envs[spec.logical_id], args.runs) for spec in specs]
    print(f"{'function':<20} {'handler':<28} {'median ms':>9} {'min ms':>7} {'modules':>7}  ")
    for r in results:
        if r.error:
            print(f"{r.function:<20} {r.handler:<28} {'-':>9} {'-':>7} {'-':>7}  ERROR {r.error}")
            continue
        verdict = "ok" if r.median_ms <= args.target_ms else f"SLOW (> {args.target_ms:.0f})"
        print(
            f"{r.function:<20} {r.handler:<28} {r.median_ms:>9.0f} {min(r.runs_ms):>7.0f} "
            f"{r.modules:>7}  {verdict}"
        )
    for prefix in args.profile:
        for spec in specs:
            if spec.logical_id.lower().startswith(prefix.lower()):
                print(f"\nslowest imports of {spec.logical_id} (cumulative ms, top levels):")
                for ms, name in import_profile(spec, envs[spec.logical_id], args.top):
                    print(f"  {ms:>7.1f}  {name}")
    failed = any(r.error or r.median_ms > args.target_ms for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
