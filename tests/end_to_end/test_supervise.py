"""scripts/supervise (what scripts/run starts the Procfile with): a killed process comes back on its
own, the others keep running, and TERM stops them all."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

SUPERVISE = Path(__file__).resolve().parents[2] / "scripts" / "supervise"


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive: it has exited and waits to be reaped.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_a_killed_process_is_restarted_alone_and_term_stops_all(tmp_path):
    names = ["web", "generation", "training"]
    (tmp_path / "Procfile").write_text(
        "# dummy stand-ins for gunicorn and the two RQ workers\n"
        + "".join(f"{name}: echo $$ >> {tmp_path / name}.pids; exec sleep 300\n" for name in names)
    )
    env = {**os.environ, "SUPERVISE_RESTART_DELAY": "0.2", "SUPERVISE_STOP_TIMEOUT": "3"}
    supervisor = subprocess.Popen([str(SUPERVISE), "Procfile"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: all(pids(tmp_path / f"{n}.pids") for n in names)), "not every process started"
        first = {n: pids(tmp_path / f"{n}.pids")[0] for n in names}

        os.kill(first["training"], signal.SIGKILL)

        assert wait_for(lambda: len(pids(tmp_path / "training.pids")) == 2), "the killed worker was not restarted"
        restarted = pids(tmp_path / "training.pids")[1]
        assert restarted != first["training"] and alive(restarted)
        assert not alive(first["training"])
        for name in ("web", "generation"):
            assert pids(tmp_path / f"{name}.pids") == [first[name]], f"{name} was restarted too"
            assert alive(first[name]), f"{name} went down with the training worker"
        assert supervisor.poll() is None

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=10) == 0
        assert wait_for(lambda: not any(alive(p) for p in [first["web"], first["generation"], restarted]), 5)
        log = supervisor.stderr.read()
        assert "training exited with status 137; restarting" in log and "stopping 3 process(es)" in log
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
