"""How far a vacancy detector holds when the microscope has a different day.

One experimental condition at a time is moved away from the study's default (the others stay
at theirs), fresh held-out images with known vacancies are simulated at each level by the
embedded simulator, and every detector is scored on the same images. A detector that learned
one day at one microscope loses recall as the dose drops or the probe widens; one that learned
what a missing Se column looks like does not.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..data.points import normalise_percentile
from ..errors import InputError
from ..io import save_table
from ..metrics.detection import find_peaks, inside, match_points, precision_recall_f1
from ..synth.stem import simulate_image
from ..util import progress, select_device

# condition -> (what it scales in the simulator's settings, unit of its value)
CONDITIONS = {
    "dose": ("counts_per_pixel", "counts / px"),
    "source_blur": ("source_fwhm", "Å FWHM"),
    "row_jitter": ("jitter_rms", "px rms"),
    "background": ("background", "rms / mean signal"),
    "contamination": ("contamination", "coverage"),
}


def condition_settings(
    simulate: dict[str, Any], condition: str, factor: float
) -> tuple[dict[str, Any], float]:
    """The simulator's settings (``stem.simulate`` of the config) with one condition scaled by
    ``factor`` (1 = the default), and that condition's value in its unit (row jitter in
    pixels)."""
    if condition not in CONDITIONS:
        raise InputError(f"unknown condition {condition!r} (use {', '.join(CONDITIONS)})")
    settings = {k: v for k, v in simulate.items() if k not in ("seed", "n_sim", "n_exp",
                                                              "n_exp_test")}  # fmt: skip
    exp = dict(settings.pop("exp"))
    key, _ = CONDITIONS[condition]
    if key == "source_fwhm":
        settings[key] = float(settings.get(key, 0.6)) * factor
        value = settings[key]
    else:
        exp[key] = float(exp[key]) * factor
        value = exp[key] / settings["pixel_size"] if key == "jitter_rms" else exp[key]
    return {**settings, "exp": exp}, float(value)


def simulate_condition(
    settings: dict[str, Any], n_images: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n_images`` experiment-like images (normalised as ingest does) and their vacancies
    (x, y) in pixels. Image i draws from (``seed``, i), its lattice and vacancies first: every
    level of a sweep shows the same structures, only the microscope's day differs."""
    exp = dict(settings["exp"])
    counts = float(exp.pop("counts_per_pixel"))
    optics = dict(
        kv=settings.get("kv", 80.0),
        aperture_mrad=settings.get("aperture_mrad", 25.0),
        source_fwhm=settings.get("source_fwhm", 0.6),
        vacancy_probability=settings["vacancy_probability"],
        double_se_probability=settings.get("double_se_probability", 0.0),
        w_vacancy_probability=settings.get("w_vacancy_probability", 0.0),
        defocus=tuple(exp.pop("defocus", settings.get("defocus", (-20.0, 20.0)))),
        cs_um=tuple(exp.pop("cs_um", settings.get("cs_um", (0.0, 10.0)))),
    )
    images, truths = [], []
    for i in range(n_images):
        rng = np.random.default_rng([seed, i])
        image, vac, _ = simulate_image(
            settings["size"], settings["pixel_size"], rng, counts_per_pixel=counts, degrade=exp,
            **optics,
        )  # fmt: skip
        images.append(normalise_percentile(image))
        truths.append(vac[["x_px", "y_px"]].to_numpy(float))
    return images, truths


def robustness_sweep(
    detectors: dict[str, str | os.PathLike],
    table_out: str | os.PathLike,
    *,
    simulate: dict[str, Any],
    sweep: dict[str, list[float]],
    n_images: int = 3,
    seed: int = 0,
    detect: dict[str, Any] | None = None,
    threshold: float | None = None,
    tolerance_angstrom: float = 1.0,
    border_angstrom: float = 2.0,
    pixel_size: float | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """Precision, recall and F1 of each detector (name → model file) against each condition.

    ``sweep`` maps a condition of :data:`CONDITIONS` to the factors of its default to try (1
    is the study's own experimental setting). Every level gets ``n_images`` new simulated
    images of the same structures (paired: only the condition changes; the same images for
    every detector), scored as Table 1 is (``threshold``, None for each detector's calibrated
    one; ``tolerance_angstrom``, ``border_angstrom``; ``detect``: the detection settings). One
    row per condition, factor and detector: value in the condition's unit, the threshold used,
    counts and scores.
    ``pixel_size``: render at this Å/px (the detectors'), instead of the simulation's own.
    """
    from ..inference.detector import load_vacancy_detector
    from .stem import vacancy_probability

    detect = dict(detect or {})
    dev = str(select_device(device))
    models = {name: load_vacancy_detector(path, dev) for name, path in detectors.items()}
    if pixel_size is not None:
        simulate = {**simulate, "pixel_size": float(pixel_size)}
    px = float(simulate["pixel_size"])
    for name, detector in models.items():
        if abs(detector.pixel_size - px) > 1e-6 * px:
            raise InputError(
                f"{detectors[name]}: trained at {detector.pixel_size} Å/px, images at {px}"
            )
    levels = [(c, float(f)) for c, factors in sweep.items() for f in factors]
    distance = max(1, round(detect.get("min_distance_angstrom", 1.0) / px))
    cut = {n: d.threshold if threshold is None else threshold for n, d in models.items()}
    rows = []
    for condition, factor in progress(levels, "conditions", len(levels)):
        settings, value = condition_settings(simulate, condition, factor)
        images, truths = simulate_condition(settings, n_images, seed)
        shape = images[0].shape
        truths = [t[inside(t, shape, border_angstrom / px)] for t in truths]
        for name, (model, *_) in models.items():
            lowest = max(cut[name], detect.get("min_threshold", 0.05))
            tp = fp = fn = 0
            for image, true in zip(images, truths):
                prob = vacancy_probability(
                    model, image, tile=detect.get("tile", 128), overlap=detect.get("overlap", 32),
                    tta=detect.get("tta", True),
                )  # fmt: skip
                xy, _ = find_peaks(prob, lowest, distance)
                xy = xy[inside(xy, shape, border_angstrom / px)]
                m = match_points(xy, true, tolerance_angstrom / px)
                tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
            precision, recall, f1 = precision_recall_f1((tp, fp, fn))
            rows.append(dict(condition=condition, factor=factor, value=value,
                             unit=CONDITIONS[condition][1], default=factor == 1.0,
                             training_set=name, threshold=cut[name], precision=precision,
                             recall=recall, f1=f1,
                             tp=tp, fp=fp, fn=fn, n_images=n_images))  # fmt: skip
    table = pd.DataFrame(rows)
    save_table(table_out, table)
    return table


def merge_robustness_tables(
    tables: dict[str, str | os.PathLike], table_out: str | os.PathLike
) -> pd.DataFrame:
    """One robustness table from the sweeps of one detector each (training-set name → CSV of
    :func:`robustness_sweep`, all over the same conditions and factors), in the order a joint
    sweep writes: level by level, the detectors in the order given."""
    frames = []
    for order, (name, path) in enumerate(tables.items()):
        frame = pd.read_csv(path)
        if set(frame["training_set"]) != {name}:
            raise InputError(f"{path}: rows of {sorted(set(frame['training_set']))}, not {name!r}")
        frames.append(frame.assign(_level=np.arange(len(frame)), _order=order))
    levels = [tuple(f[["condition", "factor"]].itertuples(index=False)) for f in frames]
    if any(lv != levels[0] for lv in levels):
        raise InputError(f"{', '.join(map(str, tables.values()))}: sweeps over different levels")
    table = pd.concat(frames).sort_values(["_level", "_order"], kind="stable")
    table = table.drop(columns=["_level", "_order"]).reset_index(drop=True)
    save_table(table_out, table)
    return table
