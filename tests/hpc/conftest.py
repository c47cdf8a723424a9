"""A real single-node SLURM on this machine, brought up for the HPC tests and torn down after.

Installs slurm-wlm and munge with apt-get when missing (skips only where apt-get itself is not
there), starts munged (unless one already answers), slurmctld and slurmd from a slurm.conf in a
temporary directory, and stops exactly the processes it started. Jobs find the config through
/etc/slurm/slurm.conf (SLURM_CONF in the parent shell does not reach `srun` inside a job); any
existing file there is put back afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")


def _run(*cmd: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)


def _ensure_installed() -> None:
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    if not shutil.which("apt-get"):
        pytest.skip("apt-get is not available, so SLURM cannot be installed on this machine")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run("apt-get", "update", "-qq", env=env)
    result = _run("apt-get", "install", "-y", "-qq", "slurm-wlm", "munge", env=env)
    assert result.returncode == 0, (
        f"apt-get install slurm-wlm munge failed: {result.stderr[-2000:]}"
    )


def _munge_answers() -> bool:
    if not shutil.which("munge"):
        return False
    enc = _run("munge", "-n", timeout=10)
    return enc.returncode == 0 and _run("unmunge", input=enc.stdout, timeout=10).returncode == 0


def _slurm_conf(tmp: Path) -> str:
    host = socket.gethostname().split(".")[0]
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return "\n".join(
        [
            "ClusterName=matgentest",
            f"SlurmctldHost={host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={tmp}/state",
            f"SlurmdSpoolDir={tmp}/spool",
            f"SlurmctldPidFile={tmp}/slurmctld.pid",
            f"SlurmdPidFile={tmp}/slurmd.pid",
            f"SlurmctldLogFile={tmp}/slurmctld.log",
            f"SlurmdLogFile={tmp}/slurmd.log",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            "ReturnToService=2",
            # the executor plugin falls back to sacct when MinJobAge < 3x its status-check delay
            "MinJobAge=300",
            f"NodeName={host} CPUs={os.cpu_count()} RealMemory={int(total_mb * 0.8)} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Yield a dict with the bring-up time; the cluster's one partition is ``debug``."""
    started_at = time.time()
    _ensure_installed()
    installed_at = time.time()
    tmp = tmp_path_factory.mktemp("slurm")
    (tmp / "state").mkdir()
    (tmp / "spool").mkdir()
    pid_files = []
    if not _munge_answers():
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        key = tmp / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        result = _run(
            "munged",
            f"--key-file={key}",
            f"--socket={MUNGE_SOCKET}",
            f"--pid-file={tmp}/munged.pid",
            f"--log-file={tmp}/munged.log",
            f"--seed-file={tmp}/munged.seed",
            "--force",
            timeout=30,
        )
        assert result.returncode == 0, f"munged failed to start: {result.stderr}"
        pid_files.append(tmp / "munged.pid")
        _wait_for(_munge_answers, 20, "munged")
    conf = tmp / "slurm.conf"
    conf.write_text(_slurm_conf(tmp))
    backup = SLURM_CONF.read_bytes() if SLURM_CONF.exists() else None
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(conf.read_text())
    try:
        for daemon in ("slurmctld", "slurmd"):
            result = _run(daemon, "-f", str(conf), timeout=30)
            assert result.returncode == 0, f"{daemon} failed: {result.stderr}"
            pid_files.append(tmp / f"{daemon}.pid")
        _wait_for(
            lambda: "idle" in _run("sinfo", "-h", "-o", "%T", timeout=10).stdout,
            60,
            "the SLURM node to become idle",
        )
        yield {
            "install_s": installed_at - started_at,
            "start_s": time.time() - installed_at,
            "dir": tmp,
        }
    finally:
        for pid_file in reversed(pid_files):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        if backup is None:
            SLURM_CONF.unlink(missing_ok=True)
        else:
            SLURM_CONF.write_bytes(backup)
