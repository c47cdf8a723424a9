"""Running the workflow from tests: one way to call Snakemake, shared by e2e and HPC tests."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())


def snakemake_command(workdir, config, *args):
    """The command line that runs the Snakefile in ``workdir`` with ``config`` (written there)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        str(cfg),
        "--cores",
        "2",
        *args,
    ]


def snakemake(workdir, config, *args, timeout=900):
    """Run the Snakefile in ``workdir`` with ``config`` (a dict) and extra CLI ``args``."""
    cmd = snakemake_command(workdir, config, *args)
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def planned_jobs(result):
    """Rule -> count from the 'Job stats' table of a dry run."""
    lines = result.stdout.splitlines()
    start = lines.index("Job stats:") + 3
    jobs = {}
    for line in lines[start:]:
        if not line.strip() or line.startswith("total"):
            break
        rule, count = line.split()
        jobs[rule] = int(count)
    return jobs
