from matgen.figures.porous import stylegan2_samples_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
m = sm.params.morphology
run_stage(sm, stylegan2_samples_figure, checkpoint=sm.input.model, real_tiles=sm.input.real,
          png_out=sm.output.png, csv_out=sm.output.csv, seed=sm.params.seed,
          threshold=m["threshold"], smooth_sigma=m["smooth_sigma"])
