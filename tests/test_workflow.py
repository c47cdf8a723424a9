"""End to end: the Snakemake chain on the tiny config, reruns after a config change, bad config."""

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import TINY, planned_jobs, snakemake


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    result = snakemake(workdir, TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.e2e
def test_chain_produces_figure_tables_and_provenance(finished_run):
    res = finished_run / "results/porous"
    for name in ("morphology.png", "morphology.pdf", "morphology.csv"):
        assert (res / "figures" / name).stat().st_size > 0
    table = pd.read_csv(res / "morphology/sem.csv")
    assert len(table) == 2 * 25  # two 96-px images, 32-px tiles at stride 16 -> 5 x 5 each
    assert table["porosity"].between(0.0, 0.6).all() and table["porosity"].std() > 0.01
    assert (table["correlation_length"] > 0).all()
    # segmented porosity tracks the generator's true pore masks
    truth = np.concatenate(
        [
            np.asarray(__import__("PIL.Image").Image.open(p)).ravel()
            for p in sorted((res / "raw").glob("sem_*_pores.png"))
        ]
    )
    assert abs(table["porosity"].mean() - truth.mean()) < 0.05
    summary = pd.read_csv(res / "figures/morphology.csv")
    assert set(summary["descriptor"]) >= {"porosity", "specific_surface_area", "correlation_length"}
    tiles = np.load(res / "tiles/microct/tiles.npy")
    paired = np.load(res / "tiles/microct/paired.npy")
    assert tiles.shape == (8, 1, 8, 8) and paired.shape == (8, 1, 32, 32)
    prov = (res / "morphology/sem.csv.provenance.json").read_text()
    assert '"stage": "morphology"' in prov and "numpy" in prov
    assert '"seed": 3' in (res / "raw/samples.tsv.provenance.json").read_text()
    assert (finished_run / "results/logs/porous/morphology_sem.log").exists()


@pytest.mark.e2e
def test_generative_chain_samples_translates_and_compares(finished_run):
    res = finished_run / "results/porous"
    for name in ("stylegan2_samples", "comparison", "translation", "training"):
        for ext in ("png", "pdf", "csv"):
            assert (res / "figures" / f"{name}.{ext}").stat().st_size > 0
    synthetic = np.load(res / "synthetic/stylegan2/tiles.npy")
    assert synthetic.shape == (12, 1, 32, 32) and np.isfinite(synthetic.astype(float)).all()
    assert list(pd.read_csv(res / "synthetic/stylegan2/table.csv").seed) == list(range(100, 112))
    translated = np.load(res / "synthetic/cyclegan/tiles.npy")
    assert translated.shape == (8, 1, 32, 32)  # 8-px micro-CT tiles x 4
    assert (pd.read_csv(res / "synthetic/cyclegan/table.csv").pixel_size == 0.25).all()
    distances = pd.read_csv(res / "comparison/distances.csv")
    assert set(distances.dataset) == {"StyleGAN2-ADA", "CycleGAN(microct)"}
    assert set(distances.descriptor) == {
        "porosity",
        "specific_surface_area",
        "correlation_length",
        "diversity",
        "power_spectrum",
        "pore_grey",
        "detector_noise",
        "pore_rim",
        "pore_rim_specks",
        "cracks",
        "pore_circularity",
    }
    layout = pd.read_csv(res / "synthetic/stylegan2_layout.csv")  # who places the pores
    assert 0 <= layout.latent_share[0] <= 1 and layout.n_noise[0] == 8
    assert np.load(res / "comparison/spectra.npz")["power"].shape == (3, 16)
    summary = pd.read_csv(res / "translation/summary.csv")
    assert list(summary.method) == ["cyclegan_real_only", "cyclegan", "bicubic"]
    assert (summary.n == 8).all()
    log = pd.read_csv(res / "stylegan2/training.csv")
    assert list(log.step) == [2, 4, 6] and "ada_p" in log
    assert not (res / "stylegan2/model.resume.pt").exists()
    assert '"stage": "train_stylegan2"' in (res / "stylegan2/model.pt.provenance.json").read_text()


@pytest.mark.e2e
def test_a_cyclegan_hyperparameter_reruns_only_the_cyclegan_branch(finished_run):
    # runs before the tiling-change test below, which leaves the run at another SEM stride
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["porous"]["cyclegan"]["lambda_cycle"] = 5.0
    jobs = planned_jobs(snakemake(finished_run, changed, "-n"))
    assert jobs == {  # both CycleGANs: real + StyleGAN2, and the real-only ablation
        "train_cyclegan": 2,
        "translate_microct": 2,
        "morphology": 2,
        "translation_error": 1,
        "figure_porous_translation": 1,
        "compare_porous_morphology": 1,
        "figure_porous_comparison": 1,
        "figure_porous_training": 1,
        "headline": 1,
        "all": 1,
    }


@pytest.mark.e2e
def test_a_two_thread_stylegan2_goes_before_the_real_only_cyclegan(finished_run):
    """On one thread (the tiny config) the real-only CycleGAN does not wait for the StyleGAN2,
    and a StyleGAN2 change leaves it; on two it waits (so the StyleGAN2 finds both cores free),
    and its own parameter change still retrains it when the StyleGAN2 retrains too."""
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["porous"]["stylegan2"]["lr"] = 0.002
    jobs = planned_jobs(snakemake(finished_run, changed, "-n"))
    assert jobs["train_stylegan2"] == 1 and jobs["train_cyclegan"] == 1
    changed["porous"]["stylegan2"]["threads"] = 2
    changed["porous"]["cyclegan"]["lambda_cycle"] = 5.0
    result = snakemake(finished_run, changed, "-n")
    assert planned_jobs(result)["train_cyclegan"] == 2
    real_only = result.stdout.split("wildcards: translator=cyclegan_real_only")[0]
    assert "porous/stylegan2/model.pt" in real_only.split("rule train_cyclegan:")[-1]


@pytest.mark.e2e
def test_polysilicon_chain_judges_both_generators(finished_run):
    res = finished_run / "results/polysilicon"
    for name in ("samples", "traversal_vae", "traversal_gan", "comparison"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 0
    summary = pd.read_csv(res / "evaluation/summary.csv").set_index("set")
    assert list(summary.index) == ["real", "cVAE", "cGAN"]
    assert summary.loc["real", "physics_e11_mae"] < 0.5  # physics reads real labels back
    assert summary.loc["cVAE", "n"] == summary.loc["cGAN", "n"] == 8
    samples = pd.read_csv(res / "samples/gan/table.csv")
    assert len(samples) == 8 and (res / "samples/gan" / samples.path[0]).exists()
    for model in ("vae", "gan"):  # both generators' global latents are traversed
        traversal = pd.read_csv(res / f"traversal/{model}/summary.csv")
        assert list(traversal.latent) == [0, 1]
    held = pd.read_csv(res / "evaluator/held_out.csv").iloc[0]
    assert held.n_held_out == 8 and 0 <= held.accuracy <= 1


@pytest.mark.e2e
def test_a_gan_hyperparameter_reruns_only_the_gan_branch(finished_run):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["polysilicon"]["gan"]["lr_d"] = 0.0004
    jobs = planned_jobs(snakemake(finished_run, changed, "-n"))
    assert jobs == {
        "train_polysilicon": 1,
        "sample_polysilicon": 1,
        "traverse_polysilicon": 1,
        "evaluate_polysilicon": 1,
        "figures_polysilicon": 1,
        "headline": 1,
        "all": 1,
    }


@pytest.mark.e2e
def test_stem_chain_scores_three_training_sets_on_experiment(finished_run):
    res = finished_run / "results/stem"
    for name in ("table1", "examples", "pr_curve", "training", "robustness"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 0
    sweep = pd.read_csv(res / "evaluation/robustness.csv")  # the schema's default sweep
    assert set(sweep.condition) == {"dose", "source_blur", "row_jitter"}
    assert len(sweep) == 7 * 4 and sweep.groupby("condition").default.sum().eq(4).all()
    scores = pd.read_csv(res / "evaluation/table1.csv").set_index("training_set")
    assert list(scores.index) == ["noiseless", "noisy", "cyclegan", "cyclegan_augmented"]
    for name in scores.index:  # stem.augment.epochs: the augmented detector's own length
        epochs = len(pd.read_csv(res / f"detector/{name}/training.csv"))
        assert epochs == (3 if name == "cyclegan_augmented" else 2), name
    for metric in ("precision", "recall", "f1"):
        assert (
            (scores[f"{metric}_low"] <= scores[metric])
            & (scores[metric] <= scores[f"{metric}_high"])
        ).all()
    truth = pd.read_csv(res / "ingest/exp_test/points.csv")
    assert (scores["tp"] + scores["fn"]).nunique() == 1  # same labelled vacancies for every set
    assert 0 < (scores["tp"] + scores["fn"]).iloc[0] <= len(truth)  # edge band dropped
    curve = pd.read_csv(res / "evaluation/pr_curve.csv")
    assert len(curve) == 4 * 19 and curve["recall"].between(0, 1).all()
    # vacancy types from the simulator's labels through detection to Table 1's per-type columns
    kinds = set(truth["type"])
    assert kinds and kinds <= {"V_Se", "V_Se2", "V_W"}
    detected = pd.read_csv(res / "detections/cyclegan.csv")
    assert set(detected["type"]) <= set(pd.read_csv(res / "ingest/sim/points.csv")["type"])
    for kind in {c[2:] for c in scores.columns if c.startswith("n_V_")}:
        assert scores[f"f1_{kind}"].between(0, 1).all() and scores[f"n_{kind}"].gt(0).all()
    assert scores["type_accuracy"].dropna().between(0, 1).all()
    # the CycleGAN domain's labels never enter the workflow
    assert (res / "ingest/exp/points.csv").read_text().count("\n") == 1


@pytest.mark.e2e
def test_segmentation_chain_scores_every_mix_on_held_out_real_images(finished_run):
    res = finished_run / "results/segmentation"
    for name in ("pairs", "miou", "runs_table"):
        assert (res / "figures" / f"{name}.png").stat().st_size > 0
    runs = pd.read_csv(res / "evaluation/runs.csv")
    mixes = list(TINY["segmentation"]["mixes"])
    assert sorted(runs["mix"].unique()) == sorted(mixes)
    assert len(runs) == len(mixes) * len(TINY["segmentation"]["seeds"])
    assert runs[["miou", "miou_present"]].apply(lambda c: c.between(0, 1)).all().all()
    summary = pd.read_csv(res / "evaluation/summary.csv").set_index("mix")
    assert summary.loc["synthetic_only", "synthetic_share"] == 1.0
    assert summary.loc["real1_syn2x", "beats_real_only_at_fewest_real"] in (True, False)
    checks = pd.read_csv(res / "evaluation/generator_checks.csv").set_index("check")
    assert 0 <= checks.loc["vqvae_reconstruction_mask_miou", "value"] <= 1
    # one generator per real-image count, each sampling what its mixes need
    pairs = np.load(res / "generators/real3/synthetic/masks.npy")
    assert pairs.shape == (12, 16, 16) and pairs.max() < 3
    assert np.load(res / "generators/real1/synthetic/masks.npy").shape == (8, 16, 16)
    # honest label counts: no mix's generator saw more real images than the mix itself
    assert summary.generator_real.to_dict() == {
        "real3": 0,
        "real3_syn1x": 3,
        "real1": 0,
        "real1_syn2x": 1,
        "synthetic_only": 3,
        "ceiling": 0,
    }
    assert summary.exact_masks["ceiling"] and not summary.exact_masks["real3"]


@pytest.mark.e2e
def test_a_new_mix_trains_only_that_mix(finished_run):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["segmentation"]["mixes"]["real2"] = {"real": 2, "synthetic_images": 0}
    jobs = planned_jobs(snakemake(finished_run, changed, "-n"))
    assert jobs == {
        "train_segmenter_mix": 1,
        "evaluate_segmentation": 1,
        "figures_segmentation": 1,
        "headline": 1,
        "all": 1,
    }


@pytest.mark.e2e
def test_a_detector_hyperparameter_reruns_only_the_detectors(finished_run):
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["stem"]["detector"]["pos_weight"] = 10.0
    jobs = planned_jobs(snakemake(finished_run, changed, "-n"))
    assert jobs == {
        "train_vacancy_detector": 4,
        "detect_vacancies": 4,
        "score_vacancies": 1,
        "stem_robustness": 4,
        "stem_robustness_table": 1,
        "figure_stem_robustness": 1,
        "figures_stem": 1,
        "headline": 1,
        "all": 1,
    }


@pytest.mark.e2e
def test_headline_table_covers_every_study_and_computes_met(finished_run):
    summary = finished_run / "results/summary"
    table = pd.read_csv(summary / "headline.csv")
    assert list(table.columns) == [
        "study", "quantity", "value", "ci_low", "ci_high", "n_seeds", "target", "met"
    ]  # fmt: skip
    assert set(table.study) == {"porous", "stem", "polysilicon", "segmentation"}
    assert table.value.notna().all() and (table.n_seeds >= 1).all()
    with_target = table[table.target.notna()]
    assert with_target.met.notna().all() and table[table.target.isna()].met.isna().all()
    assert len((summary / "headline.md").read_text().splitlines()) == len(table) + 2


@pytest.mark.e2e
def test_a_forced_rerun_reproduces_a_gan_and_the_detectors_bit_for_bit(finished_run, tmp_path):
    """Each stage runs with its rule's threads, so a rerun next to other jobs (here the three
    detectors and the CycleGAN, two at a time on 2 cores) gives the same weights."""
    import shutil

    import torch

    run = tmp_path / "rerun"  # a copy: the tests after this one expect an untouched run
    shutil.copytree(finished_run, run, symlinks=True)
    res = run / "results"
    models = [res / "porous/cyclegan/model.pt"] + [
        res / f"stem/detector/{name}/model.pt"
        for name in ("noiseless", "noisy", "cyclegan", "cyclegan_augmented")
    ]
    before = [(m.stat().st_mtime_ns, torch.load(m, weights_only=False)) for m in models]
    rules = ["train_cyclegan", "train_vacancy_detector"]
    result = snakemake(run, TINY, "--forcerun", *rules, "--until", *rules)
    assert result.returncode == 0, result.stderr[-3000:]
    for path, (mtime, old) in zip(models, before):
        new = torch.load(path, weights_only=False)
        assert path.stat().st_mtime_ns > mtime  # really trained again
        tensors = [k for k, v in old.items() if isinstance(v, dict) and k != "summary"]
        assert tensors, path
        for key in tensors:
            for name, value in old[key].items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, new[key][name]), f"{path}: {key}.{name}"
    provenance = (res / "porous/cyclegan/model.pt.provenance.json").read_text()
    assert '"threads": 1' in provenance


@pytest.mark.e2e
def test_nothing_reruns_without_change_and_tiling_change_skips_simulation(finished_run):
    result = snakemake(finished_run, TINY, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
    changed = yaml.safe_load(yaml.safe_dump(TINY))
    changed["porous"]["tile"]["sem"]["stride"] = 32
    jobs = planned_jobs(snakemake(finished_run, changed, "-n"))
    # new SEM tiles: everything trained on them reruns; micro-CT tiling and simulation do not
    assert jobs == {
        "tile": 1,
        "morphology": 4,
        "figure_porous_morphology": 1,
        "train_stylegan2": 1,
        "sample_stylegan2": 1,
        "stylegan2_panels": 1,
        "figure_porous_samples": 1,
        "train_cyclegan": 2,
        "translate_microct": 2,
        "translation_error": 1,
        "figure_porous_translation": 1,
        "compare_porous_morphology": 1,
        "figure_porous_comparison": 1,
        "figure_porous_training": 1,
        "headline": 1,
        "all": 1,
    }
    raw = finished_run / "results/porous/raw/samples.tsv"
    before = raw.stat().st_mtime_ns
    assert snakemake(finished_run, changed).returncode == 0
    assert raw.stat().st_mtime_ns == before
    assert len(pd.read_csv(finished_run / "results/porous/morphology/sem.csv")) == 2 * 9


@pytest.mark.e2e
def test_html_report_builds_with_the_figure(finished_run):
    result = snakemake(finished_run, TINY, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (finished_run / "report.html").read_text(errors="ignore")
    assert "morphology.png" in html and "Crofton" in html
    for name in (
        "stylegan2_samples.png",
        "comparison.png",
        "translation.png",
        "training.png",
        "traversal_gan.png",
        "table1.png",
        "pr_curve.png",
        "pairs.png",
        "miou.png",
    ):
        assert name in html
