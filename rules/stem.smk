# STEM study: simulated ADF-STEM of WSe2 -> CycleGAN (sim -> exp, Fourier discriminators) ->
# vacancy detector trained on noiseless / noisy / CycleGAN images -> P/R/F1 on experiment.

STEM = f"{RESULTS}/stem"
STEM_DOMAINS = "sim|exp|exp_test"
STEM_TRAINSET = "noiseless|noisy|cyclegan|cyclegan_augmented"  # a detector's training set


rule simulate_stem:
    output:
        sheet=f"{STEM}/raw/samples.tsv",
    params:
        simulate=config["stem"]["simulate"],
    priority: PRIORITY["stem"]
    threads: 1
    log:
        f"{RESULTS}/logs/stem/simulate.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/simulate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/simulate_stem.py"


rule ingest_stem:
    input:
        sheet=lambda wc: sample_sheet("stem"),
    output:
        **stem_images("{domain}"),
    wildcard_constraints:
        domain=STEM_DOMAINS,
    params:
        pixel_size=config["stem"]["pixel_size"],
        default_unit=config["stem"]["pixel_unit"],
        require_points=lambda wc: wc.domain != "exp",
    priority: PRIORITY["stem"]
    threads: 1
    log:
        f"{RESULTS}/logs/stem/ingest_{{domain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/ingest_{{domain}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/ingest_stem.py"


rule noisy_stem:
    input:
        images=stem_images("sim")["images"],
    output:
        images=f"{STEM}/trainsets/noisy/images.npy",
    params:
        noisy=config["stem"]["noisy"],
    threads: 1
    log:
        f"{RESULTS}/logs/stem/noisy.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/noisy.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/noisy_stem.py"


rule tile_stem:
    input:
        images=lambda wc: stem_images(wc.domain)["images"],
        table=lambda wc: stem_images(wc.domain)["table"],
    output:
        tiles=f"{STEM}/tiles/{{domain}}/tiles.npy",
        table=f"{STEM}/tiles/{{domain}}/table.csv",
    wildcard_constraints:
        domain="sim|exp",
    params:
        tiling={k: v for k, v in config["stem"]["tile"].items() if k != "paired"},
    priority: PRIORITY["stem"]
    threads: 1
    log:
        f"{RESULTS}/logs/stem/tile_{{domain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/tile_{{domain}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/tile_stem.py"


rule train_stem_cyclegan:
    input:
        sim=f"{STEM}/tiles/sim/tiles.npy",
        exp=f"{STEM}/tiles/exp/tiles.npy",
    output:
        model=f"{STEM}/cyclegan/model.pt",
        log=f"{STEM}/cyclegan/training.csv",
    params:
        train=config["stem"]["cyclegan"],
    priority: PRIORITY["stem"]
    threads: 1
    log:
        f"{RESULTS}/logs/stem/train_cyclegan.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/train_cyclegan.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_stem_cyclegan.py"


rule translate_stem:
    input:
        model=f"{STEM}/cyclegan/model.pt",
        images=stem_images("sim")["images"],
    output:
        images=f"{STEM}/trainsets/cyclegan/images.npy",
    params:
        input_noise=config["stem"]["cyclegan"]["input_noise"],
        translate=config["stem"]["translate"],
        device=config["stem"]["cyclegan"]["device"],
    priority: PRIORITY["stem"]
    threads: 1
    log:
        f"{RESULTS}/logs/stem/translate.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/translate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/translate_stem.py"


rule train_vacancy_detector:
    input:
        images=lambda wc: stem_trainset(wc.trainset),
        table=stem_images("sim")["table"],
        points=stem_images("sim")["points"],
        **stem_detector_experiment(),
    output:
        model=f"{STEM}/detector/{{trainset}}/model.pt",
        log=f"{STEM}/detector/{{trainset}}/training.csv",
    wildcard_constraints:
        trainset=STEM_TRAINSET,
    params:
        train=lambda wc: stem_detector_training(wc.trainset),
        augment=lambda wc: stem_augment(wc.trainset),
    priority: PRIORITY["stem"]
    threads: 1
    log:
        f"{RESULTS}/logs/stem/train_detector_{{trainset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/train_detector_{{trainset}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_vacancy_detector.py"


rule detect_vacancies:
    input:
        model=f"{STEM}/detector/{{trainset}}/model.pt",
        **{k: v for k, v in stem_images("exp_test").items() if k != "points"},
    output:
        points=f"{STEM}/detections/{{trainset}}.csv",
    wildcard_constraints:
        trainset=STEM_TRAINSET,
    params:
        detect=config["stem"]["detect"],
        device=config["stem"]["detector"]["device"],
    threads: 1
    log:
        f"{RESULTS}/logs/stem/detect_{{trainset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/detect_{{trainset}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/detect_vacancies.py"


rule score_vacancies:
    input:
        **{t: f"{STEM}/detections/{t}.csv" for t in stem_training_sets()},
        **{f"detector_{t}": f"{STEM}/detector/{t}/model.pt" for t in stem_training_sets()},
        truth=stem_images("exp_test")["points"],
        table=stem_images("exp_test")["table"],
    output:
        scores=f"{STEM}/evaluation/table1.csv",
        curve=f"{STEM}/evaluation/pr_curve.csv",
        per_image=f"{STEM}/evaluation/per_image.csv",
        points=f"{STEM}/evaluation/points.csv",
    params:
        names=stem_training_sets(),
        score=config["stem"]["score"],
    threads: 1
    log:
        f"{RESULTS}/logs/stem/score.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/score.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/score_vacancies.py"


rule stem_robustness:
    input:
        model=f"{STEM}/detector/{{trainset}}/model.pt",
    output:
        table=f"{STEM}/evaluation/robustness/{{trainset}}.csv",
    wildcard_constraints:
        trainset=STEM_TRAINSET,
    params:
        simulate=config["stem"]["simulate"],
        robustness=config["stem"]["robustness"],
        detect=config["stem"]["detect"],
        score=config["stem"]["score"],
        pixel_size=config["stem"]["pixel_size"],
        device=config["stem"]["detector"]["device"],
    threads: 1
    log:
        f"{RESULTS}/logs/stem/robustness_{{trainset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/robustness_{{trainset}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/stem_robustness.py"


# one sweep job per detector (the same simulated images in each): a detector's sweep starts
# when it is trained, and a change to one detector reruns only its own
rule stem_robustness_table:
    input:
        tables=[f"{STEM}/evaluation/robustness/{t}.csv" for t in stem_training_sets()],
    output:
        table=f"{STEM}/evaluation/robustness.csv",
    params:
        names=stem_training_sets(),
    threads: 1
    log:
        f"{RESULTS}/logs/stem/robustness_table.log",
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/merge_robustness.py"


rule figure_stem_robustness:
    input:
        table=rules.stem_robustness_table.output.table,
    output:
        png=report(f"{STEM}/figures/robustness.png", caption="../report/stem_robustness.rst",
                   category="STEM"),
        pdf=f"{STEM}/figures/robustness.pdf",
    params:
        target=config["headline"]["stem_robust_f1"],
    threads: 1
    log:
        f"{RESULTS}/logs/stem/figure_robustness.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/figure_robustness.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figure_stem_robustness.py"


rule figures_stem:
    input:
        scores=f"{STEM}/evaluation/table1.csv",
        curve=f"{STEM}/evaluation/pr_curve.csv",
        sim=stem_images("sim")["images"],
        sim_points=stem_images("sim")["points"],
        cyclegan=f"{STEM}/trainsets/cyclegan/images.npy",
        noisy=f"{STEM}/trainsets/noisy/images.npy",
        exp=stem_images("exp_test")["images"],
        exp_table=stem_images("exp_test")["table"],
        points=rules.score_vacancies.output.points,
        cyclegan_log=f"{STEM}/cyclegan/training.csv",
        **{f"log_{t}": f"{STEM}/detector/{t}/training.csv" for t in stem_training_sets()},
    output:
        table=report(f"{STEM}/figures/table1.png", caption="../report/stem_table1.rst",
                     category="STEM"),
        examples=report(f"{STEM}/figures/examples.png", caption="../report/stem_examples.rst",
                        category="STEM"),
        pr_curve=report(f"{STEM}/figures/pr_curve.png", caption="../report/stem_pr_curve.rst",
                        category="STEM"),
        training=f"{STEM}/figures/training.png",
    threads: 1
    log:
        f"{RESULTS}/logs/stem/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/stem/figures.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figures_stem.py"
