"""The study's headline numbers in one generated table: one row per target of the four studies.

Every row has the value (the mean over the seeds it was measured on), its 95 % interval over
seeds (Student t; empty with fewer than two seeds), the number of seeds, the target as text
(``>= 0.9``, ``<= 0.02``, ``in [0.8, 1.2]``) and whether it is met, computed here: with three
or more seeds only when the interval's bound on the target's side meets it, otherwise by the
value. Rows without a target (reported numbers such as a KS statistic) leave ``met`` empty.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pandas as pd

from ..data.points import scored_vacancy_types
from ..errors import InputError
from ..io import atomic_path, save_table

COLUMNS = ["study", "quantity", "value", "ci_low", "ci_high", "n_seeds", "target", "met"]


def interval(
    values: list[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) of ``values`` over seeds: the Student-t interval of the mean; the
    bounds are NaN for fewer than two values."""
    from scipy import stats

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def target_met(target: str, value: float, low: float, high: float, n_seeds: int) -> bool | None:
    """Whether ``value`` meets ``target`` (``>= x``, ``<= x``, ``in [a, b]``); with three or more
    seeds the interval must: its low bound for ``>=``, its high bound for ``<=``, both for a
    range. ``None`` for an empty target."""
    if not target:
        return None
    use_interval = n_seeds >= 3 and np.isfinite(low) and np.isfinite(high)
    lo, hi = (low, high) if use_interval else (value, value)
    number = r"(-?[0-9.]+(?:e-?\d+)?)"
    if m := re.fullmatch(rf">=\s*{number}", target.strip()):
        return bool(lo >= float(m.group(1)))
    if m := re.fullmatch(rf"<=\s*{number}", target.strip()):
        return bool(hi <= float(m.group(1)))
    if m := re.fullmatch(rf"in \[\s*{number}\s*,\s*{number}\s*\]", target.strip()):
        return bool(lo >= float(m.group(1)) and hi <= float(m.group(2)))
    raise InputError(f"headline target {target!r}: use '>= x', '<= x' or 'in [a, b]'")


def row(
    study: str,
    quantity: str,
    values: list[float] | float,
    target: str = "",
    ci: tuple[float, float] | None = None,
    n_seeds: int | None = None,
) -> dict[str, Any]:
    """One headline row from per-seed ``values``, or from one value with its interval ``ci``
    over ``n_seeds`` (a difference of two mixes)."""
    values = np.atleast_1d(np.asarray(values, float))
    mean, low, high = interval(values)
    if ci is not None:
        low, high = ci
    n = int(np.isfinite(values).sum()) if n_seeds is None else n_seeds
    return {
        "study": study,
        "quantity": quantity,
        "value": mean,
        "ci_low": low,
        "ci_high": high,
        "n_seeds": n,
        "target": target,
        "met": target_met(target, mean, low, high, n),
    }


def difference(a: list[float], b: list[float]) -> tuple[float, tuple[float, float], int]:
    """mean(a) − mean(b) with a Welch 95 % interval (NaN with fewer than two values each)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, (float("nan"), float("nan")), min(len(a), len(b))
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    dof = se**4 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    half = float(stats.t.ppf(0.975, dof) * se)
    return diff, (diff - half, diff + half), min(len(a), len(b))


def _frames(paths: list[str | os.PathLike], **kw: Any) -> list[pd.DataFrame]:
    return [pd.read_csv(p, **kw) for p in paths]


# errors of a translation against the true slice (translation/summary.csv column, name)
TRANSLATION_ERRORS = (
    ("porosity_mae", "porosity MAE"),
    ("lambda_mean_rel_error", "λ relative error"),
    ("s2_rmse", "S2 RMSE"),
)


def porous_rows(
    distances: list[str | os.PathLike],
    translation: list[str | os.PathLike],
    compare: dict[str, float],
    targets: dict[str, Any],
    layout: list[str | os.PathLike] | None = None,
) -> list[dict[str, Any]]:
    """StyleGAN2 vs real SEM tiles (porosity, KS statistics, λ, diversity; with ``layout``, the
    share of the pore layout its latent sets) and the CycleGAN's translation against the true
    slice (porosity r; MAE, λ and S2 errors minus bicubic's)."""
    dist = [f.set_index(["dataset", "descriptor"]) for f in _frames(distances)]
    synth = "StyleGAN2-ADA"

    def of(descriptor: str, column: str) -> list[float]:
        return [float(f.loc[(synth, descriptor), column]) for f in dist]

    tol = compare["lambda_tolerance"]
    rows = [
        row(
            "porous",
            "StyleGAN2 mean porosity − real, absolute",
            np.abs(of("porosity", "mean_difference")),
            f"<= {compare['porosity_tolerance']}",
        )
    ]
    for descriptor, name in (
        ("porosity", "φ"),
        ("specific_surface_area", "specific surface area"),
        ("correlation_length", "λ"),
    ):
        rows.append(
            row(
                "porous",
                f"StyleGAN2 KS statistic of {name}",
                of(descriptor, "ks_statistic"),
                f"<= {targets['stylegan2_ks']}",
            )
        )
    rows.append(
        row(
            "porous",
            "StyleGAN2 mean λ / real",
            of("correlation_length", "mean_ratio"),
            f"in [{1 - tol:g}, {1 + tol:g}]",
        )
    )
    # rows of descriptors a comparison may lack (an older table): descriptor, its column (a
    # difference is taken absolute), the config key of its target (none: ""), whether the row
    # waits for the config to name that key (the share ratios), the target's form (a bound, a
    # factor either way, or a ratio within the key of 1) and the quantity's words
    optional = [
        ("power_spectrum", "max_abs_log_ratio", "spectrum_tolerance", False, "<=",
         "StyleGAN2 power spectrum: largest log10 ratio to real, absolute"),
        ("pore_grey", "wasserstein", "pore_grey_tolerance", False, "<=",
         "StyleGAN2 grey levels inside pores: Wasserstein distance to real"),
        ("pore_rim", "mean_difference", "pore_rim_tolerance", False, "<=",
         "StyleGAN2 pore rims (grey 1–3 px outside pores − far solid) − real, absolute"),
        ("pore_rim_specks", "mean_ratio", "rim_speck_ratio", True, "<=",
         "StyleGAN2 bright specks beside pores (near-pore solid over the far solid's 99th "
         "percentile) / real"),
        ("cracks", "mean_ratio", "crack_ratio", True, "factor",
         "StyleGAN2 tiles holding a crack (thin pore ≥ 14 px long) / real"),
        ("pore_circularity", "mean_ratio", "pore_circularity_tolerance", True, "about 1",
         "StyleGAN2 pore circularity (4πA/P², mean) / real"),
        ("detector_noise", "mean_ratio", "", False, "",
         "StyleGAN2 detector noise sd / real (median over tiles)"),
    ]  # fmt: skip
    for descriptor, column, key, when_configured, form, quantity in optional:
        if not any(descriptor in f.index.get_level_values("descriptor") for f in dist):
            continue
        if when_configured and key not in compare:
            continue
        values = of(descriptor, column)
        if column == "mean_difference":
            values = [abs(v) for v in values]
        target = ""
        if form == "<=":
            target = f"<= {compare[key]}"
        elif form == "factor":
            target = f"in [{1 / compare[key]:g}, {compare[key]:g}]"
        elif form == "about 1":
            target = f"in [{1 - compare[key]:g}, {1 + compare[key]:g}]"
        rows.append(row("porous", quantity, values, target))
    rows.append(
        row(
            "porous",
            "StyleGAN2 tile diversity / real",
            of("diversity", "mean_ratio"),
            f">= {compare['diversity_ratio']}",
        )
    )
    if layout:
        rows.append(
            row(
                "porous",
                "StyleGAN2 pore layout: share of its variance set by the latent",
                [float(f.latent_share.iloc[0]) for f in _frames(layout)],
                f">= {targets['stylegan2_latent_share']}",
            )
        )
    return rows + translation_rows(translation, targets)


def translation_rows(
    translation: list[str | os.PathLike], targets: dict[str, Any]
) -> list[dict[str, Any]]:
    """The porous CycleGAN against the true slice (porosity r; MAE, λ and S2 errors minus
    bicubic's) and, where it ran, the real-only ablation's differences."""
    rows: list[dict[str, Any]] = []
    trans = [f.set_index("method") for f in _frames(translation)]
    if trans:
        rows.append(
            row(
                "porous",
                "CycleGAN porosity Pearson r vs true slice",
                [float(f.loc["cyclegan", "porosity_pearson_r"]) for f in trans],
                f">= {targets['porosity_pearson_r']}",
            )
        )
        if "porosity_slope" in trans[0].columns:  # summaries written before it lack it
            tol = targets["porosity_slope_tolerance"]
            rows.append(
                row(
                    "porous",
                    "CycleGAN porosity slope vs true slice (1: tiles' differences kept)",
                    [float(f.loc["cyclegan", "porosity_slope"]) for f in trans],
                    f"in [{1 - tol:g}, {1 + tol:g}]",
                )
            )
        for column, name in TRANSLATION_ERRORS:
            rows.append(
                row(
                    "porous",
                    f"CycleGAN {name} minus bicubic's",
                    [float(f.loc["cyclegan", column] - f.loc["bicubic", column]) for f in trans],
                    "<= 0",
                )
            )
    if trans and "cyclegan_real_only" in trans[0].index:
        # the ablation: does training against StyleGAN2 tiles as well help? (no target)
        for column, name in (("porosity_pearson_r", "porosity r"), *TRANSLATION_ERRORS):
            rows.append(
                row(
                    "porous",
                    f"CycleGAN {name}: real + StyleGAN2 minus real-only",
                    [
                        float(f.loc["cyclegan", column] - f.loc["cyclegan_real_only", column])
                        for f in trans
                    ],
                )
            )
    return rows


def stem_rows(
    table1: list[str | os.PathLike],
    targets: dict[str, Any],
    robustness: list[str | os.PathLike] | None = None,
) -> list[dict[str, Any]]:
    """F1 on experimental images per training set, the CycleGAN − noiseless gap, and (from the
    robustness sweep) the CycleGAN-trained detector's worst F1 within the target range: dose
    down to a third of the default, source blur up to twice, row jitter up to 1 px."""
    tables = [f.set_index("training_set") for f in _frames(table1)]
    rows = []
    for name in tables[0].index:
        target = f">= {targets['stem_f1_cyclegan']}" if name == "cyclegan" else ""
        rows.append(
            row(
                "stem",
                f"F1 on experiment, trained on {name}",
                [float(f.loc[name, "f1"]) for f in tables],
                target,
            )
        )
    if {"cyclegan", "noiseless"} <= set(tables[0].index):
        rows.append(
            row(
                "stem",
                "F1 gap: CycleGAN − noiseless",
                [float(f.loc["cyclegan", "f1"] - f.loc["noiseless", "f1"]) for f in tables],
                f">= {targets['stem_f1_gap']}",
            )
        )
    types = scored_vacancy_types(tables[0].columns)
    for name in (n for n in tables[0].index if n.startswith("cyclegan") and types):
        for kind in types:  # beyond the paper: which defect it is, no target set
            rows.append(row("stem", f"F1 for {kind} (right place and type), trained on {name}",
                            [float(f.loc[name, f"f1_{kind}"]) for f in tables], ""))  # fmt: skip
        accuracy = [float(f.loc[name, "type_accuracy"]) for f in tables]
        if np.isfinite(accuracy).all():  # undefined where nothing was matched
            rows.append(row("stem", f"vacancy type accuracy of matched detections, {name}",
                            accuracy, ""))  # fmt: skip
    sweeps = _frames(robustness or [])
    for name in (n for n in (sweeps[0]["training_set"].unique() if sweeps else [])
                 if n.startswith("cyclegan")):  # fmt: skip
        rows.append(
            row(
                "stem",
                f"robustness: worst F1 ({name}) at ≥ 1/3 dose, ≤ 2× blur, ≤ 1 px jitter",
                [robust_worst_f1(f, name) for f in sweeps],
                f">= {targets['stem_robust_f1']}",
            )
        )
    return rows


def robust_worst_f1(sweep: pd.DataFrame, training_set: str) -> float:
    """The lowest F1 of one detector over the robustness target's range of conditions."""
    s = sweep[sweep["training_set"] == training_set]
    in_range = (
        ((s.condition == "dose") & (s.factor >= 0.33 - 1e-9))
        | ((s.condition == "source_blur") & (s.factor <= 2 + 1e-9))
        | ((s.condition == "row_jitter") & (s.value <= 1 + 1e-6))
    )
    return float(s[in_range]["f1"].min()) if in_range.any() else float("nan")


def polysilicon_rows(
    judge: list[str | os.PathLike], evaluation: list[str | os.PathLike], targets: dict[str, Any]
) -> list[dict[str, Any]]:
    """The CNN judge's held-out accuracy; per generator the judged class accuracy, the physics
    E11 error in real within-class σ and relative to guessing each map's real class-mean E11
    (≤ 1: the maps carry their E11 condition, not only their class), how far the grains'
    orientations are from uniformly random, and the grain count relative to the real images'."""
    rows = [
        row(
            "polysilicon",
            "CNN judge held-out class accuracy",
            [float(f["accuracy"].iloc[0]) for f in _frames(judge)],
            f">= {targets['judge_accuracy']}",
        )
    ]
    evals = [f.set_index("set") for f in _frames(evaluation)]
    tol = targets["grain_count_tolerance"]
    for name in [s for s in evals[0].index if s != "real"]:
        acc, mae = targets["generator_accuracy"], targets["generator_e11_mae_sigma"]
        rows.append(
            row(
                "polysilicon",
                f"{name} class accuracy (CNN judge)",
                [float(f.loc[name, "cnn_class_accuracy"]) for f in evals],
                f">= {acc[name]}" if name in acc else "",
            )
        )
        rows.append(
            row(
                "polysilicon",
                f"{name} physics E11 MAE / real σ",
                [float(f.loc[name, "physics_mae_over_real_std"]) for f in evals],
                f"<= {mae[name]}" if name in mae else "",
            )
        )
        for column, what, target in (
            ("physics_mae_over_class_mean_guess",
             "physics E11 MAE / that of guessing the class-mean E11", "e11_over_class_mean_guess"),
            ("orientation_w1_uniform",
             "grain orientations: W1 to uniform (period fraction)", "orientation_w1_uniform"),
        ):  # fmt: skip
            if column in evals[0]:  # absent from older runs
                values = [float(f.loc[name, column]) for f in evals]
                rows.append(row("polysilicon", f"{name} {what}", values,
                                f"<= {targets[target]:g}"))  # fmt: skip
        if "mean_grains_real_mix" in evals[0]:  # absent from summaries of older runs
            rows.append(
                row(
                    "polysilicon",
                    f"{name} grains per image / real, at the real class mix",
                    [_grains_per_image_ratio(f, name) for f in evals],
                    f"in [{1 - tol:g}, {1 + tol:g}]",
                )
            )
        # "every class within ±20 %" is a bound on each seed's largest deviation; a signed worst
        # ratio that lies above 1 on one seed and below on the next would average towards 1
        # and spread the interval over both sides
        for column, what in (("grains_ratio", "grain count"), ("area_ratio", "mean grain area")):
            if f"{column}_worst_class" in evals[0]:
                deviation = [abs(float(f.loc[name, f"{column}_worst_class"]) - 1) for f in evals]
                rows.append(row("polysilicon", f"{name} {what} / real: largest deviation from 1 "
                                "over classes", deviation, f"<= {tol:g}"))  # fmt: skip
        if "alignment_ratio_worst_class" in evals[0]:
            rows.append(
                row(
                    "polysilicon",
                    f"{name} axis-aligned boundary share (lattice) / real, worst class",
                    [float(f.loc[name, "alignment_ratio_worst_class"]) for f in evals],
                    f"<= {targets['boundary_alignment_ratio']:g}",
                )
            )
    return rows


def _grains_per_image_ratio(summary: pd.DataFrame, name: str) -> float:
    """Set ``name``'s grains per image over the real images', both at the real class mix."""
    column = summary["mean_grains_real_mix"]
    return float(column[name] / column["real"])


def segmentation_rows(
    checks: list[str | os.PathLike], runs: list[str | os.PathLike], targets: dict[str, Any]
) -> list[dict[str, Any]]:
    """VQ-VAE reconstruction and pair agreement (targets from the generator checks), and the
    customised mIoU of the best fewest-real + synthetic mix and of synthetic only, each minus
    the most-real real-only mix's, over the U-Net seeds. Where real-only mixes of one real
    count were trained for different budgets (a mix's ``epochs``), the comparison is with the
    best of them: on hand-drawn masks a longer budget can lower a real-only U-Net's score
    (docs/segmentation.md, twenty-first pass), and the baseline gets its best budget."""
    rows = []
    frames = [f.set_index("check") for f in _frames(checks)]
    for check, name in (
        ("vqvae_reconstruction_mask_miou",
         "VQ-VAE reconstruction mask mIoU (of what its codes encode)"),
        ("generated_mask_image_agreement_miou", "generated mask vs image agreement (mIoU)"),
        ("generated_over_real_agreement",
         "agreement: generated pairs / the real annotated pairs the generator saw"),
        ("phase_fraction_max_abs_difference",
         "generated masks: phase area fraction − real, largest absolute"),
        ("power_spectrum_max_abs_log10_ratio",
         "generated images: power spectrum, largest log10 ratio to real, absolute"),
        ("pore_aspect_ratio_generated_over_real", "generated pores: mean aspect ratio / real"),
        ("pore_equivalent_diameter_ks", "generated pores: KS statistic of equivalent diameter"),
        ("phase_interface_per_area_max_abs_ratio_minus_1",
         "generated masks: interface per phase area / real − 1 (between matrix and pores), "
         "largest absolute"),
    ):  # fmt: skip
        if check not in frames[0].index:  # tables written before the check existed
            continue
        target = frames[0].loc[check, "target"]
        rows.append(
            row(
                "segmentation",
                name,
                [float(f.loc[check, "value"]) for f in frames],
                str(target) if pd.notna(target) else "",
            )
        )
    frames = _frames(runs)
    all_runs = pd.concat(frames, ignore_index=True)
    if "exact_masks" not in all_runs:
        all_runs["exact_masks"] = False
    kind = all_runs.groupby("mix", sort=False)[["real", "synthetic_images", "exact_masks"]].first()
    ceiling = kind[kind.exact_masks.astype(bool)]
    kind = kind[~kind.exact_masks.astype(bool)]
    real_only = kind[(kind.synthetic_images == 0) & (kind.real > 0)]
    if real_only.empty:
        return rows
    compare = mix_comparison(frames)
    mean = all_runs.groupby("mix", sort=False)["miou_present"].mean()

    def best_of(names: pd.Index) -> str:
        return str(mean[names].idxmax())  # ties: the first named

    most = best_of(real_only.index[real_only["real"] == real_only["real"].max()])
    for name in ceiling.index:  # how far the annotated-label rows are from what a U-Net reaches
        label = f"{int(ceiling.loc[name, 'real'])} real, exact masks"
        rows.append(compare(f"customised mIoU: {name} ({label})", name))
        rows.append(compare(f"customised mIoU: {most} − {name}", most, name))
    fewest = kind[kind.real > 0]["real"].min()
    mixed = kind[(kind.real == fewest) & (kind.synthetic_images > 0)]
    if len(mixed):
        best = best_of(mixed.index)
        rows.append(compare(f"customised mIoU: best {fewest}-real + synthetic ({best}) − {most}",
                            best, most, ">= 0"))  # fmt: skip
        plain = real_only[real_only["real"] == fewest]
        if len(plain):  # what the synthetic pairs add at the fewest labels
            base = best_of(plain.index)
            rows.append(compare(f"customised mIoU: {best} − {base}", best, base, ">= 0"))
    synthetic = kind[kind.real == 0]
    if len(synthetic):
        only = synthetic.index[0]
        rows.append(compare(f"customised mIoU: synthetic only − {most}", only, most,
                            f">= {-targets['synthetic_only_gap']}"))  # fmt: skip
    return rows


def mix_comparison(frames: list[pd.DataFrame]) -> Any:
    """A function (quantity, mix[, other mix[, target]]) → headline row of the mix's customised
    mIoU, or of its difference to the other mix's.

    With one run table (one generator, ``make study``) the values are its U-Net seeds (a Welch
    interval for a difference). With several (``make seeds``: one per seed offset, each with its
    own generators) the unit is the offset: U-Net seeds that share a generator share its pairs,
    so they are averaged within an offset, a difference is taken within each offset (same
    generators, same test images) and the interval is over the offsets — n_seeds is their count,
    not the number of U-Nets."""

    # per mix: its mean over each offset's U-Nets (several offsets), or its U-Net seeds (one)
    per_offset = pd.concat(
        [f.groupby("mix", sort=False)["miou_present"].mean() for f in frames], axis=1
    )
    of = {m: g["miou_present"].to_numpy() for m, g in frames[0].groupby("mix", sort=False)}

    def compare(quantity: str, mix: str, other: str | None = None, target: str = "") -> dict:
        if len(frames) > 1:
            values = per_offset.loc[mix].to_numpy()
            if other is not None:
                values = values - per_offset.loc[other].to_numpy()
            return row("segmentation", quantity, values, target)
        if other is None:
            return row("segmentation", quantity, of[mix], target)
        diff, ci, n = difference(of[mix], of[other])
        return row("segmentation", quantity, [diff], target, ci, n)

    return compare


def headline_table(
    inputs: dict[str, list[str]],
    csv_out: str | os.PathLike,
    md_out: str | os.PathLike,
    *,
    compare: dict[str, float],
    targets: dict[str, Any],
) -> pd.DataFrame:
    """Write ``results/summary/headline.{csv,md}`` from the studies' tables (``inputs``: lists of
    per-seed files under ``distances``, ``translation``, ``table1``, ``judge``,
    ``evaluation``, ``checks``, ``runs``; a study whose files are absent is left out)."""

    def get(key: str) -> list[str]:
        return list(inputs.get(key, []))

    rows: list[dict[str, Any]] = []
    if get("distances"):
        rows += porous_rows(get("distances"), get("translation"), compare, targets, get("layout"))
    if get("table1"):
        rows += stem_rows(get("table1"), targets, get("robustness"))
    if get("evaluation"):
        rows += polysilicon_rows(get("judge"), get("evaluation"), targets)
    if get("runs"):
        rows += segmentation_rows(get("checks"), get("runs"), targets)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["met"] = table["met"].astype(object)
    save_table(csv_out, table)
    with atomic_path(md_out, suffix=".md") as tmp:
        tmp.write_text(headline_markdown(table))
    return table


def headline_markdown(table: pd.DataFrame) -> str:
    """The headline table as Markdown: value and interval to 3 significant digits."""

    def fmt(v: float) -> str:
        return "" if not np.isfinite(v) else f"{v:.3g}"

    lines = [
        "| study | quantity | value | 95 % interval | seeds | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table.itertuples():
        ci = f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]" if np.isfinite(r.ci_low) else ""
        met = {True: "yes", False: "**no**"}.get(r.met, "")
        lines.append(
            f"| {r.study} | {r.quantity} | {fmt(r.value)} | {ci} | {r.n_seeds} | "
            f"{r.target} | {met} |"
        )
    return "\n".join(lines) + "\n"
