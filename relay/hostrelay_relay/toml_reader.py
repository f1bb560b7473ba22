"""TOML parsing on every supported Python: tomllib from 3.11, its backport tomli on 3.10."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from tomllib import TOMLDecodeError, load, loads
else:  # Ubuntu 22.04 (linuxmuster.net 7.2) ships Python 3.10
    from tomli import TOMLDecodeError, load, loads

__all__ = ["TOMLDecodeError", "load", "loads"]
