# Sample sheet -> one validated image stack per domain.


rule ingest:
    input:
        sheet=lambda wc: sample_sheet(wc.study),
    output:
        images=f"{RESULTS}/{{study}}/ingest/{{domain}}/images.npy",
        masks=f"{RESULTS}/{{study}}/ingest/{{domain}}/masks.npy",
        table=f"{RESULTS}/{{study}}/ingest/{{domain}}/table.csv",
    wildcard_constraints:
        study="porous|polysilicon|segmentation",  # stem has its own (point labels): ingest_stem
    params:
        ingest=lambda wc: ingest_options(wc.study),
    priority: PRIORITY["porous"]
    threads: 1
    log:
        f"{RESULTS}/logs/{{study}}/ingest_{{domain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/ingest_{{domain}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/ingest.py"
