# The study's headline numbers, one generated table (results/summary/headline.{csv,md}).


rule headline:
    input:
        unpack(headline_inputs),
    output:
        csv=f"{RESULTS}/summary/headline.csv",
        md=f"{RESULTS}/summary/headline.md",
    params:
        compare=config["porous"]["compare"],
        targets=config["headline"],
    threads: 1
    log:
        f"{RESULTS}/logs/summary/headline.log",
    benchmark:
        f"{RESULTS}/benchmarks/summary/headline.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/headline.py"
