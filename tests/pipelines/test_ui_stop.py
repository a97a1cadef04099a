"""`kill` of `eventpulse ui` stops what it started, as Ctrl-C does (issue 16 item 7): the
webserver, the daemon and the code server are gone and the port is free again. Bounded in
time, on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.schedules import AUTOMATION_ENV
from pipelines.ui import default_sigint

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 300  # dagster dev on two busy cores
STOP_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _children() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    return pids & set(_children())


def _describe(pids: set[int]) -> str:
    """Each process's state and command line, to say what a stop waited for."""
    described = []
    for pid in sorted(pids):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        described.append(f"{pid} [{state}] {command[:200]}")
    return "; ".join(described) or "none"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_signal_to_eventpulse_ui_stops_webserver_and_daemon(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        "EVENTPULSE_HOME": str(tmp_path / "home"),
        AUTOMATION_ENV: "stopped",
    }
    log = (tmp_path / "ui.log").open("w")
    ui = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the test can always clean up the whole tree
        # As from a terminal: a suite started in the background of a non-interactive shell
        # inherits an ignored SIGINT, and an ignored Ctrl-C stays ignored (Unix convention).
        preexec_fn=default_sigint,
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _listening(port):
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "dagster dev did not start in time"
            time.sleep(1)
        time.sleep(3)  # the daemon starts beside the webserver
        started = _descendants(ui.pid)
        assert len(started) >= 3  # dagster dev, its webserver and its daemon at least

        ui.send_signal(sig)

        try:
            code = ui.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"eventpulse ui still running {STOP_SECONDS} s after {sig.name}; processes left: "
                f"{_describe(_alive(started | {ui.pid}))}; its log ends: "
                f"{(tmp_path / 'ui.log').read_text()[-3000:]}"
            )
        assert code in (130, 0, -sig)
        deadline = time.monotonic() + 15
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _alive(started) == set(), "children of eventpulse ui left running"
        assert not _listening(port)
    finally:
        for pid in _alive(started | {ui.pid}):
            os.kill(pid, signal.SIGKILL)
        ui.wait(timeout=10)
        log.close()
