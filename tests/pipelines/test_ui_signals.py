"""`run_ui`'s signal conventions on a stand-in for `dagster dev` (seconds, not minutes):
SIGTERM stops the child's whole group, an ignored SIGHUP (`nohup eventpulse ui`) stays ignored,
and the child can always be asked to stop with SIGINT, even when ours was ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# The parent runs run_ui on a child that reports its SIGINT disposition, then sleeps.
PARENT = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    from pipelines.ui import run_ui
    for name in sys.argv[2:]:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    child = (
        "import signal, sys, time; "
        f"open({sys.argv[1]!r}, 'w').write(str(signal.getsignal(signal.SIGINT))); "
        "time.sleep(120)"
    )
    sys.exit(run_ui([sys.executable, "-c", child], env=dict(__import__("os").environ), cwd=Path.cwd()))
    """
)


def _start(
    tmp_path: Path, *ignored: str, blocked: frozenset[int] = frozenset()
) -> tuple[subprocess.Popen, Path]:
    report = tmp_path / "child_sigint.txt"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(report), *ignored],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: _as_from_a_terminal(blocked),
    )
    deadline = time.monotonic() + 60
    while not report.exists() or not report.read_text():
        assert parent.poll() is None, parent.stderr.read() if parent.stderr else ""
        assert time.monotonic() < deadline, "the stand-in child did not start"
        time.sleep(0.1)
    return parent, report


def _as_from_a_terminal(blocked: frozenset[int]) -> None:
    """Signals at their defaults, as a shell gives them, whatever the test worker inherited
    (a library of an earlier test in the same worker may have set SIGTERM to ignored); then
    `blocked` blocked. The parent sets its own ignored ones."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _child_pid(parent: subprocess.Popen) -> int:
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    assert len(children) == 1
    return int(children[0])


def _sigterm_stops_the_group(parent: subprocess.Popen, child: int) -> None:
    """SIGTERM to `eventpulse ui` ends it with 130 and leaves nothing of the child's group."""
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 130
    assert _group_members(child) == []


def test_sigterm_stops_the_child_group_and_the_child_may_be_interrupted(tmp_path: Path) -> None:
    parent, report = _start(tmp_path, "SIGINT")  # as a background job of a script starts it
    try:
        # dagster dev must be able to receive the SIGINT that asks it to shut down gracefully.
        assert report.read_text() == str(signal.default_int_handler)  # Python's, not ignored
        child = _child_pid(parent)
        _sigterm_stops_the_group(parent, child)
        assert "Stopping the Dagster UI" in (parent.stderr.read() if parent.stderr else "")
    finally:
        parent.kill()
        parent.wait()


def test_an_ignored_sighup_stays_ignored_as_under_nohup(tmp_path: Path) -> None:
    parent, _ = _start(tmp_path, "SIGHUP")
    try:
        child = _child_pid(parent)
        parent.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert parent.poll() is None
        assert _group_members(child) == [child]
        _sigterm_stops_the_group(parent, child)
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.parametrize(
    ("ignored", "blocked"),
    [(("SIGINT", "SIGTERM"), frozenset()), ((), frozenset({signal.SIGTERM}))],
    ids=["ignored", "blocked"],
)
def test_sigterm_stops_it_whatever_its_starter_did_with_sigterm(
    tmp_path: Path, ignored: tuple[str, ...], blocked: frozenset[int]
) -> None:
    """Both are inherited, by accident: an ignored SIGTERM (Dagster run in-process maps SIGTERM
    to the SIGINT handler, ignored in a background job of a script), a blocked one (a thread of
    multiprocessing's blocks it while starting a helper). `kill` must still stop it."""
    parent, _ = _start(tmp_path, *ignored, blocked=blocked)
    try:
        child = _child_pid(parent)
        _sigterm_stops_the_group(parent, child)
    finally:
        parent.kill()
        parent.wait()
