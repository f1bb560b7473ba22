"""Drop to the job's user with no capabilities and no way to regain privileges."""

from __future__ import annotations

import errno
import os

from hostrelay_relay.isolation import syscalls as sc


def drop_privileges(uid: int, gid: int, cap_last_cap: int) -> None:
    """Run as the last step before exec, while still root in the job's namespaces."""
    # No setuid/file-capability binary can raise privileges after this, across execve too.
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    # Emptying the bounding set stops even uid 0 from getting capabilities back at execve.
    for capability in range(cap_last_cap + 1):
        sc.prctl(sc.PR_CAPBSET_DROP, capability)
    try:
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as exc:  # kernels before 4.3 have no ambient set: nothing to clear
        if exc.errno != errno.EINVAL:
            raise
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    # setuid to non-root clears effective/permitted but not inheritable; uid 0 clears nothing.
    sc.clear_capabilities()
