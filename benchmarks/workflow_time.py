"""Where a study run's time went: CPU seconds per study and job.

Run after ``make study`` or ``make seeds``: ``python benchmarks/workflow_time.py [results]
[--cores 2]``. Reads the CPU seconds each stage recorded in its provenance
(:func:`matgen.provenance.job_times`; one set per seed directory of ``make seeds``) and prints,
per study, the jobs, their CPU seconds (what the job's threads used: on a busy machine wall
seconds stretch, CPU seconds do not), the largest jobs and two lower bounds on the study's wall
time with ``--cores`` cores: its CPU seconds spread over every core, and its longest job's CPU
seconds over that job's threads. Results written before stages recorded their CPU seconds fall
back on Snakemake's ``benchmarks/<study>/<rule>.tsv``, whose CPU column is sampled every 30 s
after a job's first 15: it misses up to 30 s of every job (a 40-s U-Net job read 15 s), so
those bounds come out low. Never a test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from matgen.provenance import job_times


def benchmark_table(results: Path) -> pd.DataFrame:
    """Snakemake's view, for runs without CPU seconds in their provenance: one row per
    benchmarked job (run, study, stage = the benchmark file's name, one thread, wall and the
    sampled CPU seconds)."""
    rows = []
    for tsv in sorted(results.rglob("benchmarks/*/*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        if frame.empty:
            continue
        run = tsv.parent.parent.parent
        rows.append(
            {
                "run": str(run.relative_to(results)),
                "study": tsv.parent.name,
                "stage": tsv.stem,
                "job": tsv.stem,
                "threads": 1,
                "wall_s": float(frame["s"].iloc[-1]),
                "cpu_s": float(frame["cpu_time"].iloc[-1]),
            }
        )
    return pd.DataFrame(
        rows, columns=["run", "study", "stage", "job", "threads", "wall_s", "cpu_s"]
    )


def study_lines(jobs: pd.DataFrame, cores: int) -> pd.DataFrame:
    """Per study of one run: jobs, CPU seconds, the two lower bounds (min) and the largest jobs."""
    lines = []
    for study, g in jobs.groupby("study"):
        top = g.nlargest(3, "cpu_s")
        lines.append(
            {
                "study": study,
                "jobs": len(g),
                "cpu_s": round(g.cpu_s.sum()),
                f"min on {cores} cores, spread": round(g.cpu_s.sum() / cores / 60, 1),
                "longest job, min": round((g.cpu_s / g.threads.clip(upper=cores)).max() / 60, 1),
                "largest jobs (CPU-s)": ", ".join(
                    f"{r.stage} {r.job} {r.cpu_s:.0f}"
                    if r.job != r.stage
                    else f"{r.stage} {r.cpu_s:.0f}"
                    for r in top.itertuples()
                ),
            }
        )
    return pd.DataFrame(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    results = Path(args.results)
    jobs, source = job_times(results), "provenance"
    if jobs.empty:
        jobs, source = benchmark_table(results), "Snakemake's benchmarks (sampled: low)"
    if jobs.empty:
        raise SystemExit(f"error: {args.results}: no stage provenance or benchmark files found")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 120)
    for run, of_run in jobs.groupby("run"):
        print(f"\n{run}: {len(of_run)} jobs, {of_run.cpu_s.sum():.0f} CPU-s (from {source})")
        print(study_lines(of_run, args.cores).to_string(index=False))
        total = of_run.cpu_s.sum() / args.cores / 60
        print(f"all studies: at least {total:.1f} min on {args.cores} cores (+ install, start-up)")


if __name__ == "__main__":
    main()
