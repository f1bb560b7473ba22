"""What each part of the local stack needs from Debian, checked before anything starts."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Requirement:
    """A command (looked up on PATH unless absolute) or a data file, and its Debian package."""

    needed: str
    package: str

    def is_met(self) -> bool:
        if self.needed.startswith("/"):
            return Path(self.needed).exists()
        return shutil.which(self.needed) is not None


# One table per part the README promises; `make system-deps` installs every package named here.
BROKER_REQUIREMENTS = (Requirement("/usr/sbin/mosquitto", "mosquitto"),)
SAMBA_REQUIREMENTS = (
    Requirement("samba-tool", "samba"),
    # samba only recommends it, and without it `samba-tool domain provision` cannot run.
    Requirement("/usr/share/samba/setup/provision.ldif", "samba-ad-provision"),
    Requirement("ldbsearch", "ldb-tools"),
    Requirement("ldbadd", "ldb-tools"),
    Requirement("ldbmodify", "ldb-tools"),
)
DIRECTORY_REQUIREMENTS = (
    Requirement("/usr/sbin/slapd", "slapd"),
    Requirement("/usr/sbin/slapadd", "slapd"),
    Requirement("ldapmodify", "ldap-utils"),
)


class MissingPackages(RuntimeError):
    """A part of the stack cannot start: the message names the packages and the way out."""

    def __init__(self, part: str, packages: list[str], leave_out_flag: str | None) -> None:
        self.part = part
        self.packages = packages
        listed = " ".join(packages)
        way_out = f", or start without it: hostrelay-local run {leave_out_flag}"
        super().__init__(
            f"the {part} needs the Debian package(s) {listed}: run `make system-deps` "
            f"(as root) or `sudo apt-get install -y {listed}`" + (way_out if leave_out_flag else "")
        )


def missing_packages(requirements: tuple[Requirement, ...]) -> list[str]:
    """The packages of the unmet requirements, each once, in table order."""
    missing: list[str] = []
    for requirement in requirements:
        if not requirement.is_met() and requirement.package not in missing:
            missing.append(requirement.package)
    return missing


def require(part: str, requirements: tuple[Requirement, ...], leave_out_flag: str | None) -> None:
    """Raise MissingPackages unless every requirement of `part` is met."""
    packages = missing_packages(requirements)
    if packages:
        raise MissingPackages(part, packages, leave_out_flag)
