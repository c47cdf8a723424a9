# Segmentation study: VQ-VAE + PixelCNN generate image + mask pairs; U-Nets trained on
# real/synthetic mixes (several seeds) are scored on held-out real images only.

SEG = f"{RESULTS}/segmentation"
SEG_REAL = {"images": f"{SEG}/ingest/micrograph/images.npy",
            "masks": f"{SEG}/ingest/micrograph/masks.npy",
            "table": f"{SEG}/ingest/micrograph/table.csv"}
SEG_SYNTHETIC = {"synthetic_images": f"{SEG}/synthetic/images.npy",
                 "synthetic_masks": f"{SEG}/synthetic/masks.npy"}


rule simulate_segmentation:
    output:
        sheet=f"{SEG}/raw/samples.tsv",
    params:
        simulate=config["segmentation"]["simulate"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/simulate.log",
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/simulate_segmentation.py"


rule train_vqvae:
    input:
        **SEG_REAL,
    output:
        model=f"{SEG}/vqvae/model.pt",
        log=f"{SEG}/vqvae/training.csv",
    params:
        classes=config["segmentation"]["classes"],
        split=config["segmentation"]["split"],
        train=config["segmentation"]["vqvae"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/train_vqvae.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/train_vqvae.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_vqvae.py"


rule train_pixelcnn:
    input:
        vqvae=f"{SEG}/vqvae/model.pt",
        **SEG_REAL,
    output:
        model=f"{SEG}/pixelcnn/model.pt",
        log=f"{SEG}/pixelcnn/training.csv",
    params:
        split=config["segmentation"]["split"],
        train=config["segmentation"]["pixelcnn"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/train_pixelcnn.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/train_pixelcnn.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_pixelcnn.py"


rule sample_segmentation_pairs:
    input:
        vqvae=f"{SEG}/vqvae/model.pt",
        pixelcnn=f"{SEG}/pixelcnn/model.pt",
    output:
        images=SEG_SYNTHETIC["synthetic_images"],
        masks=SEG_SYNTHETIC["synthetic_masks"],
        table=f"{SEG}/synthetic/table.csv",
    params:
        sample=config["segmentation"]["sample"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/sample.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/sample.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/sample_segmentation_pairs.py"


rule train_segmenter_mix:
    input:
        **SEG_REAL,
        **SEG_SYNTHETIC,
    output:
        scores=f"{SEG}/unet/{{mix}}/scores.csv",
        model=f"{SEG}/unet/{{mix}}/model.pt",
    wildcard_constraints:
        mix="[a-z0-9_]+",
    params:
        mix=lambda wc: config["segmentation"]["mixes"][wc.mix],
        seeds=config["segmentation"]["seeds"],
        classes=config["segmentation"]["classes"],
        split=config["segmentation"]["split"],
        score=config["segmentation"]["score"],
        train=config["segmentation"]["unet"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/unet_{{mix}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/unet_{{mix}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_segmenter_mix.py"


rule evaluate_segmentation:
    input:
        scores=expand(f"{SEG}/unet/{{mix}}/scores.csv", mix=list(config["segmentation"]["mixes"])),
        vqvae=f"{SEG}/vqvae/model.pt",
        real_segmenter=f"{SEG}/unet/{seg_real_only_mix()}/model.pt",
        **SEG_REAL,
        **SEG_SYNTHETIC,
    output:
        runs=f"{SEG}/evaluation/runs.csv",
        summary=f"{SEG}/evaluation/summary.csv",
        checks=f"{SEG}/evaluation/generator_checks.csv",
    params:
        classes=config["segmentation"]["classes"],
        split=config["segmentation"]["split"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/evaluate.log",
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/evaluate_segmentation.py"


rule figures_segmentation:
    input:
        summary=f"{SEG}/evaluation/summary.csv",
        runs=f"{SEG}/evaluation/runs.csv",
        checks=f"{SEG}/evaluation/generator_checks.csv",
        **SEG_REAL,
        **SEG_SYNTHETIC,
        vqvae_log=f"{SEG}/vqvae/training.csv",
        pixelcnn_log=f"{SEG}/pixelcnn/training.csv",
    output:
        pairs=report(f"{SEG}/figures/pairs.png", caption="../report/segmentation_pairs.rst",
                     category="Segmentation"),
        miou=report(f"{SEG}/figures/miou.png", caption="../report/segmentation_miou.rst",
                    category="Segmentation"),
        runs=report(f"{SEG}/figures/runs_table.png", caption="../report/segmentation_runs.rst",
                    category="Segmentation"),
    params:
        classes=config["segmentation"]["classes"],
        split=config["segmentation"]["split"],
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/figures.log",
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figures_segmentation.py"
