"""The STEM robustness sweep: one experimental condition at a time, every detector on the same
new images."""

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import ndimage

from matgen.errors import InputError
from matgen.pipeline.headline import robust_worst_f1
from matgen.pipeline.robustness import (
    condition_settings,
    merge_robustness_tables,
    robustness_sweep,
    simulate_condition,
)

SIMULATE = yaml.safe_load(
    """
    seed: 1
    n_sim: 1
    n_exp: 1
    n_exp_test: 1
    size: 64
    pixel_size: 0.2
    vacancy_probability: 0.1
    source_fwhm: 0.6
    exp: {counts_per_pixel: 20, shear: 0.02, jitter_rms: 0.15, jitter_correlation: 0.5,
          background: 0.15, contamination: 0.08, contamination_signal: 0.8, readout_rms: 2.0,
          readout_length_px: 1.5}
    """
)


def test_each_condition_scales_one_setting_of_the_simulator():
    dose, value = condition_settings(SIMULATE, "dose", 0.5)
    assert dose["exp"]["counts_per_pixel"] == 10 and value == 10
    assert dose["exp"]["jitter_rms"] == 0.15 and dose["source_fwhm"] == 0.6  # the others stay
    blur, value = condition_settings(SIMULATE, "source_blur", 2.0)
    assert blur["source_fwhm"] == pytest.approx(1.2) and value == pytest.approx(1.2)
    _, jitter_px = condition_settings(SIMULATE, "row_jitter", 1.0)
    assert jitter_px == pytest.approx(0.75)  # 0.15 Å at 0.2 Å/px
    assert SIMULATE["exp"]["counts_per_pixel"] == 20  # the config is not touched
    with pytest.raises(InputError, match="unknown condition 'focus'"):
        condition_settings(SIMULATE, "focus", 1.0)


def test_a_lower_dose_gives_noisier_images_of_the_same_lattice():
    def noise(images):
        return np.mean([np.std(im - ndimage.gaussian_filter(im, 1.0)) for im in images])

    high, truth_high = simulate_condition(condition_settings(SIMULATE, "dose", 4.0)[0], 2, 5)
    low, truth_low = simulate_condition(condition_settings(SIMULATE, "dose", 0.25)[0], 2, 5)
    assert noise(low) > 1.5 * noise(high)
    assert all(0 <= im.min() and im.max() <= 1 for im in high + low)  # normalised as ingest does
    for a, b in zip(truth_high, truth_low):  # same seed: same vacancies
        np.testing.assert_allclose(a, b)


def test_sweep_scores_every_detector_on_the_same_images(tmp_path):
    from matgen.train.detector import train_vacancy_detector

    images, truths = simulate_condition(condition_settings(SIMULATE, "dose", 1.0)[0], 2, 0)
    np.save(tmp_path / "i.npy", np.stack(images)[:, None].astype(np.float32))
    pd.DataFrame({"index": [0, 1], "pixel_size": 0.2, "height": 64, "width": 64}).to_csv(
        tmp_path / "t.csv", index=False
    )
    pd.concat(
        [pd.DataFrame({"image": i, "x_px": t[:, 0], "y_px": t[:, 1]}) for i, t in enumerate(truths)]
    ).assign(x_angstrom=0.0, y_angstrom=0.0).to_csv(tmp_path / "p.csv", index=False)
    for seed in (0, 1):
        train_vacancy_detector(tmp_path / "i.npy", tmp_path / "t.csv", tmp_path / "p.csv",
                               tmp_path / f"d{seed}.pt", tmp_path / f"d{seed}.csv", seed=seed,
                               epochs=1, steps_per_epoch=2, batch_size=2, crop=32, width=4,
                               depth=2, device="cpu", show_progress=False)  # fmt: skip
    sweep = {"dose": [1.0, 0.5], "row_jitter": [1.33]}
    table = robustness_sweep(
        {"a": tmp_path / "d0.pt", "b": tmp_path / "d1.pt"}, tmp_path / "r.csv",
        simulate=SIMULATE, sweep=sweep, n_images=2, seed=3,
        detect={"tile": 32, "overlap": 8, "tta": False}, device="cpu",
    )  # fmt: skip
    assert len(table) == 3 * 2 and list(table.default) == [True, True, False, False, False, False]
    assert table[table.condition == "row_jitter"].value.iloc[0] == pytest.approx(1.0, abs=0.01)
    # both detectors saw the same images, and every level the same structures: the same true
    # vacancies to find everywhere
    truth = (table.tp + table.fn).to_numpy()
    assert (truth == truth[0]).all() and truth[0] > 0
    assert table[["precision", "recall", "f1"]].apply(lambda c: c.between(0, 1)).all().all()
    assert pd.read_csv(tmp_path / "r.csv").shape == table.shape
    # one sweep per detector, merged: the joint sweep's table, row for row
    for name in ("a", "b"):
        robustness_sweep(
            {name: tmp_path / f"d{'ab'.index(name)}.pt"}, tmp_path / f"r_{name}.csv",
            simulate=SIMULATE, sweep=sweep, n_images=2, seed=3,
            detect={"tile": 32, "overlap": 8, "tta": False}, device="cpu",
        )  # fmt: skip
    merged = merge_robustness_tables(
        {"a": tmp_path / "r_a.csv", "b": tmp_path / "r_b.csv"}, tmp_path / "m.csv"
    )
    pd.testing.assert_frame_equal(merged, pd.read_csv(tmp_path / "r.csv"))
    with pytest.raises(InputError, match="r_a.csv: rows of \\['a'\\], not 'b'"):
        merge_robustness_tables({"b": tmp_path / "r_a.csv"}, tmp_path / "m.csv")
    with pytest.raises(InputError, match="trained at 0.2 Å/px, images at 0.1"):
        robustness_sweep({"a": tmp_path / "d0.pt"}, tmp_path / "x.csv", simulate=SIMULATE,
                         sweep=sweep, pixel_size=0.1, device="cpu")  # fmt: skip


def test_worst_f1_takes_only_the_target_range():
    rows = [("dose", 1.0, 20, 0.9), ("dose", 0.33, 6.6, 0.75), ("dose", 0.2, 4, 0.1),
            ("source_blur", 2.0, 1.2, 0.8), ("source_blur", 3.0, 1.8, 0.2),
            ("row_jitter", 1.33, 1.0, 0.72), ("row_jitter", 2.0, 1.5, 0.3),
            ("background", 4.0, 0.6, 0.05)]  # fmt: skip
    sweep = pd.DataFrame(rows, columns=["condition", "factor", "value", "f1"]).assign(
        training_set="cyclegan"
    )
    assert robust_worst_f1(sweep, "cyclegan") == pytest.approx(0.72)


def test_microscope_augmentation_draws_another_day_and_keeps_the_labels_valid():
    from matgen.data.augment import microscope_augment

    images, truths = simulate_condition(condition_settings(SIMULATE, "dose", 4.0)[0], 1, 2)
    clean = images[0]
    rng = np.random.default_rng(0)
    days = [microscope_augment(clean, rng) for _ in range(6)]
    assert all(d.shape == clean.shape and d.dtype == np.float32 for d in days)
    assert all(0 <= d.min() and d.max() <= 1 for d in days)
    assert len({round(float(np.std(d - clean)), 4) for d in days}) == 6  # each day its own
    # no change asked for, beyond a dose far above the image's own: the image itself
    same = microscope_augment(clean, rng, counts=(1e7, 1e7), blur_px=(0, 0), jitter_px=(0, 0),
                              background=(0, 0))  # fmt: skip
    assert np.abs(same - clean).max() < 0.02
    # a lower dose is noisier
    low = microscope_augment(clean, np.random.default_rng(1), counts=(2, 2), blur_px=(0, 0),
                             jitter_px=(0, 0), background=(0, 0))  # fmt: skip
    assert np.std(low - clean) > 5 * np.std(same - clean)
