# Segmentation study: VQ-VAE + PixelCNN generate image + mask pairs; U-Nets trained on
# real/synthetic mixes (several seeds) are scored on held-out real images only.

SEG = f"{RESULTS}/segmentation"
SEG_REAL = {"images": f"{SEG}/ingest/micrograph/images.npy",
            "masks": f"{SEG}/ingest/micrograph/masks.npy",
            "table": f"{SEG}/ingest/micrograph/table.csv"}
# one generator per real-image count: a mix of N real images uses pairs of a generator that
# saw those N images only (matgen.pipeline.mixes)
GEN = f"{SEG}/generators/real{{n_real}}"


rule simulate_segmentation:
    output:
        sheet=f"{SEG}/raw/samples.tsv",
    params:
        simulate=config["segmentation"]["simulate"],
    priority: PRIORITY["segmentation"]
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/simulate.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/simulate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/simulate_segmentation.py"


rule train_vqvae:
    input:
        **SEG_REAL,
    output:
        model=f"{GEN}/vqvae/model.pt",
        log=f"{GEN}/vqvae/training.csv",
    params:
        n_real=lambda wc: int(wc.n_real),
        classes=config["segmentation"]["classes"],
        split=config["segmentation"]["split"],
        train=config["segmentation"]["vqvae"],
    priority: PRIORITY["segmentation"]
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/train_vqvae_real{{n_real}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/train_vqvae_real{{n_real}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_vqvae.py"


rule train_pixelcnn:
    input:
        vqvae=f"{GEN}/vqvae/model.pt",
        **SEG_REAL,
    output:
        model=f"{GEN}/pixelcnn/model.pt",
        log=f"{GEN}/pixelcnn/training.csv",
    params:
        n_real=lambda wc: int(wc.n_real),
        split=config["segmentation"]["split"],
        train=config["segmentation"]["pixelcnn"],
    priority: PRIORITY["segmentation"]
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/train_pixelcnn_real{{n_real}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/train_pixelcnn_real{{n_real}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/train_pixelcnn.py"


rule sample_segmentation_pairs:
    input:
        vqvae=f"{GEN}/vqvae/model.pt",
        pixelcnn=f"{GEN}/pixelcnn/model.pt",
    output:
        images=f"{GEN}/synthetic/images.npy",
        masks=f"{GEN}/synthetic/masks.npy",
        table=f"{GEN}/synthetic/table.csv",
    params:
        sample=lambda wc: {**config["segmentation"]["sample"],
                           "n": seg_pairs_per_generator()[int(wc.n_real)]},
    priority: PRIORITY["segmentation"]
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/sample_real{{n_real}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/sample_real{{n_real}}.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/sample_segmentation_pairs.py"


rule train_segmenter_mix:
    input:
        unpack(mix_synthetic),
        **SEG_REAL,
    output:
        scores=f"{SEG}/unet/{{mix}}/scores.csv",
        model=f"{SEG}/unet/{{mix}}/model.pt",
    wildcard_constraints:
        mix="[a-z0-9_]+",
    params:
        mix=lambda wc: config["segmentation"]["mixes"][wc.mix],
        generator_real=lambda wc: seg_generators().get(wc.mix, 0),
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
        vqvae=f"{SEG}/generators/real{seg_main_generator()}/vqvae/model.pt",
        real_segmenter=f"{SEG}/unet/{seg_real_only_mix()}/model.pt",
        **SEG_REAL,
        **seg_synthetic(seg_main_generator()),
    output:
        runs=f"{SEG}/evaluation/runs.csv",
        summary=f"{SEG}/evaluation/summary.csv",
        checks=f"{SEG}/evaluation/generator_checks.csv",
        curves=f"{SEG}/evaluation/generator_curves.npz",
    params:
        classes=config["segmentation"]["classes"],
        split=config["segmentation"]["split"],
        generator_real=seg_main_generator(),
    threads: 1
    log:
        f"{RESULTS}/logs/segmentation/evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/evaluate.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/evaluate_segmentation.py"


rule figures_segmentation:
    input:
        summary=f"{SEG}/evaluation/summary.csv",
        runs=f"{SEG}/evaluation/runs.csv",
        checks=f"{SEG}/evaluation/generator_checks.csv",
        curves=f"{SEG}/evaluation/generator_curves.npz",
        **SEG_REAL,
        **seg_synthetic(seg_main_generator()),
        vqvae_log=f"{SEG}/generators/real{seg_main_generator()}/vqvae/training.csv",
        pixelcnn_log=f"{SEG}/generators/real{seg_main_generator()}/pixelcnn/training.csv",
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
    benchmark:
        f"{RESULTS}/benchmarks/segmentation/figures.tsv"
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/figures_segmentation.py"
