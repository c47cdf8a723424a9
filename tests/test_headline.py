"""The headline table: intervals over seeds, targets met by the right bound, rows per study."""

import numpy as np
import pandas as pd
import pytest

from matgen.errors import InputError
from matgen.pipeline.headline import (
    difference,
    headline_table,
    interval,
    porous_rows,
    target_met,
    translation_rows,
)

TARGETS = {
    "porosity_pearson_r": 0.9,
    "porosity_slope_tolerance": 0.25,
    "stem_f1_cyclegan": 0.8,
    "stem_f1_gap": 0.3,
    "judge_accuracy": 0.9,
    "generator_accuracy": {"cGAN": 0.9},
    "generator_e11_mae_sigma": {"cGAN": 1.0},
    "grain_count_tolerance": 0.2,
    "e11_over_class_mean_guess": 1.0,
    "orientation_w1_uniform": 0.02,
    "boundary_alignment_ratio": 1.3,
    "synthetic_only_gap": 0.05,
}


def test_interval_is_the_student_t_interval_of_the_mean():
    mean, low, high = interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027, sd 1, n 3: half width 4.3027 / sqrt(3) = 2.4842
    assert mean == 2.0 and low == pytest.approx(2 - 2.4842, abs=1e-4)
    assert high == pytest.approx(2 + 2.4842, abs=1e-4)
    assert np.isnan(interval([5.0])[1])


def test_a_target_counts_as_met_by_the_bound_on_its_side_with_three_seeds():
    assert target_met(">= 0.8", 0.85, 0.75, 0.95, n_seeds=3) is False  # low bound below
    assert target_met(">= 0.8", 0.85, 0.75, 0.95, n_seeds=1) is True  # one seed: the value
    assert target_met("<= 0.02", 0.01, 0.0, 0.03, n_seeds=5) is False
    assert target_met("in [0.8, 1.2]", 1.0, 0.85, 1.1, n_seeds=3) is True
    assert target_met("in [0.8, 1.2]", 1.0, 0.7, 1.1, n_seeds=3) is False
    assert target_met("", 1.0, 0.0, 2.0, n_seeds=3) is None
    with pytest.raises(InputError, match="headline target"):
        target_met("about 3", 1.0, 0.0, 2.0, 1)


def test_difference_has_a_welch_interval():
    diff, (low, high), n = difference([0.80, 0.82, 0.84], [0.70, 0.71, 0.72])
    assert diff == pytest.approx(0.11) and n == 3 and low < 0.11 < high
    assert low > 0  # clearly apart


def _write(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_headline_rows_from_the_studies_tables(tmp_path):
    stem = _write(
        tmp_path / "t1.csv",
        [{"training_set": "noiseless", "f1": 0.1}, {"training_set": "cyclegan", "f1": 0.9}],
    )
    judge = _write(tmp_path / "judge.csv", [{"accuracy": 0.95}])
    evaluation = _write(
        tmp_path / "eval.csv",
        [
            {
                "set": "real",
                "cnn_class_accuracy": 0.95,
                "physics_mae_over_real_std": 0.05,
                "physics_mae_over_class_mean_guess": 0.1,
                "mean_grains": 40.0,
                "mean_grains_real_mix": 40.0,
                "grains_ratio_worst_class": 1.0,
                "area_ratio_worst_class": 1.0,
                "alignment_ratio_worst_class": 1.0,
            },
            {
                "set": "cGAN",
                "cnn_class_accuracy": 0.92,
                "physics_mae_over_real_std": 1.3,
                "physics_mae_over_class_mean_guess": 1.6,  # worse than ignoring its E11
                "mean_grains": 36.0,  # its own class mix: not what the row compares
                "mean_grains_real_mix": 30.0,
                "grains_ratio_worst_class": 0.85,
                "area_ratio_worst_class": 1.3,
                "alignment_ratio_worst_class": 1.25,
            },
        ],
    )
    checks = _write(
        tmp_path / "checks.csv",
        [
            {"check": "vqvae_reconstruction_mask_miou", "value": 0.95, "target": ">= 0.9"},
            {"check": "generated_mask_image_agreement_miou", "value": 0.6, "target": ">= 0.7"},
            {"check": "power_spectrum_max_abs_log10_ratio", "value": 0.1, "target": "<= 0.2"},
            {
                "check": "pore_aspect_ratio_generated_over_real",
                "value": 0.8,
                "target": "in [0.9, 1.1]",
            },
            {"check": "pore_circularity_real", "value": 0.98, "target": ""},
        ],
    )
    runs = _write(
        tmp_path / "runs.csv",
        [
            *(
                {"mix": "real8", "seed": s, "real": 8, "synthetic_images": 0, "miou_present": v}
                for s, v in enumerate([0.80, 0.81, 0.82])
            ),
            *(
                {"mix": "real2", "seed": s, "real": 2, "synthetic_images": 0, "miou_present": v}
                for s, v in enumerate([0.70, 0.71, 0.72])
            ),
            # the same real images at another budget, one better (real2) and one worse (real8)
            *(
                {
                    "mix": "real2_short",
                    "seed": s,
                    "real": 2,
                    "synthetic_images": 0,
                    "miou_present": v,
                }
                for s, v in enumerate([0.74, 0.73, 0.78])
            ),
            *(
                {
                    "mix": "real8_long",
                    "seed": s,
                    "real": 8,
                    "synthetic_images": 0,
                    "miou_present": v,
                }
                for s, v in enumerate([0.70, 0.70, 0.70])
            ),
            *(
                {
                    "mix": "real2_syn5x",
                    "seed": s,
                    "real": 2,
                    "synthetic_images": 10,
                    "miou_present": v,
                }
                for s, v in enumerate([0.83, 0.84, 0.85])
            ),
            *(
                {
                    "mix": "synthetic_only",
                    "seed": s,
                    "real": 0,
                    "synthetic_images": 80,
                    "miou_present": v,
                }
                for s, v in enumerate([0.60, 0.61, 0.62])
            ),
        ],
    )
    table = headline_table(
        {
            "table1": [stem],
            "judge": [judge],
            "evaluation": [evaluation],
            "checks": [checks],
            "runs": [runs],
        },
        tmp_path / "h.csv",
        tmp_path / "h.md",
        compare={},
        targets=TARGETS,
    )
    by = table.set_index("quantity")
    assert by.loc["F1 gap: CycleGAN − noiseless", "value"] == pytest.approx(0.8)
    assert by.loc["F1 gap: CycleGAN − noiseless", "met"] is True
    assert by.loc["cGAN physics E11 MAE / real σ", "met"] is False  # 1.3 > 1.0
    guess = by.loc["cGAN physics E11 MAE / that of guessing the class-mean E11"]
    assert guess["value"] == pytest.approx(1.6) and guess["target"] == "<= 1"
    assert guess["met"] is False
    grains = "cGAN grains per image / real, at the real class mix"
    assert by.loc[grains, "value"] == pytest.approx(0.75)
    assert by.loc[grains, "target"] == "in [0.8, 1.2]" and by.loc[grains, "met"] is False
    # every class within ±20 %: the worst class's deviation, whichever side it lies on
    count = "cGAN grain count / real: largest deviation from 1 over classes"
    area = "cGAN mean grain area / real: largest deviation from 1 over classes"
    assert by.loc[count, "value"] == pytest.approx(0.15) and by.loc[count, "met"] is True
    assert by.loc[area, "value"] == pytest.approx(0.3) and by.loc[area, "met"] is False
    assert by.loc[count, "target"] == "<= 0.2"
    lattice = "cGAN axis-aligned boundary share (lattice) / real, worst class"
    assert by.loc[lattice, "value"] == 1.25 and by.loc[lattice, "met"] is True
    assert by.loc["generated mask vs image agreement (mIoU)", "met"] is False
    spectrum = "generated images: power spectrum, largest log10 ratio to real, absolute"
    assert by.loc[spectrum, "target"] == "<= 0.2" and by.loc[spectrum, "met"] is True
    assert by.loc["generated pores: mean aspect ratio / real", "met"] is False
    assert "generated pores: KS statistic of equivalent diameter" not in by.index  # not in table
    best = by.loc["customised mIoU: best 2-real + synthetic (real2_syn5x) − real8"]
    assert best["value"] == pytest.approx(0.03) and best["n_seeds"] == 3
    assert best["ci_low"] > 0 and best["met"] is True
    # the fewest-real baseline is the better of its two budgets
    gain = by.loc["customised mIoU: real2_syn5x − real2_short"]
    assert gain["value"] == pytest.approx(0.84 - 0.75)
    assert "customised mIoU: real2_syn5x − real2" not in by.index
    only = by.loc["customised mIoU: synthetic only − real8"]
    assert only["value"] == pytest.approx(-0.2) and only["met"] is False
    md = (tmp_path / "h.md").read_text().splitlines()
    assert len(md) == len(table) + 2 and all(line.count("|") == 8 for line in md)
    assert pd.read_csv(tmp_path / "h.csv").shape == table.shape


def test_a_translation_that_pulls_every_tile_to_one_porosity_misses_the_slope_row(tmp_path):
    # well correlated with the truth (r 0.95) but with 0.6x its porosity differences
    paths = [
        _write(
            tmp_path / f"translation{i}.csv",
            [
                {
                    "method": "cyclegan",
                    "porosity_pearson_r": 0.95,
                    "porosity_slope": slope,
                    "porosity_mae": 0.02,
                    "lambda_mean_rel_error": 0.1,
                    "s2_rmse": 0.03,
                },
                {
                    "method": "bicubic",
                    "porosity_pearson_r": 0.92,
                    "porosity_slope": 1.2,
                    "porosity_mae": 0.04,
                    "lambda_mean_rel_error": 0.4,
                    "s2_rmse": 0.08,
                },
            ],
        )  # fmt: skip
        for i, slope in enumerate([0.58, 0.60, 0.62])
    ]
    by = pd.DataFrame(translation_rows(paths, TARGETS)).set_index("quantity")
    slope = by.loc["CycleGAN porosity slope vs true slice (1: tiles' differences kept)"]
    assert slope["value"] == pytest.approx(0.6) and slope["target"] == "in [0.75, 1.25]"
    assert not slope["met"] and slope["n_seeds"] == 3
    assert by.loc["CycleGAN porosity Pearson r vs true slice", "met"]
    assert by.loc["CycleGAN porosity MAE minus bicubic's", "value"] == pytest.approx(-0.02)


def test_readme_blocks_are_replaced_by_the_run_s_table_and_thumbnails(tmp_path):
    from PIL import Image

    from matgen.pipeline.readme import update_readme

    results = tmp_path / "results"
    (results / "summary").mkdir(parents=True)
    (results / "summary/headline.md").write_text("| a | b |\n| --- | --- |\n| 1 | 2 |\n")
    (results / "stem/figures").mkdir(parents=True)
    Image.new("RGB", (1000, 500), "white").save(results / "stem/figures/table1.png")
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- thumbnails:start -->\nold\n<!-- thumbnails:end -->\n"
        "<!-- headline:start -->\nstale | 9 |\n<!-- headline:end -->\nend\n"
    )
    update_readme(results, readme, tmp_path / "docs/img", width=200)
    text = readme.read_text()
    assert "stale" not in text and "old" not in text and "| 1 | 2 |" in text
    assert text.startswith("intro\n") and text.endswith("end\n")
    thumb = tmp_path / "docs/img/table1_stem.png"
    assert Image.open(thumb).size == (400, 200)  # twice the width it is shown at
    assert 'src="docs/img/table1_stem.png"' in text
    # after `make seeds`: its table is preferred, and the thumbnails are its offset 0's
    (results / "seeds/summary").mkdir(parents=True)
    (results / "seeds/summary/headline.md").write_text("| a | b |\n| --- | --- |\n| 3 | 4 |\n")
    (results / "seeds/seed0/stem/figures").mkdir(parents=True)
    Image.new("RGB", (1000, 1000), "black").save(results / "seeds/seed0/stem/figures/table1.png")
    update_readme(results, readme, tmp_path / "docs/img", width=200)
    text = readme.read_text()
    assert "| 3 | 4 |" in text and "`make seeds`" in text and "| 1 | 2 |" not in text
    assert 'src="docs/img/table1_stem.png"' in text
    assert Image.open(thumb).size == (400, 400) and Image.open(thumb).getpixel((0, 0)) == (0, 0, 0)
    readme.write_text("no blocks\n")
    with pytest.raises(InputError, match="no <!-- headline:start -->"):
        update_readme(results, readme, tmp_path / "docs/img")


def test_config_for_seed_moves_every_model_seed_and_keeps_the_data():
    import copy

    import yaml
    from helpers import TINY

    from matgen.config import SEED_STRIDE, config_for_seed

    base = copy.deepcopy(TINY)
    base["seeds"] = {"offsets": [0, 2], "results": "results/seeds"}
    same = config_for_seed(base, 0, "results/seeds/seed0")
    assert "seeds" not in same and same["results"] == "results/seeds/seed0"
    assert {k: v for k, v in same.items() if k != "results"} == {
        k: v for k, v in TINY.items() if k != "results"
    }  # offset 0 is the plain run
    moved = config_for_seed(base, 2, "results/seeds/seed2")
    shift = 2 * SEED_STRIDE
    assert moved["porous"]["stylegan2"]["seed"] == TINY["porous"]["stylegan2"]["seed"] + shift
    assert moved["stem"]["detector"]["seed"] == TINY["stem"]["detector"]["seed"] + shift
    assert moved["segmentation"]["seeds"] == [s + shift for s in TINY["segmentation"]["seeds"]]
    # the data, its tiling and the held-out split stay: every seed sees the same images
    for study, section in (("porous", "simulate"), ("porous", "tile"), ("segmentation", "split")):
        assert moved[study][section] == TINY[study][section]
    assert yaml.safe_load(yaml.safe_dump(moved)) == moved


def test_mix_differences_over_seed_offsets_are_paired_and_counted_by_offset():
    from matgen.pipeline.headline import mix_comparison

    def offset(shift, noise):
        rows = []
        for mix, base in (("real2", 0.70), ("real2_syn10x", 0.73)):
            rows += [dict(mix=mix, seed=s, miou_present=base + shift + noise * s) for s in range(3)]
        return pd.DataFrame(rows)

    # three generators (offsets) that move both mixes together: the paired difference is 0.03
    # on each, so the interval is tight, and it counts 3 offsets, not 9 U-Nets
    compare = mix_comparison([offset(0.0, 0.001), offset(0.05, 0.001), offset(-0.04, 0.001)])
    r = compare("gain", "real2_syn10x", "real2", ">= 0")
    assert r["n_seeds"] == 3 and r["value"] == pytest.approx(0.03)
    assert r["ci_high"] - r["ci_low"] < 1e-9 and r["met"] is True
    # a gain on one generator only: the offsets' spread decides, however tight each offset is
    frames = [offset(0.0, 0.0), offset(0.0, 0.0), offset(0.0, 0.0)]
    frames[2].loc[frames[2].mix == "real2_syn10x", "miou_present"] -= 0.06
    r = mix_comparison(frames)("gain", "real2_syn10x", "real2", ">= 0")
    assert r["n_seeds"] == 3 and r["value"] == pytest.approx(0.01)
    assert r["ci_low"] < 0 and r["met"] is False
    # one offset (make study): the U-Net seeds, a Welch interval
    r = mix_comparison([offset(0.0, 0.001)])("gain", "real2_syn10x", "real2", ">= 0")
    assert r["n_seeds"] == 3 and r["ci_low"] > 0 and r["met"] is True


def test_porous_rows_carry_the_bright_specks_beside_pores_and_the_cracks(tmp_path):
    paths = []
    for seed, (specks, cracks) in enumerate([(1.2, 0.0), (1.5, 0.02), (1.3, 0.01)]):
        rows = [
            ("porosity", {"mean_difference": 0.002, "ks_statistic": 0.05}),
            ("specific_surface_area", {"ks_statistic": 0.1}),
            ("correlation_length", {"ks_statistic": 0.1, "mean_ratio": 1.0}),
            ("diversity", {"mean_ratio": 0.95}),
            ("pore_rim_specks", {"mean_ratio": specks}),
            ("cracks", {"mean_ratio": cracks}),
            ("pore_circularity", {"mean_ratio": 1.08 - cracks}),
        ]
        frame = pd.DataFrame([{"dataset": "StyleGAN2-ADA", "descriptor": d, **v} for d, v in rows])
        paths.append(_write(tmp_path / f"d{seed}.csv", frame.to_dict("records")))
    compare = {"porosity_tolerance": 0.01, "lambda_tolerance": 0.2, "diversity_ratio": 0.9}
    targets = {**TARGETS, "stylegan2_ks": 0.15}
    ratios = {"rim_speck_ratio": 2.0, "crack_ratio": 2.0, "pore_circularity_tolerance": 0.05}
    by = pd.DataFrame(porous_rows(paths, [], {**compare, **ratios}, targets))
    row = by[by.quantity.str.startswith("StyleGAN2 bright specks")].iloc[0]
    assert row.value == pytest.approx(4.0 / 3) and row.target == "<= 2.0" and row.met
    row = by[by.quantity.str.startswith("StyleGAN2 tiles holding a crack")].iloc[0]
    assert row.value == pytest.approx(0.01) and row.target == "in [0.5, 2]" and not row.met
    row = by[by.quantity.str.startswith("StyleGAN2 pore circularity")].iloc[0]
    assert row.value == pytest.approx(1.07) and row.target == "in [0.95, 1.05]" and not row.met
    without = pd.DataFrame(porous_rows(paths, [], compare, targets))  # no target configured
    assert not without.quantity.str.startswith("StyleGAN2 bright specks").any()
    assert not without.quantity.str.startswith("StyleGAN2 tiles holding a crack").any()
    assert not without.quantity.str.startswith("StyleGAN2 pore circularity").any()
