"""End to end, each test on its own run of the workflow (tiny config): one-line errors for a bad
config or input, the paper config's DAG, resuming a killed training job, a user's folder of
micrographs, and the seeds DAG. The tests sharing one finished run are in test_workflow.py; the
two files run side by side under `make test`."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import ROOT, TINY, planned_jobs, snakemake, snakemake_command


@pytest.mark.e2e
@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            ("tile", "sem", "stride"),
            -4,
            "key porous.tile.sem.stride: -4 is less than the minimum of 1",
        ),
        (("simulate", "sem_size"), "big", "key porous.simulate.sem_size: 'big' is not of type"),
        (
            ("stylegan2", "batch_size"),
            0,
            "key porous.stylegan2.batch_size: 0 is less than the minimum",
        ),
        (
            ("tile", "sem", "size"),
            48,
            "key porous.tile.sem.size: StyleGAN2 needs a power of two, got 48",
        ),
        (("translate", "domain"), "ct", "key porous.translate.domain: 'ct' is not a tiled domain"),
        (
            ("..", "polysilicon", "classes"),
            ["2um", "3um"],
            "key polysilicon.classes: the embedded generator names its classes",
        ),
    ],
)
def test_bad_config_fails_in_one_line(tmp_path, key, value, message):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    node = bad["porous"]
    for k in key[:-1]:
        node = bad if k == ".." else node[k]
    node[key[-1]] = value
    result = snakemake(tmp_path, bad, "-n")
    assert result.returncode != 0
    assert f"error: config: {message}" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e
def test_bad_input_image_fails_in_one_line_and_leaves_no_output(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/broken.tif").write_bytes(b"II*\x00garbage")
    (tmp_path / "data/samples.tsv").write_text("path\tdomain\tpixel_size\nbroken.tif\tsem\t0.5\n")
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["porous"]["sample_sheet"] = str(tmp_path / "data/samples.tsv")
    config["porous"]["tile"] = {"sem": {"size": 32, "stride": 16}}
    config["porous"]["translate"]["domain"] = ""
    result = snakemake(tmp_path, config)
    assert result.returncode != 0
    assert "broken.tif: unreadable or truncated image" in result.stdout + result.stderr
    assert not list((tmp_path / "results/porous").rglob("*.npy"))


@pytest.mark.e2e
def test_paper_config_validates_and_its_dag_builds(tmp_path):
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    jobs = planned_jobs(snakemake(tmp_path, paper, "-n"))
    assert jobs["simulate_porous"] == 1 and jobs["ingest"] == 5 and jobs["tile"] == 2
    assert jobs["train_stylegan2"] == 1 and jobs["train_cyclegan"] == 2 and jobs["morphology"] == 5
    assert jobs["train_polysilicon"] == 2 and jobs["train_polysilicon_evaluator"] == 1
    assert jobs["ingest_stem"] == 3 and jobs["train_stem_cyclegan"] == 1
    assert jobs["train_vacancy_detector"] == 4 and jobs["detect_vacancies"] == 4
    assert jobs["stem_robustness"] == 4 and jobs["stem_robustness_table"] == 1
    assert jobs["train_vqvae"] == 2 and jobs["train_pixelcnn"] == 2  # 32 and 8 real images
    assert jobs["train_segmenter_mix"] == len(paper["segmentation"]["mixes"])
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e
def test_the_readmes_paper_command_runs_paper_yaml_alone(tmp_path):
    """`--configfile` merges over config/config.yaml; the README's paper command replaces it, so
    none of the embedded default's keys (its 2-image segmentation mixes) joins the paper run."""
    command = next(line for line in (ROOT / "README.md").read_text().splitlines()
                   if "--configfile config/paper.yaml" in line)  # fmt: skip
    assert "--replace-workflow-config" in command
    shutil.copytree(ROOT / "config", tmp_path / "config")  # the workflow's own config/config.yaml
    dry = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
           "--configfile", "config/paper.yaml", "--cores", "2", "-n"]  # fmt: skip

    def mixes(*args):
        run = subprocess.run([*dry, *args], cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return planned_jobs(run)["train_segmenter_mix"]

    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    assert mixes("--replace-workflow-config") == len(paper["segmentation"]["mixes"]) < mixes()


@pytest.mark.e2e
def test_a_killed_training_job_resumes_from_its_checkpoint_on_rerun(tmp_path):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["porous"]["stylegan2"].update(total_kimg=1.6, checkpoint_kimg=0.08)  # 200 steps
    assert snakemake(tmp_path, config, "results/porous/tiles/sem/tiles.npy").returncode == 0
    target = "results/porous/stylegan2/model.pt"
    job = subprocess.Popen(
        snakemake_command(tmp_path, config, target),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    resume = tmp_path / "results/porous/stylegan2/model.resume.pt"
    deadline = time.time() + 300
    while not resume.exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)  # the whole job, as a cluster's OOM killer or timeout would
    job.wait()
    assert resume.exists() and not (tmp_path / target).exists()
    assert snakemake(tmp_path, config, "--unlock").returncode == 0
    rerun = snakemake(tmp_path, config, target, "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (tmp_path / "results/logs/porous/train_stylegan2.log").read_text()
    resumed_at = int(log.split("resuming from")[1].split("at step")[1].split()[0])
    assert resumed_at >= 10 and resumed_at % 10 == 0
    steps = pd.read_csv(tmp_path / "results/porous/stylegan2/training.csv").step
    assert list(steps) == list(range(2, 202, 2))  # nothing lost, nothing logged twice
    assert not resume.exists()


@pytest.mark.e2e
def test_a_users_folder_of_mixed_size_fei_tiffs_and_a_ct_stack_runs_the_porous_study(tmp_path):
    """SEM TIFFs of two sizes with FEI metadata and a micro-CT TIFF stack (ImageJ tags), with
    every pixel_size cell of the sheet left empty."""
    import tifffile

    from matgen.synth.porous import porous_volume, render_microct, render_sem

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    rows = ["path\tdomain\tpixel_size\tsample"]
    for name, (h, w) in (("a", (96, 96)), ("b", (80, 112))):
        pores = porous_volume((1, h, w), 0.18, 3.0, 0.0, rng)[0]
        sem = np.round(render_sem(pores, 0.03, rng) * 255).astype(np.uint8)
        text = "[Scan]\nPixelWidth=2.5e-07\nPixelHeight=2.5e-07\n"  # 0.25 µm
        tifffile.imwrite(data / f"{name}.tif", sem, extratags=[(34682, "s", 0, text, True)])
        rows.append(f"{name}.tif\tsem\t\t{name}")
    block = porous_volume((12, 96, 96), 0.18, 3.0, 0.0, rng)
    stack = np.stack([render_microct(block[4 * k : 4 * k + 4], 4, 0.02, rng) for k in range(3)])
    tifffile.imwrite(data / "ct.tif", np.round(stack * 65535).astype(np.uint16), imagej=True,
                     resolution=(1.0, 1.0), metadata={"unit": "micron"})  # fmt: skip
    rows.append("ct.tif\tmicroct\t\tct")
    (data / "samples.tsv").write_text("\n".join(rows) + "\n")
    config = {k: v for k, v in yaml.safe_load(yaml.safe_dump(TINY)).items()
              if k not in ("polysilicon", "stem", "segmentation")}  # fmt: skip
    config["porous"]["sample_sheet"] = str(data / "samples.tsv")
    config["porous"]["ingest"] = {"mixed_sizes": True, "volume_axis": 0}
    config["porous"]["tile"]["microct"] = {"size": 8, "random_per_image": 2, "seed": 2}
    config["porous"]["translate"]["real_only_ablation"] = False  # one CycleGAN is enough here
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results/porous"
    sem = pd.read_csv(results / "ingest/sem/table.csv")
    assert list(sem.height) == [96, 80] and list(sem.width) == [96, 112]
    assert list(sem.pixel_size) == pytest.approx([0.25, 0.25])  # from the FEI tags
    tiles = pd.read_csv(results / "tiles/sem/table.csv")
    assert list(tiles.groupby("image_index").size()) == [25, 24]  # 5 x 5 and 4 x 6 grids
    ct = pd.read_csv(results / "tiles/microct/table.csv")
    assert sorted(ct.slice_index.unique()) == [0, 1, 2] and len(ct) == 6
    assert (ct.pixel_size == 1.0).all()  # from the ImageJ tags
    assert np.load(results / "synthetic/cyclegan/tiles.npy").shape == (6, 1, 32, 32)
    assert (results / "figures/comparison.png").is_file()


@pytest.mark.e2e
def test_seeds_run_every_model_once_per_seed_side_by_side_in_one_dag(tmp_path):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["seeds"] = {"offsets": [0, 1, 2], "results": "results/seeds"}
    result = snakemake(tmp_path, config, "all_seeds", "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result)
    for model in (
        "train_stylegan2",
        "train_cyclegan",
        "train_vacancy_detector",
        "train_vqvae",
        "train_polysilicon",
        "train_segmenter_mix",
    ):
        counts = [jobs.get(f"seed{k}_{model}", 0) for k in range(3)]
        assert counts[0] > 0 and counts == [counts[0]] * 3, (model, counts)
    assert jobs["headline_seeds"] == 1 and jobs["all_seeds"] == 1
    assert "results/seeds/seed2/porous/stylegan2/model.pt" in result.stdout
