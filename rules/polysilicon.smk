# Polysilicon study: conditional VAE and GAN on grain microstructures labelled with class and
# E11, judged by a CNN trained on the real images and by the physics that labelled them.

POLY = f"{RESULTS}/polysilicon"
POLY_REAL = {"images": f"{POLY}/ingest/grains/images.npy",
             "table": f"{POLY}/ingest/grains/table.csv"}
POLY_MODELS = {"vae": "cvae", "gan": "cgan"}  # config key -> checkpoint family


rule simulate_polysilicon:
    output:
        sheet=f"{POLY}/raw/samples.tsv",
    params:
        simulate=config["polysilicon"]["simulate"],
    priority: PRIORITY["polysilicon"]
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/simulate.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/simulate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/simulate_polysilicon.py"


rule train_polysilicon:
    input:
        **POLY_REAL,
    output:
        model=f"{POLY}/{{model}}/model.pt",
        log=f"{POLY}/{{model}}/training.csv",
    wildcard_constraints:
        model="vae|gan",
    params:
        family=lambda wc: POLY_MODELS[wc.model],
        classes=config["polysilicon"]["classes"],
        train=lambda wc: config["polysilicon"][wc.model],
    priority: PRIORITY["polysilicon"]
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/train_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/train_{{model}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_polysilicon.py"


rule train_polysilicon_evaluator:
    input:
        **POLY_REAL,
    output:
        model=f"{POLY}/evaluator/model.pt",
        log=f"{POLY}/evaluator/training.csv",
        metrics=f"{POLY}/evaluator/held_out.csv",
    params:
        classes=config["polysilicon"]["classes"],
        train=config["polysilicon"]["evaluator"],
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/train_evaluator.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/train_evaluator.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_polysilicon_evaluator.py"


rule sample_polysilicon:
    input:
        model=f"{POLY}/{{model}}/model.pt",
        real_table=POLY_REAL["table"],
    output:
        images=f"{POLY}/samples/{{model}}/images.npy",
        table=f"{POLY}/samples/{{model}}/table.csv",
    wildcard_constraints:
        model="vae|gan",
    params:
        family=lambda wc: POLY_MODELS[wc.model],
        sample=config["polysilicon"]["sample"],
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/sample_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/sample_{{model}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/sample_polysilicon.py"


rule evaluate_polysilicon:
    input:
        evaluator=rules.train_polysilicon_evaluator.output.model,
        **POLY_REAL,
        samples=expand(f"{POLY}/samples/{{model}}/images.npy", model=list(POLY_MODELS)),
        tables=expand(f"{POLY}/samples/{{model}}/table.csv", model=list(POLY_MODELS)),
    output:
        per_sample=f"{POLY}/evaluation/per_sample.csv",
        summary=f"{POLY}/evaluation/summary.csv",
        per_class=f"{POLY}/evaluation/grains_per_class.csv",
    params:
        names=["cVAE", "cGAN"],
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/evaluate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/evaluate_polysilicon.py"


rule traverse_polysilicon:
    input:
        model=f"{POLY}/{{model}}/model.pt",
        real_table=POLY_REAL["table"],
    output:
        grid=f"{POLY}/traversal/{{model}}/grid.npy",
        table=f"{POLY}/traversal/{{model}}/images.csv",
        summary=f"{POLY}/traversal/{{model}}/summary.csv",
    wildcard_constraints:
        model="vae|gan",
    params:
        family=lambda wc: POLY_MODELS[wc.model],
        traversal=config["polysilicon"]["traversal"],
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/traversal_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/traversal_{{model}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/traverse_polysilicon.py"


rule figures_polysilicon:
    input:
        **POLY_REAL,
        samples=expand(f"{POLY}/samples/{{model}}/images.npy", model=list(POLY_MODELS)),
        tables=expand(f"{POLY}/samples/{{model}}/table.csv", model=list(POLY_MODELS)),
        grids=expand(f"{POLY}/traversal/{{model}}/grid.npy", model=list(POLY_MODELS)),
        traversals=expand(f"{POLY}/traversal/{{model}}/summary.csv", model=list(POLY_MODELS)),
        summary=rules.evaluate_polysilicon.output.summary,
        per_sample=rules.evaluate_polysilicon.output.per_sample,
        judge=rules.train_polysilicon_evaluator.output.metrics,
    output:
        samples=report(f"{POLY}/figures/samples.png", caption="../report/polysilicon_samples.rst",
                       category="Polysilicon"),
        samples_csv=f"{POLY}/figures/samples.csv",
        traversal_vae=report(f"{POLY}/figures/traversal_vae.png",
                             caption="../report/polysilicon_traversal.rst", category="Polysilicon"),
        traversal_gan=report(f"{POLY}/figures/traversal_gan.png",
                             caption="../report/polysilicon_traversal.rst", category="Polysilicon"),
        comparison=report(f"{POLY}/figures/comparison.png",
                          caption="../report/polysilicon_comparison.rst", category="Polysilicon"),
        comparison_csv=f"{POLY}/figures/comparison.csv",
    params:
        names=["cVAE", "cGAN"],
        classes=config["polysilicon"]["classes"],
        span=config["polysilicon"]["traversal"]["span"],
    threads: 1
    log:
        f"{RESULTS}/logs/polysilicon/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/polysilicon/figures.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figures_polysilicon.py"
