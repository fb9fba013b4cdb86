"""recsys.dev.services (what serve.sh runs) on stand-in processes: pid files, a taken port,
and stop ending whole trees, a process that ignores SIGTERM included. Also devdb's reading
of a stale postmaster.pid. The real services: tests/e2e/test_serve.py."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from recsys.dev import devdb, services


def _start(run_dir: Path, name: str, script: str) -> psutil.Process:
    """A bash stand-in for service `name`, recorded the way services.start records one."""
    proc = subprocess.Popen(["bash", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL)
    process = psutil.Process(proc.pid)
    (run_dir / f"{name}.pid").write_text(f"{proc.pid} {process.create_time()}\n")
    return process


def _wait_children(process: psutil.Process, n: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while len(children := process.children(recursive=True)) < n:
        assert time.monotonic() < deadline, "the stand-in did not start its children"
        time.sleep(0.05)
    return children


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def run_dir(tmp_path: Path):
    yield tmp_path
    services.stop(tmp_path, timeout_s=1)  # nothing outlives a failed test


def test_stop_ends_every_tree_and_says_what_it_stopped(run_dir: Path):
    scheduler = _start(run_dir, "scheduler", "sleep 300 & sleep 300 & wait")
    # ignores SIGTERM, and its child inherits that: only SIGKILL after the grace period ends them
    stubborn = _start(run_dir, "triggerer", "trap '' TERM; sleep 300 & wait; sleep 300")
    trees = [scheduler, *_wait_children(scheduler, 2), stubborn, *_wait_children(stubborn, 1)]
    assert services.running(run_dir, "scheduler").pid == scheduler.pid

    lines, all_up = services.status(run_dir)
    assert not all_up and sum(" running (pid " in line for line in lines) == 2

    started = time.monotonic()
    lines = services.stop(run_dir, timeout_s=1)
    assert time.monotonic() - started < 15
    assert lines == [f"stopped airflow scheduler (pid {scheduler.pid}, 3 processes)",
                     f"stopped airflow triggerer (pid {stubborn.pid}, 2 processes)"]
    assert all(_gone(p.pid) for p in trees)
    assert not list(run_dir.glob("*.pid"))
    assert services.stop(run_dir) == ["no Airflow service of this state was running"]


def test_a_pid_file_naming_another_process_is_stale(run_dir: Path):
    # our own pid, but not our start time: the kernel gave the pid to someone else
    (run_dir / "api-server.pid").write_text(f"{os.getpid()} 12345.0\n")
    assert services.running(run_dir, "api-server") is None
    assert services.stop(run_dir) == ["api-server: was not running (removed a stale pid file)"]
    assert psutil.pid_exists(os.getpid())


def test_a_taken_port_is_named_and_a_free_one_is_not():
    with socket.socket() as sock:
        sock.bind((services.HOST, 0))
        sock.listen()
        port = sock.getsockname()[1]
        holder = services.port_holder(port)
        assert holder is not None and (str(os.getpid()) in holder or holder == "another process")
    assert services.port_holder(port) is None


def test_start_refuses_a_taken_port_before_starting_anything(run_dir: Path):
    with socket.socket() as sock:
        sock.bind((services.HOST, 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(services.ServeError, match=f"port {port} on 127.0.0.1 is in use.*RECSYS_UI_PORT"):
            services.start(run_dir, port)
    assert not list(run_dir.glob("*.pid"))


def test_devdb_reads_a_stale_postmaster_pid_as_not_running(tmp_path: Path):
    assert devdb.embedded_pid(tmp_path) is None and devdb.stop_embedded(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")  # a pid that is not postgres
    assert devdb.embedded_pid(tmp_path) is None and devdb.stop_embedded(tmp_path) is None
