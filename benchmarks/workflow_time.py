"""Where a study run's time went: CPU seconds per study and rule from Snakemake's benchmark files.

Run after ``make study`` or ``make seeds``: ``python benchmarks/workflow_time.py [results]
[--cores 2]``. Reads every ``benchmarks/<study>/<rule>.tsv`` under ``results`` (one set per seed
directory of ``make seeds``) and prints, per study, the jobs, their CPU seconds (what the rule's
process used: on a busy machine wall seconds stretch, CPU seconds do not), the largest rules and
two lower bounds on the study's wall time with ``--cores`` cores: its CPU seconds spread over
every core, and its longest single job (each rule runs on one thread). Never a test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def benchmark_table(results: Path) -> pd.DataFrame:
    """One row per benchmarked job: run (the results directory it belongs to), study, rule,
    wall and CPU seconds."""
    rows = []
    for tsv in sorted(results.rglob("benchmarks/*/*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        if frame.empty:
            continue
        run = tsv.parent.parent.parent
        rows.append(
            {
                "run": str(run.relative_to(results)) if run != results else ".",
                "study": tsv.parent.name,
                "rule": tsv.stem,
                "wall_s": float(frame["s"].iloc[-1]),
                "cpu_s": float(frame["cpu_time"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["run", "study", "rule", "wall_s", "cpu_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    jobs = benchmark_table(Path(args.results))
    if jobs.empty:
        raise SystemExit(f"error: {args.results}: no benchmarks/<study>/<rule>.tsv found")
    pd.set_option("display.width", 160)
    for run, of_run in jobs.groupby("run"):
        print(f"\n{run}: {len(of_run)} benchmarked jobs, {of_run.cpu_s.sum():.0f} CPU-s")
        lines = []
        for study, g in of_run.groupby("study"):
            top = g.nlargest(3, "cpu_s")
            lines.append(
                {
                    "study": study,
                    "jobs": len(g),
                    "cpu_s": round(g.cpu_s.sum()),
                    f"min on {args.cores} cores, spread": round(g.cpu_s.sum() / args.cores / 60, 1),
                    "longest job, min": round(g.cpu_s.max() / 60, 1),
                    "largest rules (CPU-s)": ", ".join(
                        f"{r.rule} {r.cpu_s:.0f}" for r in top.itertuples()
                    ),
                }
            )
        table = pd.DataFrame(lines)
        print(table.to_string(index=False))
        total = of_run.cpu_s.sum() / args.cores / 60
        print(f"all studies: at least {total:.1f} min on {args.cores} cores (+ install, overheads)")


if __name__ == "__main__":
    main()
