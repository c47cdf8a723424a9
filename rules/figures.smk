# Figures and tables of the study, each with the CSV it is drawn from.


rule figure_porous_morphology:
    input:
        table=f"{RESULTS}/porous/morphology/sem.csv",
        curves=f"{RESULTS}/porous/morphology/sem_s2.npz",
        summary=f"{RESULTS}/porous/morphology/sem_summary.csv",
    output:
        png=report(f"{RESULTS}/porous/figures/morphology.png",
                   caption="../report/porous_morphology.rst", category="Porous"),
        pdf=f"{RESULTS}/porous/figures/morphology.pdf",
        csv=f"{RESULTS}/porous/figures/morphology.csv",
    params:
        unit=config["porous"]["pixel_unit"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/figure_morphology.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/figure_morphology.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figure_porous_morphology.py"


rule figure_porous_samples:
    input:
        panels=rules.stylegan2_panels.output.panels,
        table=rules.stylegan2_panels.output.table,
        layout=rules.stylegan2_panels.output.layout,
    output:
        png=report(f"{RESULTS}/porous/figures/stylegan2_samples.png",
                   caption="../report/porous_samples.rst", category="Porous"),
        pdf=f"{RESULTS}/porous/figures/stylegan2_samples.pdf",
        csv=f"{RESULTS}/porous/figures/stylegan2_samples.csv",
    threads: 1
    log:
        f"{RESULTS}/logs/porous/figure_samples.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/figure_samples.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figure_porous_samples.py"


rule figure_porous_comparison:
    input:
        tables=[f"{RESULTS}/porous/morphology/{s}.csv" for s in comparison_sets().values()],
        curves=[f"{RESULTS}/porous/morphology/{s}_s2.npz" for s in comparison_sets().values()],
        summaries=[
            f"{RESULTS}/porous/morphology/{s}_summary.csv" for s in comparison_sets().values()
        ],
        distances=rules.compare_porous_morphology.output.distances,
        spectra=rules.compare_porous_morphology.output.spectra,
    output:
        png=report(f"{RESULTS}/porous/figures/comparison.png",
                   caption="../report/porous_comparison.rst", category="Porous"),
        pdf=f"{RESULTS}/porous/figures/comparison.pdf",
        csv=f"{RESULTS}/porous/figures/comparison.csv",
    params:
        labels=list(comparison_sets()),
        unit=config["porous"]["pixel_unit"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/figure_comparison.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/figure_comparison.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figure_porous_comparison.py"


rule figure_porous_translation:
    input:
        microct=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/tiles.npy",
        bicubic=rules.translation_error.output.bicubic,
        translated=lambda wc: [f"{RESULTS}/porous/synthetic/{t}/tiles.npy" for t in translators()],
        truth=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/paired.npy",
        per_tile=rules.translation_error.output.per_tile,
        summary=rules.translation_error.output.summary,
    output:
        png=report(f"{RESULTS}/porous/figures/translation.png",
                   caption="../report/porous_translation.rst", category="Porous"),
        pdf=f"{RESULTS}/porous/figures/translation.pdf",
        csv=f"{RESULTS}/porous/figures/translation.csv",
    params:
        methods=translators(),
        unit=config["porous"]["pixel_unit"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/figure_translation.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/figure_translation.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figure_porous_translation.py"


rule figure_porous_training:
    input:
        unpack(lambda wc: {"stylegan2": rules.train_stylegan2.output.log,
                           **{t: f"{RESULTS}/porous/{t}/training.csv" for t in translators()}}),
    output:
        png=report(f"{RESULTS}/porous/figures/training.png",
                   caption="../report/porous_training.rst", category="Porous"),
        pdf=f"{RESULTS}/porous/figures/training.pdf",
        csv=f"{RESULTS}/porous/figures/training.csv",
    params:
        ada_target=config["porous"]["stylegan2"]["ada_target"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/figure_training.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/figure_training.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figure_porous_training.py"
