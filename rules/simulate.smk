# Embedded-default data: physically motivated generators with known ground truth.


rule simulate_porous:
    output:
        sheet=f"{RESULTS}/porous/raw/samples.tsv",
    params:
        simulate=config["porous"]["simulate"],
    priority: PRIORITY["porous"]
    threads: 1
    log:
        f"{RESULTS}/logs/porous/simulate.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/simulate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/simulate_porous.py"
