"""A source's token from a file on the host: absolute, a regular file, mode 0600 or stricter."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hostrelay_sources.errors import CredentialUnavailable

GROUP_OR_OTHER = 0o077


def read_credential_file(path: Path, *, owner: int | None = None) -> str:
    """The first line of `path`; refused when others could read or change the file.

    `owner` is the uid the file must belong to (the relay's own by default).
    """
    if not path.is_absolute():
        raise CredentialUnavailable(f"credential file {path} must be an absolute path")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CredentialUnavailable(f"credential file {path} does not exist") from None
    except OSError as exc:
        raise CredentialUnavailable(
            f"credential file {path} cannot be opened ({exc.strerror})"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CredentialUnavailable(f"credential file {path} is not a regular file")
        if info.st_mode & GROUP_OR_OTHER:
            raise CredentialUnavailable(
                f"credential file {path} has mode {stat.S_IMODE(info.st_mode):04o}:"
                " it must be 0600 or stricter (chmod 600)"
            )
        expected = os.geteuid() if owner is None else owner
        if info.st_uid != expected:
            raise CredentialUnavailable(
                f"credential file {path} belongs to uid {info.st_uid}, not {expected}"
            )
        data = handle.read(64 * 1024)
    lines = data.decode("utf-8", "replace").splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise CredentialUnavailable(f"credential file {path} is empty")
    return token
