# Figures and tables of the study, each with the CSV it is drawn from.


rule figure_porous_morphology:
    input:
        table=f"{RESULTS}/porous/morphology/sem.csv",
        curves=f"{RESULTS}/porous/morphology/sem_s2.npz",
        tiles=f"{RESULTS}/porous/tiles/sem/tiles.npy",
    output:
        png=report(f"{RESULTS}/porous/figures/morphology.png",
                   caption="../report/porous_morphology.rst", category="Porous"),
        pdf=f"{RESULTS}/porous/figures/morphology.pdf",
        csv=f"{RESULTS}/porous/figures/morphology.csv",
    params:
        unit=config["porous"].get("pixel_unit", "um"),
    log:
        f"{RESULTS}/logs/porous/figure_morphology.log",
    script:
        "../scripts/figure_porous_morphology.py"
