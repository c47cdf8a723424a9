# Metrics on tiles.


rule morphology:
    input:
        tiles=f"{RESULTS}/porous/tiles/{{domain}}/tiles.npy",
        table=f"{RESULTS}/porous/tiles/{{domain}}/table.csv",
    output:
        table=f"{RESULTS}/porous/morphology/{{domain}}.csv",
        curves=f"{RESULTS}/porous/morphology/{{domain}}_s2.npz",
    params:
        morphology=config["porous"]["morphology"],
    log:
        f"{RESULTS}/logs/porous/morphology_{{domain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/porous/morphology_{{domain}}.tsv"
    script:
        "../scripts/morphology.py"
