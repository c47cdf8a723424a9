# Generative models of the porous study: train, then sample / translate.


rule train_stylegan2:
    input:
        tiles=f"{RESULTS}/porous/tiles/sem/tiles.npy",
        # whole SEM images: D's real batches are crops of them where stylegan2.crop_stride > 0
        images=f"{RESULTS}/porous/ingest/sem/images.npy",
        images_table=f"{RESULTS}/porous/ingest/sem/table.csv",
    output:
        model=f"{RESULTS}/porous/stylegan2/model.pt",
        log=f"{RESULTS}/porous/stylegan2/training.csv",
    params:
        stylegan2=training_params("stylegan2"),
        # the snapshot choice weighs each target by its configured tolerance
        snapshot_tolerances=snapshot_tolerances(),
        # the threads the run uses at least, where Snakemake grants fewer (they change the sums)
        threads=config["porous"]["stylegan2"]["threads"],
    resources:
        gpu=porous_gpus("stylegan2"),
    # the porous chain's head (StyleGAN2 -> sampling -> CycleGAN, its longest) on two threads:
    # above any two one-thread jobs, as the scheduler weighs the sum of the jobs it starts
    priority: 2 * max(PRIORITY.values()) + 1
    threads: config["porous"]["stylegan2"]["threads"]
    log:
        f"{RESULTS}/logs/porous/train_stylegan2.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/train_stylegan2.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_stylegan2.py"


rule sample_stylegan2:
    input:
        model=rules.train_stylegan2.output.model,
        real_table=f"{RESULTS}/porous/tiles/sem/table.csv",
    output:
        tiles=f"{RESULTS}/porous/synthetic/stylegan2/tiles.npy",
        table=f"{RESULTS}/porous/synthetic/stylegan2/table.csv",
    params:
        sample=config["porous"]["sample"],
    priority: PRIORITY["porous"]
    threads: 1
    log:
        f"{RESULTS}/logs/porous/sample_stylegan2.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/sample_stylegan2.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/sample_stylegan2.py"


rule stylegan2_panels:
    input:
        model=rules.train_stylegan2.output.model,
        real=f"{RESULTS}/porous/tiles/sem/tiles.npy",
    output:
        panels=f"{RESULTS}/porous/synthetic/stylegan2_panels.npz",
        table=f"{RESULTS}/porous/synthetic/stylegan2_panels.csv",
        layout=f"{RESULTS}/porous/synthetic/stylegan2_layout.csv",
    params:
        seed=config["porous"]["sample"]["seed"],
        morphology=config["porous"]["morphology"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/stylegan2_panels.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/stylegan2_panels.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/stylegan2_panels.py"


rule train_cyclegan:
    input:
        low=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/tiles.npy",
        high=cyclegan_targets,
        after=after_stylegan2,
    output:
        model=f"{RESULTS}/porous/{{translator}}/model.pt",
        log=f"{RESULTS}/porous/{{translator}}/training.csv",
    params:
        cyclegan=cyclegan_params,
    resources:
        gpu=lambda wc: porous_gpus("cyclegan"),
    priority: PRIORITY["porous"]
    threads: 1
    log:
        f"{RESULTS}/logs/porous/train_{{translator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/train_{{translator}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_cyclegan.py"


rule translate_microct:
    input:
        model=rules.train_cyclegan.output.model,
        tiles=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/tiles.npy",
        table=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/table.csv",
    output:
        tiles=f"{RESULTS}/porous/synthetic/{{translator}}/tiles.npy",
        table=f"{RESULTS}/porous/synthetic/{{translator}}/table.csv",
    params:
        batch_size=config["porous"]["translate"]["batch_size"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/translate_microct_{{translator}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/translate_microct_{{translator}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/translate_microct.py"
