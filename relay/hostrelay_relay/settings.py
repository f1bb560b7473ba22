"""Typed relay settings, read once at start-up from a TOML config file and HOSTRELAY_RELAY_* env."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hostrelay_relay.isolation.command_policy import (
    AllowedCommand,
    LauncherCommand,
    launcher_reason,
    writable_overlap,
)

DEFAULT_CONFIG = Path("/etc/hostrelay/relay.toml")
ENV_PREFIX = "HOSTRELAY_RELAY_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerSettings(_Section):
    host: str = "localhost"
    port: int = 8883
    ca_file: Path = Path("/etc/hostrelay/ca.pem")
    cert_file: Path = Path("/etc/hostrelay/client.pem")
    key_file: Path = Path("/etc/hostrelay/client.key")
    keepalive_s: int = Field(default=30, ge=5, le=1200)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)


class MacctSettings(_Section):
    sam_ldb: Path = Path("/var/lib/samba/private/sam.ldb")
    ldbmodify: str = "ldbmodify"
    ldbsearch: str = "ldbsearch"

    @field_validator("sam_ldb")
    @classmethod
    def _sam_ldb_is_absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("macct.sam_ldb must be an absolute path")
        return value


class ExecSettings(_Section):
    """Host policy for `exec` jobs; the defaults run nothing (no command is allowed)."""

    # Glob patterns of absolute paths (`*` stays within one path component) argv[0] must
    # match, or launcher tables with argument rules; empty = exec disabled.
    allowed_commands: list[AllowedCommand] = Field(default_factory=list)
    allowed_users: list[str] = Field(default_factory=lambda: ["nobody"])
    allowed_env: list[str] = Field(default_factory=lambda: ["LANG", "LC_ALL", "TZ"])
    # Host paths a job may write to (every other host path is read-only inside the job).
    writable_paths: list[Path] = Field(default_factory=list)
    cgroup_root: Path = Path("/sys/fs/cgroup")
    max_output_bytes: int = Field(default=10 * 1024 * 1024, ge=0)
    path: str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    kill_grace_s: float = Field(default=5.0, ge=0, le=300)
    allow_host_network: bool = False
    allow_writable_root: bool = False
    tmp_size_mb: int = Field(default=64, ge=1, le=65536)
    # Limits for jobs that ask for none (None = unlimited), and the most a job may ask for.
    default_memory_mb: int | None = Field(default=1024, ge=8)
    default_cpu_percent: int | None = Field(default=100, ge=1)
    default_pids: int | None = Field(default=512, ge=1)
    max_memory_mb: int = Field(default=8192, ge=8)
    max_pids: int = Field(default=4096, ge=1)

    @field_validator("allowed_commands")
    @classmethod
    def _commands_are_absolute_and_not_launchers(
        cls, value: list[AllowedCommand]
    ) -> list[AllowedCommand]:
        for pattern in value:
            if isinstance(pattern, LauncherCommand):
                continue
            if not pattern.startswith("/") or "\x00" in pattern:
                raise ValueError(f"allowed command {pattern!r} must be an absolute path pattern")
            reason = launcher_reason(pattern)
            if reason is not None:
                raise ValueError(
                    f"allowed command {reason}: it can run any command; list it as"
                    " {command = ..., launcher = true, args = [[...]]} with argument rules"
                )
        return value

    @field_validator("writable_paths")
    @classmethod
    def _writable_paths_are_absolute(cls, value: list[Path]) -> list[Path]:
        for path in value:
            text = str(path)
            if not path.is_absolute() or text == "/" or "\x00" in text or ".." in path.parts:
                raise ValueError(f"writable path {text!r} must be an absolute path other than /")
        return value

    @model_validator(mode="after")
    def _commands_are_not_writable_by_jobs(self) -> ExecSettings:
        writable = [str(path) for path in self.writable_paths]
        for entry in self.allowed_commands:
            command = entry.command if isinstance(entry, LauncherCommand) else entry
            overlap = writable_overlap(command, writable)
            if overlap is not None:
                raise ValueError(
                    f"allowed command {command} could lie under writable path {overlap}:"
                    " a job could put another program there"
                )
        return self


class LdapCredential(_Section):
    """A bind account for directory jobs; jobs name it, they never carry the password.

    The credential is bound to the servers in `urls`: a job may pick one of them (or get the
    first), never another, and only this config can turn TLS verification off for it.
    """

    bind_dn: str = Field(min_length=1, max_length=2048)
    password: SecretStr | None = None
    password_file: Path | None = Field(default=None, description="read at each use")
    urls: list[str] = Field(
        min_length=1,
        max_length=32,
        description="the servers (ldap:// or ldaps://) this password may be sent to",
    )
    verify_tls: bool = Field(
        default=True, description="verify the server certificate; only this config can say false"
    )

    @field_validator("urls")
    @classmethod
    def _urls_are_directory_servers(cls, value: list[str]) -> list[str]:
        from hostrelay_contract.ldap_url import check_server_url

        return [check_server_url(url) for url in value]

    @model_validator(mode="after")
    def _one_password_source(self) -> LdapCredential:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set exactly one of password or password_file")
        return self

    def read_password(self) -> str:
        """The password, read from password_file (first line) when that is how it is given."""
        if self.password is not None:
            return self.password.get_secret_value()
        assert self.password_file is not None
        lines = self.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""


class LdapSettings(_Section):
    credentials: dict[str, LdapCredential] = Field(default_factory=dict)
    ca_file: Path | None = Field(default=None, description="CA bundle; None = system store")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    operation_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    allow_plaintext_bind: bool = Field(
        default=False,
        description="allow a simple bind without TLS to a non-loopback server",
    )
    clock_skew_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="max clock difference relay/OpenLDAP server; bounds modifyTimestamp overlap",
    )
    client: str = Field(
        default="auto",
        description="LDAP client library: python-ldap, ldap3, or auto (python-ldap if installed)",
    )

    @field_validator("client")
    @classmethod
    def _client_is_known(cls, value: str) -> str:
        if value not in ("auto", "python-ldap", "ldap3"):
            raise ValueError("ldap.client must be auto, python-ldap or ldap3")
        return value


class SourcesSettings(_Section):
    """Self-hosted sources a relay reads for `connector.sync` (Authentik, Kubernetes).

    A job names a token file and a URL; it runs only when the file lies in `credential_dir`
    and the URL is one of `origins`, so a job cannot send a token (or any file) elsewhere.
    Empty `origins`: connector.sync is off.
    """

    credential_dir: Path = Field(
        default=Path("/etc/hostrelay/sources"), description="where token files (mode 0600) live"
    )
    origins: list[str] = Field(
        default_factory=list, description="https://host[:port] origins tokens may be sent to"
    )
    ca_file: Path | None = Field(default=None, description="CA bundle; None = system store")
    max_wait_s: float = Field(
        default=60.0, ge=0, le=600, description="longest Retry-After waited out"
    )
    allow_write_back: bool = Field(
        default=False, description="run connector.group_members (change group memberships)"
    )

    @field_validator("credential_dir")
    @classmethod
    def _credential_dir_is_absolute(cls, value: Path) -> Path:
        if not value.is_absolute() or ".." in value.parts:
            raise ValueError("sources.credential_dir must be an absolute path without '..'")
        return value

    @field_validator("origins")
    @classmethod
    def _origins_are_https(cls, value: list[str]) -> list[str]:
        from hostrelay_contract.jobs.sources import HTTPS_ORIGIN_PATTERN

        for origin in value:
            if re.fullmatch(HTTPS_ORIGIN_PATTERN, origin) is None:
                raise ValueError(f"sources.origins: {origin!r} is not https://host[:port]")
        return [origin.rstrip("/").lower() for origin in value]


class HealthSettings(_Section):
    listen: str = "127.0.0.1:9464"
    enabled: bool = True

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str) -> str:
        from hostrelay_relay.health_server import parse_listen

        parse_listen(value)
        return value


# The file load_settings reads; a context variable, so that settings built directly (tests,
# tools) read the environment only.
_config_file: ContextVar[Path | None] = ContextVar("relay_config_file", default=None)


class RelaySettings(BaseSettings):
    """Every key from the TOML file, each overridable by env: HOSTRELAY_RELAY_BROKER__PORT=8884;
    lists and tables as JSON: HOSTRELAY_RELAY_EXEC__ALLOWED_COMMANDS='["/usr/bin/id"]'."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    host: str = Field(description="this host's name: the CN of its certificate")
    state_dir: Path = Path("/var/lib/hostrelay")
    public_key_file: Path = Path("/etc/hostrelay/envelope-signing.pub")
    control_plane_url: str | None = None
    heartbeat_s: float = Field(default=30.0, gt=0)
    max_concurrent_jobs: int = Field(default=4, ge=1, le=64)
    # A job that ends this soon after it was accepted is reported by its result alone.
    accepted_hold_s: float = Field(default=0.05, ge=0, le=5)
    drain_timeout_s: float = Field(default=30.0, ge=0)
    clock_leeway_s: int = Field(default=30, ge=0)
    # The control plane signs envelopes valid this long; a clock off by more refuses jobs.
    envelope_validity_s: int = Field(default=300, ge=30, le=3600)
    # Ask for the next certificate once this fraction of the current one's lifetime passed.
    cert_renew_fraction: float = Field(default=2 / 3, ge=0, le=1)
    # How often the clock and the certificate are checked (and at every connect).
    maintenance_interval_s: float = Field(default=600.0, gt=0)
    log_level: str = "INFO"
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    macct: MacctSettings = Field(default_factory=MacctSettings)
    exec: ExecSettings = Field(default_factory=ExecSettings)
    ldap: LdapSettings = Field(default_factory=LdapSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)

    @field_validator("host")
    @classmethod
    def _host_is_dns_label(cls, value: str) -> str:
        from hostrelay_contract.names import check_host_name

        return check_host_name(value)

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite3"

    def jobs_topic(self) -> str:
        return f"hostrelay/{self.host}/jobs"

    def events_topic(self) -> str:
        return f"hostrelay/{self.host}/events"

    def status_topic(self) -> str:
        return f"hostrelay/{self.host}/status"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments first, then the environment, then the TOML file."""
        config_file = _config_file.get()
        if config_file is None or not config_file.exists():
            return init_settings, env_settings
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file)


def load_settings(config_file: Path | None = None) -> RelaySettings:
    """Read the config file (HOSTRELAY_RELAY_CONFIG or /etc/hostrelay/relay.toml) plus env."""
    path = config_file or Path(os.environ.get(ENV_PREFIX + "CONFIG") or DEFAULT_CONFIG)
    if path.exists():
        path.open("rb").close()  # an unreadable file is an error, not an empty config
    token = _config_file.set(path)
    try:
        return RelaySettings()  # host comes from the file or the environment
    finally:
        _config_file.reset(token)
