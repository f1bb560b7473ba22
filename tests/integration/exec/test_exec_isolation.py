"""What a command run by an `exec` job can see and do: namespaces, identity, filesystem, network."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from tests.integration.exec.support import PYTHON, ExecJobs, make_settings

pytestmark = pytest.mark.integration


def test_job_is_pid_1_with_its_id_as_hostname(exec_jobs: ExecJobs) -> None:
    """Given a shell job, when it prints pid and hostname, then it is PID 1 named after the job."""
    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "echo $$; /bin/hostname"]})

    assert run.error is None, run.error
    assert run.stdout.split() == ["1", run.job_id]
    assert run.result is not None and run.result["exit_code"] == 0


def test_proc_lists_only_the_jobs_processes(exec_jobs: ExecJobs) -> None:
    """Given a job, when it lists /proc, then it sees only its own processes, not the relay's."""
    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "/bin/ls /proc; echo end"]})

    pids = {int(name) for name in run.stdout.split() if name.isdigit()}
    assert 1 in pids
    assert max(pids) < 10  # the shell and ls; the host has hundreds of processes


def test_runs_as_nobody_without_capabilities_or_new_privileges(exec_jobs: ExecJobs) -> None:
    """Given the default user, when the job reports its identity, then it is nobody with no caps."""
    run = exec_jobs.run(
        {"argv": ["/bin/sh", "-c", "/usr/bin/id -u; /usr/bin/id -g; cat /proc/self/status"]}
    )

    lines = run.stdout.splitlines()
    assert lines[:2] == ["65534", "65534"]
    status = dict(line.split(":\t", 1) for line in lines[2:] if ":\t" in line)
    for capability_set in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capability_set], 16) == 0, capability_set
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Groups"].strip() == ""


def test_allowed_user_runs_as_that_user(exec_jobs: ExecJobs) -> None:
    """Given a relay allowing `daemon`, when a job asks for it, then the command runs as daemon."""
    settings = make_settings(allowed_users=["nobody", "daemon"])
    run = exec_jobs.run(
        {"argv": ["/usr/bin/id", "-un"], "isolation": {"user": "daemon"}}, settings=settings
    )

    assert run.stdout.strip() == "daemon"


def test_network_is_loopback_only_and_loopback_works(exec_jobs: ExecJobs) -> None:
    """Given network none, when the job lists links and uses lo, then only a working lo exists."""
    script = (
        "import socket\n"
        "print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "client = socket.create_connection(server.getsockname())\n"
        "peer, _ = server.accept(); client.sendall(b'ping'); print(peer.recv(4).decode())\n"
    )
    run = exec_jobs.run({"argv": [PYTHON, "-c", script]})

    assert run.error is None, run.stderr
    assert run.stdout.splitlines() == ["['lo']", "ping"]


def test_job_cannot_reach_host_services(exec_jobs: ExecJobs) -> None:
    """Given a listener on the host's loopback, when a job connects to it, then it is refused."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        script = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
        run = exec_jobs.run({"argv": [PYTHON, "-c", script]})

    assert run.error is not None and run.error.code == "exit_code"
    assert "ConnectionRefusedError" in run.stderr


def test_host_network_when_the_relay_allows_it(exec_jobs: ExecJobs) -> None:
    """Given allow_host_network, when a job asks for network host, then it sees the host's links."""
    settings = make_settings(allow_host_network=True)
    run = exec_jobs.run(
        {"argv": ["/bin/cat", "/proc/net/dev"], "isolation": {"network": "host"}},
        settings=settings,
    )

    host_links = {
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    }
    job_links = {line.split(":")[0].strip() for line in run.stdout.splitlines()[2:]}
    assert job_links == host_links


def test_host_filesystem_is_read_only_and_tmp_is_private(exec_jobs: ExecJobs) -> None:
    """Given a job, when it writes to /tmp and to host paths, then only its private /tmp works."""
    name = f"hostrelay-test-{uuid.uuid4().hex}"
    script = (
        f"echo hello > /tmp/{name} && cat /tmp/{name}; "
        f"/usr/bin/touch /var/tmp/{name} /etc/{name} /dev/shm/../{name} /proc/{name}; echo done"
    )
    run = exec_jobs.run({"argv": ["/bin/sh", "-c", script]})

    assert run.stdout.splitlines() == ["hello", "done"]
    assert run.stderr.count("Read-only file system") >= 3
    assert not Path("/tmp", name).exists()
    assert not Path("/var/tmp", name).exists()
    assert not Path("/etc", name).exists()


def test_writable_paths_granted_by_the_relay(exec_jobs: ExecJobs) -> None:
    """Given a relay granting a directory, when a job writes there, then the file is on the host."""
    granted = Path("/var/tmp") / f"hostrelay-grant-{uuid.uuid4().hex}"
    granted.mkdir(mode=0o777)
    granted.chmod(0o777)
    try:
        settings = make_settings(writable_paths=[str(granted)])
        run = exec_jobs.run(
            {
                "argv": [
                    "/bin/sh",
                    "-c",
                    f"echo from-job > {granted}/out; /usr/bin/touch /var/tmp/x-{granted.name}",
                ]
            },
            settings=settings,
        )

        assert (granted / "out").read_text() == "from-job\n"
        assert "Read-only file system" in run.stderr
        assert not Path(f"/var/tmp/x-{granted.name}").exists()
    finally:
        for child in granted.iterdir():
            child.unlink()
        granted.rmdir()


def test_dev_holds_only_harmless_devices(exec_jobs: ExecJobs) -> None:
    """Given a job, when it lists /dev, then only null/zero/full/random/urandom and links exist."""
    run = exec_jobs.run({"argv": ["/bin/sh", "-c", "/bin/ls /dev; echo x > /dev/null && echo ok"]})

    entries = run.stdout.split()
    assert entries[-1] == "ok"
    assert set(entries[:-1]) == {
        "fd",
        "full",
        "null",
        "random",
        "shm",
        "stderr",
        "stdin",
        "stdout",
        "urandom",
        "zero",
    }


def test_environment_is_clean_but_for_path_and_allowed_names(exec_jobs: ExecJobs) -> None:
    """Given the relay's environment, when a job prints its env, then it sees only PATH and LANG."""
    os.environ["HOSTRELAY_SECRET_FOR_TEST"] = "must-not-leak"
    try:
        run = exec_jobs.run({"argv": ["/usr/bin/env"], "env": {"LANG": "C.UTF-8"}})
    finally:
        del os.environ["HOSTRELAY_SECRET_FOR_TEST"]

    assert sorted(run.stdout.splitlines()) == [
        "LANG=C.UTF-8",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ]


def test_cwd_and_stdin(exec_jobs: ExecJobs) -> None:
    """Given cwd and stdin, when the job runs, then it starts there and reads the given input."""
    run = exec_jobs.run(
        {"argv": ["/bin/sh", "-c", "pwd; cat"], "cwd": "/usr", "stdin": "line one\nline two\n"}
    )

    assert run.stdout == "/usr\nline one\nline two\n"


def test_large_stdin_is_delivered_whole(exec_jobs: ExecJobs) -> None:
    """Given stdin larger than a pipe buffer, when cat echoes it, then every byte comes back."""
    text = "".join(f"{i:07d}\n" for i in range(100_000))  # 800 KB
    run = exec_jobs.run({"argv": ["/bin/cat"], "stdin": text})

    assert run.stdout == text


def test_jobs_run_concurrently_each_in_its_own_namespaces(exec_jobs: ExecJobs) -> None:
    """Given four jobs at once, when each prints pid and hostname, then each is PID 1 of its own."""
    started = [
        exec_jobs.start({"argv": ["/bin/sh", "-c", "echo $$ $(/bin/hostname); sleep 0.2"]})
        for _ in range(4)
    ]
    for _, thread in started:
        thread.join(timeout=60)

    for run, _ in started:
        assert run.error is None, run.error
        assert run.stdout.split() == ["1", run.job_id]


def test_writable_root_when_the_relay_allows_it(exec_jobs: ExecJobs) -> None:
    """Given allow_writable_root, when a job asks for readonly_root false, then it may write
    where its user may (here the world-writable /var/tmp), while /tmp stays private."""
    name = f"hostrelay-rw-{uuid.uuid4().hex}"
    settings = make_settings(allow_writable_root=True)
    try:
        run = exec_jobs.run(
            {
                "argv": ["/bin/sh", "-c", f"echo rw > /var/tmp/{name}; echo tmp > /tmp/{name}"],
                "isolation": {"readonly_root": False},
            },
            settings=settings,
        )

        assert run.error is None, run.stderr
        assert Path("/var/tmp", name).read_text() == "rw\n"
        assert not Path("/tmp", name).exists()
    finally:
        Path("/var/tmp", name).unlink(missing_ok=True)
