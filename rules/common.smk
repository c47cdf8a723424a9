# Input functions and paths shared by the rules. Rules only move files and parameters.
from pathlib import Path

RESULTS = config["results"]
# Scheduling: with few cores the longest chains must start first or one core idles at the end
# (STEM CycleGAN -> detectors -> robustness and StyleGAN2 -> sampling -> CycleGAN -> comparison,
# ~12 min of one core each; then the two polysilicon generators). Higher runs earlier among
# ready jobs; a rule inside a chain needs the chain's priority too (a make study at 106c109 had
# its porous CycleGAN wait 12 min behind segmentation for an unprioritised sample_stylegan2).
# Segmentation's generators (VQ-VAE -> PixelCNN -> pairs) come before its U-Nets: unprioritised,
# the 2-image generator started last and its PixelCNN ran alone for 150 s at the end (bef0cd6).
PRIORITY = {"stem": 30, "porous": 30, "polysilicon": 20, "segmentation": 10}


wildcard_constraints:
    study="[a-z]+",
    domain="[a-z_]+",
    tileset="[a-z_0-9]+",
    n_real="[0-9]+",
    translator="cyclegan|cyclegan_real_only",


def sample_sheet(study):
    """The user's sample sheet when configured, else the embedded default's."""
    sheet = config[study]["sample_sheet"]
    return sheet if sheet else f"{RESULTS}/{study}/raw/samples.tsv"


def ingest_options(study):
    """Ingestion checks of a study: its `ingest` slice plus its class names — image classes
    (a `class` column, polysilicon) or mask classes (label values, segmentation)."""
    options = dict(config[study]["ingest"])
    if "pixel_unit" in config[study]:  # empty pixel sizes are read from the files in this unit
        options["pixel_unit"] = config[study]["pixel_unit"]
    if "classes" in config[study]:
        key = "mask_classes" if study == "segmentation" else "classes"
        options[key] = config[study]["classes"]
    return options


def tiling(study, domain):
    return config[study]["tile"][domain]


def paired_domain(study, domain):
    return tiling(study, domain)["paired"]


def translate_domain():
    """The porous domain that CycleGAN translates to SEM ('' = no translation stage)."""
    return config["porous"]["translate"]["domain"]


def has_truth():
    """Whether the translated domain has the true high-resolution slice behind each tile."""
    return bool(translate_domain()) and bool(paired_domain("porous", translate_domain()))


def tileset_files(wildcards):
    return tileset_paths(wildcards.tileset)


def tileset_paths(name):
    """Tile stack + table of a porous tile set: a tiled domain, the paired truth of one
    (`<domain>_paired`), or a synthetic set (`stylegan2`, `cyclegan`, `cyclegan_real_only`)."""
    if name in ("stylegan2", "cyclegan", "cyclegan_real_only"):
        base = f"{RESULTS}/porous/synthetic/{name}"
        return {"tiles": f"{base}/tiles.npy", "table": f"{base}/table.csv"}
    if name.endswith("_paired") and name[: -len("_paired")] in config["porous"]["tile"]:
        base = f"{RESULTS}/porous/tiles/{name[: -len('_paired')]}"
        return {"tiles": f"{base}/paired.npy", "table": f"{base}/paired.csv"}
    base = f"{RESULTS}/porous/tiles/{name}"
    return {"tiles": f"{base}/tiles.npy", "table": f"{base}/table.csv"}


def translators():
    """The porous CycleGANs: `cyclegan` (against real + StyleGAN2 SEM tiles) and, for the
    ablation, `cyclegan_real_only` (against the real SEM tiles alone) first."""
    if not translate_domain():
        return []
    ablation = config["porous"]["translate"]["real_only_ablation"]
    return (["cyclegan_real_only"] if ablation else []) + ["cyclegan"]


def cyclegan_targets(wildcards):
    """The SEM tile stacks a porous CycleGAN translates towards."""
    real = f"{RESULTS}/porous/tiles/sem/tiles.npy"
    if wildcards.translator == "cyclegan_real_only":
        return [real]
    return [real, f"{RESULTS}/porous/synthetic/stylegan2/tiles.npy"]


def after_stylegan2(wildcards):
    """Order only, where the StyleGAN2 books more than one thread: the real-only CycleGAN
    starts after it. Snakemake never holds a core free for a job that needs two, so a one-thread
    job that is ready beside it starts first and the StyleGAN2 waits for it (the real-only
    CycleGAN, then the StyleGAN2, then the other CycleGAN alone: 11.5 instead of 9.3 min alone
    on 2 cores); after it, both CycleGANs run side by side. A plain input, not ancient(): with
    ancient() a run that retrains the StyleGAN2 left a real-only CycleGAN whose own parameters had
    changed untrained. So a retrained StyleGAN2 retrains it too (the same weights: it does not
    read it)."""
    if wildcards.translator != "cyclegan_real_only" or config["porous"]["stylegan2"]["threads"] < 2:
        return []
    return f"{RESULTS}/porous/stylegan2/model.pt"


def porous_gpus(model):
    """GPUs a porous training rule asks for (0 = CPU); the slurm profile may raise it."""
    return int(config["porous"][model]["gpus"])


def training_params(model):
    """A porous model's config slice as its trainer's keyword arguments (without `gpus` and
    `threads`, which size the job)."""
    return {k: v for k, v in config["porous"][model].items() if k not in ("gpus", "threads")}


def cyclegan_params(wildcards):
    """A porous CycleGAN's keyword arguments; the real-only one sees no StyleGAN2 tiles, so how
    many it would take is not its parameter (changing it retrains only `cyclegan`)."""
    params = training_params("cyclegan")
    if wildcards.translator == "cyclegan_real_only":
        params.pop("synthetic_tiles", None)
    return params


def snapshot_tolerances():
    """The porous targets' tolerances, as the StyleGAN2's snapshot choice weighs them."""
    from matgen.pipeline.morphology import mismatch_tolerances

    return mismatch_tolerances(config["porous"]["compare"], config["headline"]["stylegan2_ks"])


def comparison_sets():
    """Label → tile set of the sets the porous comparison puts side by side (real first)."""
    sets = {"SEM (real)": "sem", "StyleGAN2-ADA": "stylegan2"}
    if translate_domain():
        sets[f"CycleGAN({translate_domain()})"] = "cyclegan"
    return sets


def all_targets():
    figures = f"{RESULTS}/porous/figures"
    targets = [f"{RESULTS}/summary/headline.csv", f"{figures}/morphology.png"]
    for domain in config["porous"]["tile"]:
        targets.append(f"{RESULTS}/porous/tiles/{domain}/tiles.npy")
        if paired_domain("porous", domain):
            targets.append(f"{RESULTS}/porous/tiles/{domain}/paired.npy")
    targets += [f"{figures}/stylegan2_samples.png", f"{figures}/comparison.png",
                f"{figures}/training.png"]
    if has_truth():
        targets.append(f"{figures}/translation.png")
    if "polysilicon" in config:
        targets.append(f"{RESULTS}/polysilicon/figures/comparison.png")
    if "segmentation" in config:
        targets += [f"{RESULTS}/segmentation/figures/{name}.png"
                    for name in ("pairs", "miou", "runs_table")]
    if "stem" in config:
        targets += [f"{RESULTS}/stem/figures/{name}.png"
                    for name in ("table1", "examples", "pr_curve", "training", "robustness")]
    return targets


# --- STEM study
def stem_images(domain):
    base = f"{RESULTS}/stem/ingest/{domain}"
    return {"images": f"{base}/images.npy", "table": f"{base}/table.csv",
            "points": f"{base}/points.csv"}


def stem_trainset(name):
    """Images of a detector training set; all carry the simulation's labels."""
    if name == "noiseless":
        return stem_images("sim")["images"]
    name = name.removesuffix("_augmented")  # the CycleGAN output, augmented while training
    return f"{RESULTS}/stem/trainsets/{name}/images.npy"


def stem_detector_experiment():
    """The unlabelled experimental images a detector sets its operating point on, where
    stem.detector.operating_point is 'experiment' (none otherwise)."""
    if config["stem"]["detector"].get("operating_point", "training") != "experiment":
        return {}
    exp = stem_images("exp")
    return {"experiment_images": exp["images"], "experiment_table": exp["table"]}


def stem_training_sets():
    """The paper's three training sets, and the CycleGAN output with microscope augmentation
    where `stem.augment` is configured."""
    return ["noiseless", "noisy", "cyclegan"] + (
        ["cyclegan_augmented"] if "augment" in config["stem"] else []
    )


def stem_augment(trainset):
    """The microscope augmentation of a training set (None: none)."""
    if not trainset.endswith("_augmented"):
        return None
    return {k: v for k, v in config["stem"]["augment"].items() if k != "epochs"}


def stem_detector_training(trainset):
    """The detector's training parameters for a training set: the augmented set's own length
    where stem.augment.epochs sets one."""
    train = dict(config["stem"]["detector"])
    epochs = config["stem"].get("augment", {}).get("epochs")
    if trainset.endswith("_augmented") and epochs:
        train["epochs"] = epochs
    return train


# --- segmentation study
def seg_real_only_mix():
    """The U-Net that referees the generated pairs (segments the generated images, scored
    against the generated masks): the most accurate one trained on real images only — with
    exact masks where a mix has them (the ceiling), else the one with the most annotated."""
    mixes = config["segmentation"]["mixes"]
    plain = [m for m, v in mixes.items() if not v["synthetic_images"] and v["real"]]
    return max(plain, key=lambda m: (mixes[m]["exact_masks"], mixes[m]["real"]), default="")


def seg_generators():
    """Mix -> real images its generator is trained on (mixes with synthetic pairs only)."""
    from matgen.pipeline.mixes import generator_real_counts

    return generator_real_counts(config["segmentation"]["mixes"])


def seg_pairs_per_generator():
    from matgen.pipeline.mixes import pairs_per_generator

    return pairs_per_generator(config["segmentation"]["mixes"], config["segmentation"]["sample"]["n"])


def seg_synthetic(n_real):
    """The pairs sampled by the generator of ``n_real`` real images."""
    base = f"{RESULTS}/segmentation/generators/real{n_real}/synthetic"
    return {"synthetic_images": f"{base}/images.npy", "synthetic_masks": f"{base}/masks.npy"}


def mix_synthetic(wildcards):
    """The synthetic pairs of a mix's generator (none for a real-only mix)."""
    count = seg_generators().get(wildcards.mix)
    return seg_synthetic(count) if count else {}


def seg_main_generator():
    """The generator the checks and figures show: the one that saw the most real images."""
    return max(seg_generators().values(), default=0)


def headline_inputs(wildcards):
    """The tables the headline table is computed from, for the studies configured."""
    return headline_inputs_for([RESULTS])


def headline_inputs_for(results_dirs):
    """Per-seed tables of the headline table: one file per results directory (one per seed)."""
    inputs = {
        "distances": [f"{r}/porous/comparison/distances.csv" for r in results_dirs],
        "layout": [f"{r}/porous/synthetic/stylegan2_layout.csv" for r in results_dirs],
        "translation": (
            [f"{r}/porous/translation/summary.csv" for r in results_dirs] if has_truth() else []
        ),
    }
    tables = {
        "stem": {"table1": "stem/evaluation/table1.csv",
                 "robustness": "stem/evaluation/robustness.csv"},
        "polysilicon": {"judge": "polysilicon/evaluator/held_out.csv",
                        "evaluation": "polysilicon/evaluation/summary.csv"},
        "segmentation": {"checks": "segmentation/evaluation/generator_checks.csv",
                         "runs": "segmentation/evaluation/runs.csv"},
    }
    for study, files in tables.items():
        if study in config:
            for key, path in files.items():
                inputs[key] = [f"{r}/{path}" for r in results_dirs]
    return inputs
