"""The tiny workflow through `snakemake --profile profiles/slurm` on a real SLURM."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import ROOT, TINY, snakemake

# The user-facing profile, plus what only this accounting-free test cluster needs: no account,
# squeue for status (sacct fails without accounting and would hang the run), and resources that
# fit one small node.
TEST_OVERRIDES = [
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--default-resources",
    "slurm_partition=debug",
    "mem_mb=500",
    "runtime=10",
    "cpus_per_task=1",
    "--set-resources",
    "simulate_porous:mem_mb=500",
    "morphology:mem_mb=500",
    "morphology:cpus_per_task=1",
    # the test node has no GPUs: the GPU rules run on its CPU
    *[
        f"{rule}:{key}"
        for rule in ("train_stylegan2", "sample_stylegan2", "train_cyclegan", "translate_microct")
        for key in ("gpu=0", "mem_mb=1000", "cpus_per_task=1", "runtime=10")
    ],
    # one thread per job, as locally (the profile's set-threads sizes a real cluster's jobs)
    "--set-threads",
    *[
        f"{rule}=1"
        for rule in (
            "morphology",
            "train_stylegan2",
            "sample_stylegan2",
            "train_cyclegan",
            "translate_microct",
        )
    ],
    "--latency-wait",
    "5",
]


# The porous data chain and one GPU training rule (run on the CPU here): enough to show every
# kind of rule going through sbatch, without the whole tiny study twice.
TARGETS = [
    "results/porous/figures/morphology.png",
    "results/porous/tiles/microct/paired.npy",
    "results/porous/stylegan2/model.pt",
]


@pytest.mark.hpc
def test_workflow_runs_through_sbatch_and_matches_local(slurm_cluster, tmp_path):
    slurm = snakemake(
        tmp_path / "slurm",
        TINY,
        *TARGETS,
        "--profile",
        str(ROOT / "profiles/slurm"),
        *TEST_OVERRIDES,
        timeout=1200,
    )
    log = slurm.stdout + slurm.stderr
    assert slurm.returncode == 0, log[-4000:]
    job_ids = set(re.findall(r"has been submitted with SLURM jobid (\d+)", log))
    assert len(job_ids) >= 8, log[-4000:]  # every rule but `all` went through sbatch
    # the rules really ran inside SLURM jobs: each saw its own $SLURM_JOB_ID
    provenance = [
        json.loads(p.read_text()) for p in (tmp_path / "slurm/results").rglob("*.provenance.json")
    ]
    seen = {p["slurm_job_id"] for p in provenance}
    assert len(provenance) >= 8 and None not in seen and len(seen) == len(provenance)

    local = snakemake(tmp_path / "local", TINY, *TARGETS, timeout=1200)
    assert local.returncode == 0, local.stderr[-3000:]
    assert all(
        json.loads(p.read_text())["slurm_job_id"] is None
        for p in (tmp_path / "local/results").rglob("*.provenance.json")
    )
    for rel in (
        "porous/morphology/sem.csv",
        "porous/figures/morphology.csv",
        "porous/tiles/microct/table.csv",
    ):
        # source_path names each run's own directory; everything else must be identical
        a, b = (
            pd.read_csv(tmp_path / run / "results" / rel).drop(
                columns="source_path", errors="ignore"
            )
            for run in ("slurm", "local")
        )
        pd.testing.assert_frame_equal(a, b)
    for rel in ("porous/tiles/sem/tiles.npy", "porous/tiles/microct/paired.npy"):
        np.testing.assert_array_equal(
            np.load(tmp_path / "slurm/results" / rel), np.load(tmp_path / "local/results" / rel)
        )
    # the GPU rule trained the same model under sbatch as locally (seeded, deterministic on CPU)
    a, b = (
        torch.load(tmp_path / run / "results/porous/stylegan2/model.pt", weights_only=False)
        for run in ("slurm", "local")
    )
    for k, v in a["G_ema"].items():
        assert torch.equal(v, b["G_ema"][k]), k
    print(
        f"SLURM install {slurm_cluster['install_s']:.1f} s, start {slurm_cluster['start_s']:.1f} s"
    )


def test_slurm_profile_is_valid_yaml_with_placeholders():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["default-resources"]["slurm_partition"] == "CHANGE_ME"
