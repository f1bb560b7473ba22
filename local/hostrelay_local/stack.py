"""The local stack (`make run`): moto, mosquitto, the IoT bridge, the HTTP API, pollers, a relay."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn

import requests
from ulid import ULID

from hostrelay_local.aws_resources import LocalResources, create_resources, function_environment
from hostrelay_local.broker import BrokerFailed, MosquittoBroker
from hostrelay_local.event_recorder import EventRecorder, attach_recorder
from hostrelay_local.event_sources import (
    AsyncInvoker,
    ScheduleEventSource,
    SqsEventSource,
    failure_record,
    schedule_period_s,
)
from hostrelay_local.fleet import (
    DEFAULT_RELAYS_PER_PROCESS,
    FleetFailed,
    FleetOptions,
    LocalFleet,
    parse_tag,
)
from hostrelay_local.fleet_worker import MAX_RELAYS_PER_PROCESS
from hostrelay_local.functions import FunctionRuntime
from hostrelay_local.http_api import HttpApiGateway
from hostrelay_local.iot_bridge import (
    AwsClients,
    BridgeFailed,
    IotDataEndpoint,
    MqttIdentity,
    TopicRule,
    bridges_by_topic_filter,
    publish_without_http,
    rules_by_topic_filter,
    topic_rules,
)
from hostrelay_local.iot_registry import LocalIotRegistry
from hostrelay_local.lambda_invoke import invoke_in_process, withdraw
from hostrelay_local.leftovers import StateDirBusy, StateDirLock, end_leftovers
from hostrelay_local.local_relay import (
    DEMO_EXEC_COMMANDS,
    LocalRelay,
    RelayEnrollmentFailed,
    RelayOptions,
)
from hostrelay_local.moto_endpoint import MotoServer
from hostrelay_local.pki import IssuedCert, LocalCA
from hostrelay_local.samba_domain import SambaDomain, SambaDomainError, ensure_demo_domain
from hostrelay_local.slapd import DirectoryShape, SlapdServer
from hostrelay_local.system_packages import (
    BROKER_REQUIREMENTS,
    DIRECTORY_REQUIREMENTS,
    SAMBA_REQUIREMENTS,
    MissingPackages,
    Requirement,
    require,
)
from hostrelay_local.template import REPO_ROOT, Template, load_template
from hostrelay_relay.isolation.command_policy import launcher_reason

logger = logging.getLogger("hostrelay_local")

REGION = "us-east-1"
DEFAULT_API_PORT = 3000
RELAY_HOST = "dc01"
RELAY_ROLE = "dc"
FLEET_ROLE = "agent"
STATE_FILE = "stack.json"
DEMO_CREDENTIAL = "demo-directory"
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
_API_FUNCTION = "ApiFunction"
_DISPATCH_FUNCTION = "DispatchFunction"
_HTTP_EVENT_TYPES = ("HttpApi", "Api")
_SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")
_RELAY_ONLINE_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 5.0  # per child: SIGTERM, then SIGKILL (Ctrl-C ends everything in seconds)
_SUPERVISE_EVERY_S = 0.5


class StackFailed(RuntimeError):
    """A part of the local stack did not start; the message says why and what to do."""


@dataclass
class _RestartPolicy:
    """Restart at once; while restarts keep coming, wait 1 s, doubling to 30 s, in between."""

    delay_s: float = 0.0
    last: float = float("-inf")

    def due(self, now: float) -> bool:
        if now - self.last < self.delay_s:
            return False
        calm = now - self.last > 60.0
        self.delay_s = 0.0 if calm else min(30.0, max(1.0, self.delay_s * 2))
        self.last = now
        return True


def default_state_dir() -> Path:
    """`$HOSTRELAY_STATE_DIR`, else `<repo>/.hostrelay` (git-ignored)."""
    configured = os.environ.get("HOSTRELAY_STATE_DIR")
    return Path(configured) if configured else REPO_ROOT / ".hostrelay"


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


@dataclass
class StackOptions:
    """How to run the stack; every field has a default that suits `make run`."""

    api_port: int = DEFAULT_API_PORT  # 0 = any free port
    api_host: str = "127.0.0.1"
    with_relay: bool = True
    with_samba: bool = True
    with_directory: bool = True  # a demo slapd and an ldap connector for dc01
    directory_schedule: str = "rate(1 minute)"
    # None = the harmless demo commands; launcher tables as in relay.toml's exec.allowed_commands
    exec_commands: tuple[str | dict[str, Any], ...] | None = None
    schedule_period_s: float | None = None  # override every rate(...) schedule
    heartbeat_s: int | None = None  # template parameter HeartbeatSeconds (and the relay's)
    function_log_level: str | None = None  # template parameter LogLevel (None: its default)
    pollers_per_queue: int = 1
    sqs_wait_time_s: int = 1
    stage: str = "dev"
    relay_package: str = ""  # what enrolled hosts pip-install; "" = this checkout's relay/
    # Threads that wake on I/O wait for the GIL up to this long (Python's default is 5 ms);
    # a short interval keeps each hop of a job quick while other threads are busy.
    switch_interval_s: float | None = 0.001
    # `--fleet N`: N more enrolled relays (fleet-001 …) in a few processes, for fleet runs.
    fleet: FleetOptions = field(default_factory=FleetOptions)

    @classmethod
    def from_environment(cls) -> StackOptions:
        """Defaults plus HOSTRELAY_PORT, HOSTRELAY_SWEEP_S (seconds between ticks of every
        schedule) and HOSTRELAY_RELAY_PACKAGE."""
        options = cls()
        port = os.environ.get("HOSTRELAY_PORT")
        if port:
            options.api_port = int(port)
        options.schedule_period_s = _env_float("HOSTRELAY_SWEEP_S")
        options.relay_package = os.environ.get("HOSTRELAY_RELAY_PACKAGE", "")
        return options


class _ProcessEnvironment:
    """os.environ changes the in-process functions need; undone on `restore`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, key: str, value: str | None) -> None:
        if key not in self._saved:
            self._saved[key] = os.environ.get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved.clear()


def _reset_control_plane_caches() -> None:
    """Forget boto3 clients and settings bound to a stack's endpoints."""
    from hostrelay.dal.aws_clients import client
    from hostrelay.settings import load_settings

    client.cache_clear()
    load_settings.cache_clear()


class LocalStack:
    """Everything `make run` runs: moto and the functions in this process, mosquitto and the
    relay as children.

    `start()` returns once the API answers and the relay said hello; `stop()` undoes it all.
    Use as a context manager in tests and benches.
    """

    def __init__(self, state_dir: Path | None = None, options: StackOptions | None = None):
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.options = options or StackOptions()
        self.template: Template = load_template()
        self.resources: LocalResources | None = None
        self.functions: dict[str, FunctionRuntime] = {}
        self._async_invoker: AsyncInvoker | None = None
        self.moto = MotoServer()
        self.ca: LocalCA | None = None
        self.broker: MosquittoBroker | None = None
        self.relay: LocalRelay | None = None
        self.state_changes: EventRecorder | None = None
        self.fleet: LocalFleet | None = None
        self.directory: SlapdServer | None = None
        self.samba_domain: SambaDomain | None = None
        self.connector_id = ""
        self.admin_token = ""
        self.public_key_pem = ""
        self._env = _ProcessEnvironment()
        self._iot_data: IotDataEndpoint | None = None
        self._api: HttpApiGateway | None = None
        self._sources: list[SqsEventSource | ScheduleEventSource] = []
        self._stop_steps: list[Callable[[], None]] = []
        self._saved_switch_interval: float | None = None
        self._rules: list[TopicRule] = []
        self._owns_state_dir = False
        self.stopping = False  # stop() began: a Ctrl-C now must not interrupt it
        self._restarts = {
            "broker": _RestartPolicy(),
            "relay": _RestartPolicy(),
            "fleet": _RestartPolicy(),
        }

    # --- public ----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise RuntimeError("the stack is not started")
        return self._api.url

    @property
    def token_file(self) -> Path:
        return self.state_dir / TOKEN_FILE

    def start(self) -> LocalStack:
        self.stopping = False
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything started, newest first; safe to call more than once."""
        self.stopping = True
        while self._stop_steps:
            step = self._stop_steps.pop()
            began = time.monotonic()
            try:
                step()
            except Exception:
                logger.exception("stopping a part of the stack failed")
            logger.debug(
                "stopped a part",
                extra={"step": getattr(step, "__qualname__", ""), "s": time.monotonic() - began},
            )
        if self._owns_state_dir:  # a stack refused the directory leaves the other's file
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
            self._owns_state_dir = False
        self._env.restore()
        _reset_control_plane_caches()
        if self._saved_switch_interval is not None:
            sys.setswitchinterval(self._saved_switch_interval)
            self._saved_switch_interval = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def async_invocations_pending(self) -> int:
        """Asynchronous invocations (topic rules', the API's) queued or running."""
        return self._async_invoker.pending if self._async_invoker is not None else 0

    def aws_client(self, service: str) -> Any:
        """A boto3 client for the stack's moto, in this process (outside: `moto.endpoint_url`)."""
        import boto3

        make_client: Any = boto3.client
        return make_client(
            service,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        )

    def host_state(self, name: str) -> str | None:
        """The control plane's view of a host (`online`, `offline`, `revoked`), None if unknown."""
        from hostrelay.dal.hosts_repo import HostRepository

        record = HostRepository().find(name)
        return None if record is None else str(record.state)

    def hosts_in_state(self, names: set[str], state: str) -> set[str]:
        """Which of `names` the control plane sees in `state` (one scan of the hosts table)."""
        from hostrelay.dal.hosts_repo import HostRepository

        return {
            host.name
            for host in HostRepository().all()
            if host.name in names and str(host.state) == state
        }

    def wait_host_state(self, name: str, state: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.host_state(name) == state:
                return True
            time.sleep(0.05)
        return False

    def restart_relay(self) -> None:
        """Stop and start the relay (a relay restart on the host: it says hello again)."""
        if self.relay is None:
            raise RuntimeError("this stack runs no relay")
        self.relay.stop()
        self.relay.start()

    def supervise(self) -> None:
        """Restart the broker or the relay if it ended by itself (reaping it first).

        A part stopped on purpose (`stop`, `relay.stop()`) is left alone.
        """
        now = time.monotonic()
        broker, relay = self.broker, self.relay
        if broker is not None and broker.needs_restart() and self._restarts["broker"].due(now):
            logger.warning(
                "broker exited, restarting it",
                extra={"code": broker.exited(), "log": str(broker.log_path)},
            )
            try:
                broker.restart()
            except BrokerFailed as exc:
                logger.error("broker did not restart", extra={"reason": str(exc)[-500:]})
            self._write_state()
        fleet = self.fleet
        if fleet is not None and fleet.needs_restart() and self._restarts["fleet"].due(now):
            for process in fleet.restart_exited():
                logger.warning(
                    "fleet worker exited, restarted it",
                    extra={"worker": process.number, "log": str(process.log_path)},
                )
            self._write_state()
        if relay is not None and relay.needs_restart() and self._restarts["relay"].due(now):
            logger.warning(
                "relay exited, restarting it",
                extra={"host": relay.host, "code": relay.exited(), "log": str(relay.log_path)},
            )
            try:
                relay.start()
            except OSError as exc:
                logger.error("relay did not restart", extra={"reason": str(exc)})
            self._write_state()

    # --- start-up --------------------------------------------------------------------------

    def _check_system_packages(self) -> None:
        """Stop before anything starts when a part asked for lacks its Debian packages."""
        parts: list[tuple[str, tuple[Requirement, ...], str | None]] = [
            ("MQTT broker", BROKER_REQUIREMENTS, None)
        ]
        if self.options.with_relay and self.options.with_samba:
            parts.append(("demo Samba AD domain", SAMBA_REQUIREMENTS, "--no-samba"))
        if self.options.with_directory:
            parts.append(("demo directory (slapd)", DIRECTORY_REQUIREMENTS, "--no-directory"))
        problems = []
        for part, requirements, leave_out_flag in parts:
            try:
                require(part, requirements, leave_out_flag)
            except MissingPackages as exc:
                problems.append(str(exc))
        if problems:
            raise StackFailed("\n".join(problems))

    def _start(self) -> None:
        if self.options.switch_interval_s:
            self._saved_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(self.options.switch_interval_s)
        self._check_system_packages()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._own_state_dir()
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        self._set_aws_environment()
        self._start_moto()
        self._start_broker()
        self._start_iot_bridge()
        self._load_functions()
        self._prepare_control_plane()
        self._start_event_sources()
        self._start_api()
        if self.options.with_directory:
            self._start_directory()
        if self.options.with_relay:
            self._start_relay()
            if self.directory is not None:
                self._create_demo_connector()
        if self.options.fleet.size > 0:
            self._start_fleet()
        # Start-up left ~250k long-lived objects (moto, handlers, modules): keep them out of
        # the collector's full passes, which otherwise stall every thread for ~0.2 s at times.
        gc.freeze()
        self._stop_steps.append(gc.unfreeze)
        self._write_state()

    def _own_state_dir(self) -> None:
        """Lock the state directory for this stack, and end what a killed one left running."""
        lock = StateDirLock(self.state_dir)
        try:
            lock.acquire()
        except StateDirBusy as exc:
            raise StackFailed(str(exc)) from None
        self._stop_steps.append(lock.release)  # the first step taken: undone last
        self._owns_state_dir = True
        end_leftovers(self.state_dir, _STOP_TIMEOUT_S)

    def _set_aws_environment(self) -> None:
        env = self._env
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.set(key, None)
        for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
            env.set(key, None)  # only moto and the local IoT endpoint may answer
        env.set("AWS_ACCESS_KEY_ID", "testing")
        env.set("AWS_SECRET_ACCESS_KEY", "testing")
        env.set("AWS_CONFIG_FILE", os.devnull)
        env.set("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.set("AWS_EC2_METADATA_DISABLED", "true")
        env.set("AWS_DEFAULT_REGION", REGION)
        env.set("AWS_REGION", REGION)
        env.set("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon here
        if "POWERTOOLS_METRICS_DISABLED" not in os.environ:
            env.set("POWERTOOLS_METRICS_DISABLED", "true")  # EMF blobs only clutter the console
        _reset_control_plane_caches()

    def _start_moto(self) -> None:
        self.moto.start()
        self._stop_steps.append(self.moto.stop)
        import boto3

        # Hosts enrolled from this stack install the relay from this checkout, not PyPI.
        parameters = {"RelayPackage": self.options.relay_package or str(REPO_ROOT / "relay")}
        if self.options.heartbeat_s is not None:
            parameters["HeartbeatSeconds"] = str(self.options.heartbeat_s)
        if self.options.function_log_level is not None:
            parameters["LogLevel"] = self.options.function_log_level
        self.resources = create_resources(
            boto3.session.Session(region_name=REGION),
            stage=self.options.stage,
            template=self.template,
            parameters=parameters,
        )
        # What the functions put on the state-change bus, recorded for tests and `make run`.
        recorder_url = attach_recorder(
            boto3.session.Session(region_name=REGION), self.resources.refs["StateChangeBus"]
        )
        self.state_changes = EventRecorder(self.aws_client("sqs"), recorder_url).start()
        self._stop_steps.append(self.state_changes.stop)
        logger.info("aws resources created", extra={"endpoint": self.moto.endpoint_url})

    def _start_broker(self) -> None:
        assert self.resources is not None
        self._rules = topic_rules(self.template, self.resources)
        self.ca = LocalCA(self.state_dir / "pki")
        self.broker = MosquittoBroker(
            self.state_dir / "broker",
            self.ca,
            topic_rule_bridges=max(1, len(rules_by_topic_filter(self._rules))),
        )
        self.broker.start()
        broker = self.broker
        self._stop_steps.append(lambda: broker.stop(_STOP_TIMEOUT_S))
        logger.info("broker started", extra={"port": self.broker.port})
        # IoT Core signs and revokes host certificates; here the broker's CA does.
        registry = LocalIotRegistry(self.ca, self.broker).start()
        self._stop_steps.append(registry.stop)
        self._env.set("AWS_ENDPOINT_URL_IOT", registry.endpoint_url)  # boto3's `iot` client

    def _broker_identity(self, issued: IssuedCert) -> MqttIdentity:
        assert self.broker is not None
        endpoint = self.broker.endpoint
        return MqttIdentity(
            endpoint.host, endpoint.port, endpoint.ca_file, issued.cert_path, issued.key_path
        )

    def _start_iot_bridge(self) -> None:
        assert self.resources is not None and self.broker is not None
        self._iot_data = IotDataEndpoint(self._broker_identity(self.broker.control_plane))
        self._iot_data.start()
        self._stop_steps.append(self._iot_data.stop)
        # boto3's `iot-data` (service id "IoT Data Plane") honours this endpoint variable.
        self._env.set("AWS_ENDPOINT_URL_IOT_DATA_PLANE", self._iot_data.endpoint_url)
        publish_without_http()  # the functions run in this process
        # A `Lambda` action's invocations wait for the functions, loaded after the bridges.
        self._async_invoker = AsyncInvoker(
            self.functions,
            workers=self.options.pollers_per_queue,
            on_failure=self._send_to_failure_destination,
        )
        self._async_invoker.start()
        self._stop_steps.append(self._async_invoker.stop)
        # A function's asynchronous invocation of another (the API starting the dispatch
        # function for a fresh job) is queued here the same way.
        for spec in self.template.functions():
            name = self.resources.refs[spec.logical_id]
            invoke_in_process(name, partial(self._async_invoker.invoke, spec.logical_id))
            self._stop_steps.append(partial(withdraw, name))
        clients = AwsClients(
            sqs=self.aws_client("sqs"),
            dynamodb=self.aws_client("dynamodb"),
            invoke=self._async_invoker.invoke,
        )
        identities = [self._broker_identity(issued) for issued in self.broker.topic_rules]
        # Once a bridge's subscription is acknowledged, mosquitto writes it to disk: the
        # broker then queues events for the bridge even after it was killed and restarted.
        bridges = bridges_by_topic_filter(
            identities, clients, self._rules, on_subscribed=self.broker.save_sessions
        )
        for bridge in bridges:
            bridge.start()
            self._stop_steps.append(bridge.stop)

    def _send_to_failure_destination(
        self, function: str, event: dict[str, Any], error: str
    ) -> None:
        """An asynchronous invocation Lambda gave up on goes to the function's on-failure
        destination (an SQS queue in the template), or is logged and dropped."""
        assert self.resources is not None
        spec = self.template.resources[function]["Properties"]
        destination = spec.get("EventInvokeConfig", {}).get("DestinationConfig", {})
        target = destination.get("OnFailure", {})
        if target.get("Type") != "SQS":
            logger.error("async invocation dropped", extra={"function": function})
            return
        arn = self.resources.resolver().resolve(target["Destination"])
        [queue_url] = [
            self.resources.attrs[(logical_id, "QueueUrl")]
            for (logical_id, attr), value in self.resources.attrs.items()
            if attr == "Arn" and value == arn
        ]
        record = failure_record(
            self.resources.attrs[(function, "Arn")], event, error, AsyncInvoker.ATTEMPTS
        )
        self.aws_client("sqs").send_message(QueueUrl=queue_url, MessageBody=record)

    def _load_functions(self) -> None:
        assert self.resources is not None
        for spec in self.template.functions():
            if not spec.code_uri.joinpath(spec.handler.rpartition(".")[0] + ".py").exists():
                logger.warning("function code missing", extra={"function": spec.logical_id})
                continue
            environment = function_environment(self.template, spec.logical_id, self.resources)
            environment.update(self._local_function_environment())
            concurrency = self.options.pollers_per_queue
            if any(e.get("Type") in _HTTP_EVENT_TYPES for e in spec.events.values()):
                # Powertools keeps the request being resolved on a class attribute that every
                # resolver in the process shares: two API invocations at once could read each
                # other's event (path, body, Authorization header). On Lambda a process serves
                # one invocation at a time; so does this one.
                concurrency = 1
            runtime = FunctionRuntime(spec, environment, max_concurrency=concurrency)
            runtime.warm_up()
            self.functions[spec.logical_id] = runtime

    def _local_function_environment(self) -> dict[str, str]:
        """The broker's CA, which enrolled hosts must trust (on AWS: Amazon Root CA 1)."""
        assert self.ca is not None
        return {"BROKER_CA_FILE": str(self.ca.cert_path)}

    def _prepare_control_plane(self) -> None:
        """The signing key (so the relay can trust it), host dc01 and an admin token."""
        from hostrelay.dal.signing_keys import SigningKeyStore
        from hostrelay.dal.tables import HostRecord, TokenRecord, bind_table
        from hostrelay.dal.tokens_repo import TokenRepository

        assert self.resources is not None
        dispatch_env = function_environment(self.template, _DISPATCH_FUNCTION, self.resources)
        keys = SigningKeyStore(
            dispatch_env["SIGNING_KEY_PARAM"], dispatch_env["SIGNING_PUBLIC_KEY_PARAM"]
        )
        keys.load_or_create()
        self.public_key_pem = keys.public_key_pem() or ""
        bind_table(HostRecord, self.resources.refs["HostsTable"], region=REGION)
        bind_table(TokenRecord, self.resources.refs["TokensTable"], region=REGION)
        secret, _ = TokenRepository().create(
            token_id=str(ULID()), name="local-admin", scopes=["admin"], created_by="hostrelay-local"
        )
        self.admin_token = secret
        self.token_file.unlink(missing_ok=True)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")

    def _start_event_sources(self) -> None:
        assert self.resources is not None
        if self._async_invoker is not None:
            self._async_invoker.ready.set()  # the functions are loaded
        resolver = self.resources.resolver()
        queue_urls = {
            arn: self.resources.attrs[(logical_id, "QueueUrl")]
            for (logical_id, attr), arn in self.resources.attrs.items()
            if attr == "Arn" and (logical_id, "QueueUrl") in self.resources.attrs
        }
        for name, runtime in self.functions.items():
            for event_name, event in runtime.spec.events.items():
                source: SqsEventSource | ScheduleEventSource
                kind = event.get("Type")
                if kind in _HTTP_EVENT_TYPES:
                    continue  # served by the HTTP API gateway
                props = resolver.resolve(event.get("Properties", {}))
                if kind == "SQS":
                    source = SqsEventSource(
                        runtime,
                        self.aws_client("sqs"),
                        queue_urls[props["Queue"]],
                        props["Queue"],
                        batch_size=int(props.get("BatchSize", 10)),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in props.get("FunctionResponseTypes", []),
                        pollers=self.options.pollers_per_queue,
                        wait_time_s=self.options.sqs_wait_time_s,
                        region=REGION,
                    )
                elif kind in _SCHEDULE_EVENT_TYPES:
                    period = self.options.schedule_period_s or schedule_period_s(
                        str(props.get("ScheduleExpression", ""))
                    )
                    if period is None:
                        logger.warning("schedule not run locally", extra={"function": name})
                        continue
                    source = ScheduleEventSource(
                        runtime, period, schedule_name=f"{name}-{event_name}", region=REGION
                    )
                else:
                    logger.warning("event source not run locally", extra={"type": kind})
                    continue
                source.start()
                self._sources.append(source)
                self._stop_steps.append(source.stop)

    def _start_api(self) -> None:
        runtime = self.functions.get(_API_FUNCTION)
        if runtime is None:
            raise StackFailed(f"{_API_FUNCTION} has no code yet (functions/api/app.py)")
        self._api = HttpApiGateway(runtime, self.options.api_host, self.options.api_port)
        try:
            self._api.start()
        except OSError as exc:
            self._api = None
            raise StackFailed(
                f"cannot listen on {self.options.api_host}:{self.options.api_port}: {exc} "
                "(set HOSTRELAY_PORT)"
            ) from None
        self._stop_steps.append(self._api.stop)

    def _start_relay(self) -> None:
        assert self.ca is not None and self.broker is not None
        options = RelayOptions(
            heartbeat_s=float(self.options.heartbeat_s or 30),
            sam_ldb=self._demo_sam_ldb() if self.options.with_samba else None,
        )
        if self.options.exec_commands is not None:
            options.allowed_commands = self.options.exec_commands
        if self.directory is not None:
            # The bind password stays in a 0600 file on the relay, bound to the demo directory's
            # LDAPS URL (TLS verified against its CA); connectors only name the credential.
            options.extra["ldap"] = {
                "ca_file": str(self.directory.ca_file),
                "credentials": {
                    DEMO_CREDENTIAL: {
                        "bind_dn": self.directory.service_dn,
                        "password_file": str(self.directory.service_password_file),
                        "urls": [self.directory.ldaps_url],
                    }
                },
            }
        self.relay = LocalRelay(RELAY_HOST, self.state_dir / "relays" / RELAY_HOST, options)
        try:
            self.relay.enroll(self.api_url, self._offer_enrollment(RELAY_HOST))
        except (RelayEnrollmentFailed, requests.RequestException) as exc:
            raise StackFailed(
                f"relay {RELAY_HOST} was not enrolled through the API (or start with "
                f"--no-relay): {str(exc)[-1000:]}"
            ) from None
        self.relay.start()
        self._stop_steps.append(self._stop_relay)
        if not self.wait_host_state(RELAY_HOST, "online", _RELAY_ONLINE_TIMEOUT_S):
            raise StackFailed(
                f"relay {RELAY_HOST} did not come online within {_RELAY_ONLINE_TIMEOUT_S:.0f} s "
                f"(or start with --no-relay); its log {self.relay.log_path} ends:\n"
                + self.relay.log_tail()
            )

    def _start_directory(self) -> None:
        """A demo OpenLDAP directory (a few hundred users, groups, OUs), new each start."""
        workdir = self.state_dir / "slapd"
        if workdir.exists():
            import shutil

            shutil.rmtree(workdir)
        directory = SlapdServer(DirectoryShape(), tls=True, workdir=workdir)
        try:
            directory.start()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            directory.stop()
            detail = (
                exc.stderr.decode(errors="replace")
                if isinstance(exc, subprocess.CalledProcessError)
                else str(exc)
            )
            raise StackFailed(
                f"the demo directory (slapd) did not start: {detail[-500:]} "
                "(or start with --no-directory)"
            ) from None
        self.directory = directory
        self._stop_steps.append(directory.stop)
        logger.info("demo directory started", extra={"url": directory.ldaps_url})

    def _create_demo_connector(self) -> None:
        """An admin's `POST /v1/connectors`: dc01 syncs the demo directory on a schedule."""
        assert self.directory is not None
        response = requests.post(
            f"{self.api_url}/v1/connectors",
            json={
                "name": "demo-directory",
                "kind": "ldap",
                "target": RELAY_HOST,
                "schedule": self.options.directory_schedule,
                "enabled": True,
                "settings": {
                    "url": self.directory.ldaps_url,
                    "base_dn": self.directory.base_dn,
                    "credential": DEMO_CREDENTIAL,
                },
            },
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        if response.status_code != 201:
            raise StackFailed(
                f"the demo ldap connector was not created: HTTP {response.status_code} "
                f"{response.text[:300]} (or start with --no-directory)"
            )
        self.connector_id = str(response.json()["id"])
        run = requests.post(
            f"{self.api_url}/v1/connectors/{self.connector_id}/run",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        logger.info(
            "demo connector created",
            extra={"connector": self.connector_id, "first_run": run.status_code},
        )

    def _start_fleet(self) -> None:
        """`--fleet N`: N hosts enrolled through the API, their relays in a few processes;
        returns once the control plane sees every one of them online."""
        options = self.options.fleet
        if self.options.heartbeat_s is not None:
            options = replace(options, heartbeat_s=float(self.options.heartbeat_s))
        fleet = self.fleet = LocalFleet(self.state_dir / "fleet", options, self.api_url)
        self._stop_steps.append(fleet.stop)
        began = time.monotonic()
        try:
            fleet.start(lambda host, tags: self._offer_enrollment(host, tags, [FLEET_ROLE]))
        except (FleetFailed, RelayEnrollmentFailed, requests.RequestException) as exc:
            raise StackFailed(
                f"the fleet of {options.size} relays did not start (or start without --fleet): "
                f"{_head_and_tail(str(exc))}"
            ) from None
        waiting = set(fleet.hosts)
        deadline = time.monotonic() + _RELAY_ONLINE_TIMEOUT_S + options.size * 0.1
        while waiting and time.monotonic() < deadline:
            waiting -= self.hosts_in_state(waiting, "online")
            if waiting:
                time.sleep(0.25)
        if waiting:
            raise StackFailed(
                f"{len(waiting)} fleet relays did not come online (e.g. {min(waiting)}); "
                f"see {fleet.directory}/worker-*.log"
            )
        logger.info(
            "fleet online",
            extra={
                "relays": options.size,
                "processes": len(fleet.processes),
                "s": round(time.monotonic() - began, 1),
            },
        )

    def _offer_enrollment(
        self, host: str, tags: dict[str, str] | None = None, roles: list[str] | None = None
    ) -> str:
        """An admin's `POST /v1/enrollments`: the one-shot token for `host`."""
        body: dict[str, Any] = {"host": host, "roles": [RELAY_ROLE] if roles is None else roles}
        if tags:
            body["tags"] = tags
        response = requests.post(
            f"{self.api_url}/v1/enrollments",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        if response.status_code != 201:
            raise RelayEnrollmentFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        return str(response.json()["token"])

    def _stop_relay(self) -> None:
        if self.relay is not None:
            self.relay.stop(_STOP_TIMEOUT_S)

    def _demo_sam_ldb(self) -> Path:
        try:
            self.samba_domain = ensure_demo_domain(self.state_dir)
        except (SambaDomainError, OSError) as exc:
            raise StackFailed(
                f"the demo Samba AD domain was not provisioned: {exc} (or start with --no-samba)"
            ) from None
        return self.samba_domain.sam_ldb

    def _write_state(self) -> None:
        assert self.broker is not None
        state = {
            "pid": os.getpid(),
            "api_url": self.api_url,
            "admin_token_file": str(self.token_file),
            "aws_endpoint_url": self.moto.endpoint_url,
            # What the functions put on the state-change bus (docs/events.md), as SQS messages.
            "state_change_queue_url": self.state_changes.queue_url if self.state_changes else None,
            "broker": {
                "host": self.broker.endpoint.host,
                "port": self.broker.port,
                "pid": self.broker.pid,
            },
            "relay": None
            if self.relay is None
            else {
                "host": self.relay.host,
                "pid": self.relay.pid,
                "config": str(self.relay.config_path),
                "log": str(self.relay.log_path),
            },
            "fleet": None if self.fleet is None else self.fleet.describe(),
        }
        path = self.state_dir / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(path)


# --- command line ------------------------------------------------------------------------


class _KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value ...`: the structured fields of each record."""

    _STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in self._STANDARD}
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def _configure_logging(verbose: bool) -> None:
    # With POWERTOOLS_METRICS_DISABLED every invocation would warn that it published nothing.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "pynamodb", "responses"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parts(stack: LocalStack) -> list[str]:
    """One line per part `make run` promises: where it runs, or the flag that left it out."""
    options = stack.options
    assert stack.broker is not None
    lines = [f"broker       mosquitto on {stack.broker.endpoint.host}:{stack.broker.port} (mTLS)"]
    if stack.relay is not None:
        lines.append(
            f"relay {stack.relay.host}   {stack.relay.config_path} (log {stack.relay.log_path})"
        )
    else:
        lines.append(f"relay {RELAY_HOST}   left out (--no-relay)")
    if stack.samba_domain is not None:
        lines.append(f"samba domain {stack.samba_domain.realm} in {stack.samba_domain.target_dir}")
    else:
        reason = "--no-samba" if not options.with_samba else "no relay to use it"
        lines.append(f"samba domain left out ({reason}): macct jobs are rejected")
    if stack.directory is not None:
        lines.append(f"directory    {stack.directory.ldaps_url} (ldap connector demo-directory)")
    else:
        lines.append("directory    left out (--no-directory)")
    if stack.fleet is not None:
        fleet = stack.fleet
        tags = ",".join(f"{k}={v}" for k, v in fleet.options.tags.items())
        lines.append(
            f"fleet        {len(fleet.hosts)} relays {fleet.hosts[0]}..{fleet.hosts[-1]} in "
            f"{len(fleet.processes)} process(es) (logs {fleet.directory}/worker-*.log), "
            f"tags {tags} (set at enrollment)"
        )
    return lines


def banner(stack: LocalStack) -> str:
    url = stack.api_url
    return "\n".join(
        [
            "",
            "hostrelay local stack is up",
            f"  API          {url}",
            f"  console      {url}/console/",
            f"  admin token  {stack.admin_token}",
            f"               (also in {stack.token_file})",
            *(f"  {line}" for line in _parts(stack)),
            "",
            "Try:",
            f"  curl -s -H 'Authorization: Bearer {stack.admin_token}' \\",
            "    -H 'Content-Type: application/json' \\",
            f'    -d \'{{"type": "ping", "host": "{RELAY_HOST}"}}\' {url}/v1/jobs',
            f"  HOSTRELAY_URL={url} HOSTRELAY_TOKEN=$(cat {stack.token_file}) \\",
            f"    hostrelay jobs run ping --host {RELAY_HOST} --wait",
            "",
            "Ctrl-C stops everything.",
        ]
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hostrelay-local", description="Runs the hostrelay control plane on this machine."
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run"])
    parser.add_argument("--state-dir", type=Path, default=None, help="default: .hostrelay/")
    parser.add_argument("--port", type=int, default=None, help="HTTP API port (default 3000)")
    parser.add_argument("--no-relay", action="store_true", help="do not start relay dc01")
    parser.add_argument("--no-samba", action="store_true", help="no demo Samba domain")
    parser.add_argument(
        "--no-directory", action="store_true", help="no demo slapd and ldap connector"
    )
    parser.add_argument(
        "--pollers", type=int, default=None, help="concurrent pollers per SQS event source"
    )
    parser.add_argument(
        "--allow-exec",
        action="append",
        default=[],
        metavar="PATH",
        help="also allow this absolute command (or glob) for exec jobs on dc01; repeatable",
    )
    parser.add_argument(
        "--fleet",
        type=int,
        default=0,
        metavar="N",
        help="also enroll and run N fleet relays (fleet-001 ...), several per process",
    )
    parser.add_argument(
        "--fleet-tags",
        action="append",
        default=[],
        metavar="K=V",
        help="tags of every fleet host (default fleet=local); repeatable",
    )
    parser.add_argument(
        "--fleet-processes",
        type=int,
        default=None,
        metavar="K",
        help=f"processes the fleet's relays run in (default: one per "
        f"{DEFAULT_RELAYS_PER_PROCESS} relays; at most {MAX_RELAYS_PER_PROCESS} relays each)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def _fleet_options(args: argparse.Namespace) -> FleetOptions:
    """`--fleet*` as FleetOptions; ValueError with the reason when they do not fit."""
    if args.fleet < 0:
        raise ValueError("--fleet takes a number of relays, 0 or more")
    options = FleetOptions(size=args.fleet, processes=args.fleet_processes)
    if args.fleet_tags:
        options.tags = dict(parse_tag(text) for text in args.fleet_tags)
    options.process_count()  # refuses more relays per process than paho's select() can take
    return options


def main(argv: list[str] | None = None) -> NoReturn:
    """`hostrelay-local run`: exits 0 after Ctrl-C or SIGTERM, 1 (with the reason and the fix)
    if a part cannot start, 2 on bad arguments."""
    code = _run(argv)
    # Every part is stopped and every file closed by now. Skip the interpreter's teardown of
    # the ~250k objects moto and the handlers leave: on a busy machine it takes seconds more.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(argv: list[str] | None) -> int:
    args = _parse_args(argv)
    _configure_logging(args.verbose)
    options = StackOptions.from_environment()
    if args.port is not None:
        options.api_port = args.port
    options.with_relay = not args.no_relay
    options.with_samba = not args.no_samba
    options.with_directory = not args.no_directory
    try:
        options.fleet = _fleet_options(args)
    except ValueError as exc:
        print(f"hostrelay-local: {exc}", file=sys.stderr)
        return 2
    if args.pollers:
        options.pollers_per_queue = args.pollers
    if args.allow_exec:
        if any(not path.startswith("/") for path in args.allow_exec):
            print("hostrelay-local: --allow-exec takes absolute paths", file=sys.stderr)
            return 2
        for path in args.allow_exec:
            # The relay would refuse its config for it; say so before anything starts.
            reason = launcher_reason(path)
            if reason is not None:
                print(f"hostrelay-local: --allow-exec {reason}: not allowed", file=sys.stderr)
                return 2
        options.exec_commands = (*DEMO_EXEC_COMMANDS, *args.allow_exec)
    stack = LocalStack(args.state_dir, options)
    lifecycle = _Lifecycle(stack)
    signal.signal(signal.SIGTERM, lifecycle.on_signal)
    signal.signal(signal.SIGINT, lifecycle.on_signal)
    try:
        stack.start()
        lifecycle.serving = True
    except _StopRequested:
        stack.stop()
        print("hostrelay-local: stopped while starting", file=sys.stderr, flush=True)
        return 0
    except (StackFailed, BrokerFailed, BridgeFailed, OSError) as exc:
        print(f"hostrelay-local: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(banner(stack), flush=True)
        while not lifecycle.stop_requested:
            time.sleep(_SUPERVISE_EVERY_S)
            if not lifecycle.stop_requested:
                stack.supervise()
    finally:
        lifecycle.stopping = True
        print("stopping ...", file=sys.stderr, flush=True)
        stack.stop()
    return 0


class _StopRequested(Exception):
    """SIGINT or SIGTERM came while the stack was starting."""


class _Lifecycle:
    """What a SIGINT/SIGTERM does now. The handler takes no lock: it runs in the main thread
    between any two bytecodes, possibly while that thread holds the very lock it would wait
    for (an earlier handler called Event.set and hung `make run` that way)."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self.serving = False
        self.stopping = False
        self.stop_requested = False

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        if self.serving or self.stopping or self._stack.stopping:
            return  # the main loop stops the stack, or a stop (bounded) is under way
        self.stopping = True
        raise _StopRequested


if __name__ == "__main__":
    main()


def _head_and_tail(text: str, head: int = 500, tail: int = 1000) -> str:
    """`text` shortened in the middle: a failure's reason comes first and its log tail last,
    and both matter."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]} […] {text[-tail:]}"
