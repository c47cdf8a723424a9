# Metrics on tiles.


rule morphology:
    input:
        unpack(tileset_files),
    output:
        table=f"{RESULTS}/porous/morphology/{{tileset}}.csv",
        curves=f"{RESULTS}/porous/morphology/{{tileset}}_s2.npz",
        summary=f"{RESULTS}/porous/morphology/{{tileset}}_summary.csv",
    params:
        morphology=config["porous"]["morphology"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/morphology_{{tileset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/morphology_{{tileset}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/morphology.py"


rule translation_error:
    input:
        translated=lambda wc: [f"{RESULTS}/porous/morphology/{t}.csv" for t in translators()],
        translated_curves=lambda wc: [
            f"{RESULTS}/porous/morphology/{t}_s2.npz" for t in translators()
        ],
        truth=lambda wc: f"{RESULTS}/porous/morphology/{translate_domain()}_paired.csv",
        truth_curves=lambda wc: f"{RESULTS}/porous/morphology/{translate_domain()}_paired_s2.npz",
        microct=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/tiles.npy",
        microct_table=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/table.csv",
    output:
        per_tile=f"{RESULTS}/porous/translation/per_tile.csv",
        summary=f"{RESULTS}/porous/translation/summary.csv",
        bicubic=f"{RESULTS}/porous/translation/bicubic.npy",
    params:
        methods=translators(),
        morphology=config["porous"]["morphology"],
        # the scanner's pure-pore / pure-solid grey levels: its own porosity reading as a row
        microct_levels=config["porous"]["cyclegan"].get("forward_levels"),
    threads: 1
    log:
        f"{RESULTS}/logs/porous/translation_error.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/translation_error.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/translation_error.py"


rule compare_porous_morphology:
    input:
        tables=[f"{RESULTS}/porous/morphology/{s}.csv" for s in comparison_sets().values()],
        tiles=[tileset_paths(s)["tiles"] for s in comparison_sets().values()],
    output:
        distances=f"{RESULTS}/porous/comparison/distances.csv",
        spectra=f"{RESULTS}/porous/comparison/spectra.npz",
    params:
        labels=list(comparison_sets()),
        compare=config["porous"]["compare"],
        smooth_sigma=config["porous"]["morphology"]["smooth_sigma"],
    threads: 1
    log:
        f"{RESULTS}/logs/porous/compare_morphology.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/compare_morphology.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/compare_porous_morphology.py"
