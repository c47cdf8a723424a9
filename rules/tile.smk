# Image stacks -> tile stacks (regular grid with overlap, or random non-overlapping tiles).


rule tile:
    input:
        images=rules.ingest.output.images,
        masks=rules.ingest.output.masks,
        table=rules.ingest.output.table,
    output:
        tiles=f"{RESULTS}/{{study}}/tiles/{{domain}}/tiles.npy",
        masks=f"{RESULTS}/{{study}}/tiles/{{domain}}/masks.npy",
        table=f"{RESULTS}/{{study}}/tiles/{{domain}}/table.csv",
    params:
        tiling=lambda wc: {k: v for k, v in tiling(wc.study, wc.domain).items() if k != "paired"},
    priority: PRIORITY["porous"]
    threads: 1
    log:
        f"{RESULTS}/logs/{{study}}/tile_{{domain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/tile_{{domain}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/tile.py"


rule tile_paired:
    input:
        table=rules.tile.output.table,
        images=lambda wc: f"{RESULTS}/{wc.study}/ingest/{paired_domain(wc.study, wc.domain)}/images.npy",
        paired_table=lambda wc: f"{RESULTS}/{wc.study}/ingest/{paired_domain(wc.study, wc.domain)}/table.csv",
    output:
        tiles=f"{RESULTS}/{{study}}/tiles/{{domain}}/paired.npy",
        table=f"{RESULTS}/{{study}}/tiles/{{domain}}/paired.csv",
    priority: PRIORITY["porous"]
    threads: 1
    log:
        f"{RESULTS}/logs/{{study}}/tile_paired_{{domain}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{study}}/tile_paired_{{domain}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/tile_paired.py"
