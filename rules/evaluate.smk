# Metrics on tiles.


rule morphology:
    input:
        unpack(tileset_files),
    output:
        table=f"{RESULTS}/porous/morphology/{{tileset}}.csv",
        curves=f"{RESULTS}/porous/morphology/{{tileset}}_s2.npz",
    params:
        morphology=config["porous"]["morphology"],
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
        translated=f"{RESULTS}/porous/morphology/cyclegan.csv",
        translated_curves=f"{RESULTS}/porous/morphology/cyclegan_s2.npz",
        truth=lambda wc: f"{RESULTS}/porous/morphology/{translate_domain()}_paired.csv",
        truth_curves=lambda wc: f"{RESULTS}/porous/morphology/{translate_domain()}_paired_s2.npz",
        microct=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/tiles.npy",
        microct_table=lambda wc: f"{RESULTS}/porous/tiles/{translate_domain()}/table.csv",
    output:
        per_tile=f"{RESULTS}/porous/translation/per_tile.csv",
        summary=f"{RESULTS}/porous/translation/summary.csv",
    params:
        morphology=config["porous"]["morphology"],
    log:
        f"{RESULTS}/logs/porous/translation_error.log",
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/translation_error.py"
