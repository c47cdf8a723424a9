"""STEM study: imaging physics of the embedded data, detection metrics, ingestion errors, the
CycleGAN's U-Net generators and Fourier discriminators, the detector and the scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import ROOT

from matgen.data.points import (
    ingest_point_domain,
    normalise_percentile,
    pixel_size_angstrom,
    point_heatmap,
)
from matgen.errors import InputError
from matgen.metrics.detection import (
    bootstrap_scores,
    find_peaks,
    inside,
    match_points,
    precision_recall_curve,
    precision_recall_f1,
)
from matgen.synth import stem

OPTICS = dict(
    vacancy_probability=0.03,
    kv=80.0,
    aperture_mrad=25.0,
    defocus=(0.0, 0.0),
    cs_um=(0.0, 0.0),
    source_fwhm=0.0,
)


# --------------------------------------------------------------------------- physics
def test_electron_wavelength_at_80_kv():
    assert stem.electron_wavelength(80) == pytest.approx(0.04176, abs=2e-5)
    assert stem.electron_wavelength(300) == pytest.approx(0.01969, abs=2e-5)


def test_probe_fwhm_is_the_airy_width_in_focus_and_defocus_spreads_it():
    lam = stem.electron_wavelength(80)
    probe = np.fft.fftshift(stem.probe_intensity((256, 256), 0.05, aperture_mrad=25.0))
    assert probe.sum() == pytest.approx(1.0)
    width = stem.fwhm(probe[128], 0.05)
    assert width == pytest.approx(0.51 * lam / 0.025, rel=0.03)  # 0.85 Å
    assert stem.fwhm(probe[:, 128], 0.05) == pytest.approx(width, rel=1e-6)  # round probe
    # defocus moves intensity from the central peak into the tails (Strehl ratio < 1)
    blurred = stem.probe_intensity((256, 256), 0.05, defocus=60.0)
    assert blurred.sum() == pytest.approx(1.0) and blurred.max() < 0.6 * probe.max()


def test_pixel_too_coarse_for_the_aperture_is_refused():
    with pytest.raises(ValueError, match="does not sample"):
        stem.probe_intensity((64, 64), 1.0)


def _column_sums(image, xy_px, radius_px):
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([image[(xx - x) ** 2 + (yy - y) ** 2 <= radius_px**2].sum() for x, y in xy_px])


def test_column_intensities_follow_z_to_the_1_7():
    rng = np.random.default_rng(0)
    px = 0.05
    cols = stem.wse2_columns(20, 20, rng, vacancy_probability=0.3, rotation_deg=0.0, margin=3)
    transfer = stem.transfer_function((400 + 120, 400 + 120), px, thermal_rms=0.0, source_fwhm=0)
    image = stem.render_columns(cols.xy / px + 60, cols.weight, (520, 520), transfer)
    central = np.all((cols.xy > 4) & (cols.xy < 16), axis=1)
    # a small radius keeps the neighbours' probe tails (1.9 Å away) out of each sum
    sums = _column_sums(image, cols.xy[central] / px + 60, 0.4 / px)
    kinds = cols.kind[central]
    w, se2, se1 = (sums[kinds == k].mean() for k in ("W", "Se2", "Se1"))
    assert w / se2 == pytest.approx(74**1.7 / (2 * 34**1.7), rel=0.05)  # 1.87
    assert se2 / se1 == pytest.approx(2.0, rel=0.05)


def test_lattice_spacing_recovered_from_the_fft_peak():
    rng = np.random.default_rng(1)
    image, _, _ = stem.simulate_image(256, 0.2, rng, **OPTICS)
    amp = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean())))
    k = np.fft.fftshift(np.fft.fftfreq(256, 0.2))
    ky, kx = np.meshgrid(k, k, indexing="ij")
    kr = np.hypot(kx, ky)

    def strongest(k_min, k_max):
        band = np.where((kr > k_min) & (kr < k_max), amp, 0)
        return 1 / kr[np.unravel_index(np.argmax(band), band.shape)]

    # {100}: d = a √3 / 2 = 2.84 Å; {110}: d = a / 2 = 1.64 Å
    assert strongest(0.15, 0.45) == pytest.approx(stem.LATTICE_A * np.sqrt(3) / 2, rel=0.04)
    assert strongest(0.45, 0.8) == pytest.approx(stem.LATTICE_A / 2, rel=0.04)


def test_vacancy_labels_sit_on_se_columns_and_match_the_probability():
    rng = np.random.default_rng(2)
    cols = stem.wse2_columns(60, 60, rng, vacancy_probability=0.05)
    se = np.isin(cols.kind, ["Se2", "Se1", "empty"])
    assert (cols.missing[~se] == 0).all()
    assert cols.missing[se].sum() / (2 * se.sum()) == pytest.approx(0.05, abs=0.015)
    d = np.linalg.norm(cols.xy[se][:, None] - cols.xy[~se][None], axis=-1).min(1)
    assert d == pytest.approx(np.full(se.sum(), stem.BOND_PROJECTED), abs=1e-6)


def test_vacancy_types_are_labelled_where_the_atoms_are_missing():
    rng = np.random.default_rng(5)
    cols = stem.wse2_columns(
        80, 80, rng, vacancy_probability=0.03, double_se_probability=0.05,
        w_vacancy_probability=0.05,
    )  # fmt: skip
    w_site = np.isin(cols.kind, ["W", "empty_W"])
    t = cols.vacancy_type
    assert set(t[w_site]) == {"", "V_W"} and set(t[~w_site]) == {"", "V_Se", "V_Se2"}
    # the label says what scatters: nothing at V_W and V_Se2, one Se at V_Se
    assert (cols.weight[t == "V_W"] == 0).all() and (cols.weight[t == "V_Se2"] == 0).all()
    assert np.allclose(cols.weight[t == "V_Se"], stem.Z_SE**stem.Z_EXPONENT)
    assert (cols.missing[t == "V_Se2"] == 2).all() and (cols.missing[t == "V_W"] == 0).all()
    # V_Se2 per Se column: the extra draw plus two independent single vacancies
    assert (t[~w_site] == "V_Se2").mean() == pytest.approx(0.05 + 0.03**2, abs=0.02)
    assert (t[w_site] == "V_W").mean() == pytest.approx(0.05, abs=0.02)
    assert len(cols.vacancies) == (t != "").sum()
    # without the new probabilities the structures are the single-vacancy ones of before
    a = stem.wse2_columns(30, 30, np.random.default_rng(6), vacancy_probability=0.05)
    b = stem.wse2_columns(30, 30, np.random.default_rng(6), vacancy_probability=0.05,
                          double_se_probability=0.0, w_vacancy_probability=0.0)  # fmt: skip
    assert np.array_equal(a.missing, b.missing) and not (a.vacancy_type == "V_W").any()
    # and the image: a V_W site is far darker than a W column, a V_Se2 site than a V_Se one
    image, vac, _ = stem.simulate_image(
        192, 0.1, np.random.default_rng(7), **{**OPTICS, "vacancy_probability": 0.05},
        double_se_probability=0.1, w_vacancy_probability=0.1,
    )  # fmt: skip
    assert set(vac["type"]) == {"V_Se", "V_Se2", "V_W"}
    at = {k: image[np.round(g.y_px).astype(int), np.round(g.x_px).astype(int)].mean()
          for k, g in vac.groupby("type")}  # fmt: skip
    assert at["V_Se2"] < 0.7 * at["V_Se"] and at["V_W"] < 0.5 * image.max()


def test_experimental_degradations_are_what_the_config_says():
    """The degradations are pinned: physically plausible magnitudes, realised as configured."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["stem"]["simulate"]
    exp = cfg["exp"]
    assert 0 < exp["jitter_rms"] <= 0.3  # Å; sub-column-width scan noise
    assert abs(exp["shear"]) <= 0.05  # drift of a few % over a frame
    assert 5 <= exp["counts_per_pixel"] <= 500  # low-dose imaging of a 2D material
    assert exp["contamination"] <= 0.2 and exp["background"] <= 0.3
    rng = np.random.default_rng(3)
    shifts = stem.ar1_series(20000, 0.15, 0.5, rng)
    assert shifts.std() == pytest.approx(0.15, rel=0.05)
    assert np.corrcoef(shifts[1:], shifts[:-1])[0, 1] == pytest.approx(0.5, abs=0.03)
    row = np.sin(np.linspace(0, 8 * np.pi, 64, endpoint=False))[None].repeat(2, 0)
    moved = stem.scan_row_jitter(row, np.array([0.0, 2.0]))
    assert np.allclose(moved[0], row[0]) and np.allclose(moved[1], np.roll(row[1], 2), atol=1e-9)
    dirt = stem.contamination((256, 256), 0.2, 0.08, rng)
    assert (dirt > 0).mean() == pytest.approx(0.08, abs=0.01)
    noise = stem.correlated_noise((128, 512), 2.0, 1.5, rng)
    assert noise.std() == pytest.approx(2.0, rel=1e-6)
    along = np.corrcoef(noise[:, 1:].ravel(), noise[:, :-1].ravel())[0, 1]
    across = np.corrcoef(noise[1:].ravel(), noise[:-1].ravel())[0, 1]
    assert along == pytest.approx(np.exp(-1 / 1.5), abs=0.03) and abs(across) < 0.03
    image, vac, params = stem.simulate_image(
        128, 0.2, np.random.default_rng(4), **OPTICS, counts_per_pixel=20.0, degrade=exp
    )
    assert image.mean() == pytest.approx(
        20 * (1 + exp["contamination_signal"] * exp["contamination"] * 0.5), rel=0.25
    )
    assert ((vac[["x_px", "y_px"]] >= 0) & (vac[["x_px", "y_px"]] <= 127)).all().all()


def test_simulate_stem_writes_a_sheet_the_ingestion_reads(tmp_path):
    sheet = stem.simulate_stem(
        tmp_path / "raw",
        seed=1,
        n_sim=2,
        n_exp=1,
        n_exp_test=1,
        size=64,
        pixel_size=0.25,
        vacancy_probability=0.05,
        exp={"counts_per_pixel": 20, "jitter_rms": 0.1},
    )
    rows = pd.read_csv(sheet, sep="\t", keep_default_na=False)
    assert list(rows["domain"]) == ["sim", "sim", "exp", "exp_test"]
    assert rows.loc[rows.domain == "exp", "points"].item() == ""  # CycleGAN never sees labels
    out = tmp_path / "ingest"
    table = ingest_point_domain(
        sheet,
        "sim",
        out / "i.npy",
        out / "t.csv",
        out / "p.csv",
        pixel_size=0.25,
        require_points=True,
    )
    images = np.load(out / "i.npy")
    assert images.shape == (2, 1, 64, 64) and images.min() >= 0 and images.max() <= 1
    pts = pd.read_csv(out / "p.csv")
    raw = pd.read_csv(tmp_path / "raw" / "sim_000_vacancies.csv")
    assert len(pts[pts.image == 0]) == len(raw)
    assert np.allclose(pts[pts.image == 0][["x_px", "y_px"]], raw[["x_px", "y_px"]])
    assert table["pixel_size"].eq(0.25).all()


# --------------------------------------------------------------------------- ingestion errors
def _sheet(tmp_path, image, points=None, pixel_size="0.2", unit="angstrom"):
    np.save(tmp_path / "im.npy", image)
    cols = "path\tdomain\tpixel_size\tpixel_unit\tpoints\n"
    if points is not None:
        points.to_csv(tmp_path / "pts.csv", index=False)
    row = f"im.npy\texp_test\t{pixel_size}\t{unit}\t{'pts.csv' if points is not None else ''}\n"
    (tmp_path / "s.tsv").write_text(cols + row)
    return tmp_path / "s.tsv"


def _ingest(sheet, tmp_path, **kw):
    return ingest_point_domain(
        sheet,
        "exp_test",
        tmp_path / "i.npy",
        tmp_path / "t.csv",
        tmp_path / "p.csv",
        pixel_size=0.2,
        **kw,
    )


def test_ingest_carries_point_types_and_rejects_an_empty_one(tmp_path):
    pts = pd.DataFrame({"x_px": [3.0, 9.0], "y_px": [3.0, 5.0], "type": ["V_Se", "V_W"]})
    _ingest(_sheet(tmp_path, np.random.default_rng(0).random((32, 32)), pts), tmp_path)
    assert list(pd.read_csv(tmp_path / "p.csv")["type"]) == ["V_Se", "V_W"]
    _ingest(_sheet(tmp_path, np.ones((32, 32)), pts.drop(columns="type")), tmp_path)
    assert list(pd.read_csv(tmp_path / "p.csv")["type"]) == ["vacancy", "vacancy"]
    with pytest.raises(InputError, match="pts.csv: row 3: empty type"):
        _ingest(_sheet(tmp_path, np.ones((32, 32)), pts.assign(type=["V_Se", ""])), tmp_path)


def test_ingest_rejects_labels_outside_the_image(tmp_path):
    sheet = _sheet(
        tmp_path, np.ones((32, 32)), pd.DataFrame({"x_px": [3.0, 40.0], "y_px": [3.0, 5.0]})
    )
    with pytest.raises(InputError, match=r"pts.csv: row 3: point \(40.0, 5.0\) px lies outside"):
        _ingest(sheet, tmp_path)
    assert not (tmp_path / "i.npy").exists()


def test_ingest_rejects_wrong_pixel_units(tmp_path):
    sheet = _sheet(
        tmp_path,
        np.ones((32, 32)),
        pd.DataFrame({"x_px": [], "y_px": []}),
        pixel_size="0.2",
        unit="um",
    )
    with pytest.raises(InputError, match="pixel_unit 'um' is not a length unit for STEM"):
        _ingest(sheet, tmp_path)
    sheet = _sheet(
        tmp_path,
        np.ones((32, 32)),
        pd.DataFrame({"x_px": [], "y_px": []}),
        pixel_size="2",
        unit="nm",
    )  # 20 Å/px: nm given where Å was meant
    with pytest.raises(InputError, match="20 Å/px cannot be an atom-resolved image"):
        _ingest(sheet, tmp_path)
    assert pixel_size_angstrom(0.02, "nm", "x") == pytest.approx(0.2)
    assert pixel_size_angstrom(20, "pm", "x") == pytest.approx(0.2)


def test_ingest_requires_points_for_scoring_and_resamples_them(tmp_path):
    sheet = _sheet(tmp_path, np.random.default_rng(0).random((32, 32)))
    with pytest.raises(InputError, match="no points file"):
        _ingest(sheet, tmp_path, require_points=True)
    pts = pd.DataFrame({"x_angstrom": [1.0], "y_angstrom": [2.0]})
    sheet = _sheet(tmp_path, np.random.default_rng(0).random((32, 32)), pts, pixel_size="0.1")
    _ingest(sheet, tmp_path, require_points=True)
    assert np.load(tmp_path / "i.npy").shape == (1, 1, 16, 16)  # 0.1 → 0.2 Å/px
    out = pd.read_csv(tmp_path / "p.csv")
    assert out[["x_px", "y_px"]].to_numpy().tolist() == [[5.0, 10.0]]
    assert out[["x_angstrom", "y_angstrom"]].to_numpy().tolist() == [[1.0, 2.0]]


def test_blank_image_normalises_to_zeros():
    assert not normalise_percentile(np.full((8, 8), 7.0)).any()


def test_empty_experimental_domain_is_an_error(tmp_path):
    np.save(tmp_path / "sim.npy", np.ones((32, 32)))
    (tmp_path / "s.tsv").write_text("path\tdomain\tpixel_size\nsim.npy\tsim\t0.2\n")
    with pytest.raises(InputError, match="no rows with domain 'exp_test' \\(domains: sim\\)"):
        _ingest(tmp_path / "s.tsv", tmp_path)


# --------------------------------------------------------------------------- detection metrics
def test_match_points_is_one_to_one_and_optimal():
    true = np.array([[0.0, 0.0], [2.0, 0.0]])
    pred = np.array([[1.1, 0.0], [2.5, 0.0], [9.0, 9.0]])
    m = match_points(pred, true, tolerance=1.2)
    # greedy nearest would give pred 0 -> true 1 (0.9) and leave true 0 unmatched
    assert (m.tp, m.fp, m.fn) == (2, 1, 0)
    assert sorted(map(tuple, m.pairs)) == [(0, 0), (1, 1)]
    assert precision_recall_f1(m) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (match_points(np.empty((0, 2)), true, 1).fn, match_points(pred, [], 1).fp) == (2, 3)


def test_blank_image_scores_perfectly_with_no_detections():
    xy, score = find_peaks(np.zeros((32, 32)), threshold=0.5)
    assert len(xy) == 0
    assert precision_recall_f1(match_points(xy, np.empty((0, 2)), 1.0)) == (1.0, 1.0, 1.0)


def test_find_peaks_returns_xy_strongest_first():
    prob = np.zeros((40, 50))
    prob[10, 30] = 0.9
    prob[25, 5] = 0.7
    prob[30, 30] = 0.3
    xy, score = find_peaks(prob, threshold=0.5, min_distance=2)
    assert xy.tolist() == [[30.0, 10.0], [5.0, 25.0]] and score.tolist() == pytest.approx(
        [0.9, 0.7]
    )
    assert inside(xy, prob.shape, border=6).tolist() == [True, False]


def test_bootstrap_interval_contains_the_pooled_value_and_narrows_with_images():
    rng = np.random.default_rng(0)
    few = np.stack([rng.integers(5, 10, 5), rng.integers(0, 4, 5), rng.integers(0, 4, 5)], 1)
    many = np.tile(few, (20, 1))
    a, b = bootstrap_scores(few, seed=1)["f1"], bootstrap_scores(many, seed=1)["f1"]
    assert a[1] <= a[0] <= a[2] and a[0] == pytest.approx(b[0])
    assert (b[2] - b[1]) < 0.5 * (a[2] - a[1])


def test_pr_curve_trades_precision_for_recall():
    true = [np.array([[5.0, 5.0], [20.0, 20.0]])]
    pred = [(np.array([[5.2, 5.0], [20.0, 19.5], [12.0, 3.0]]), np.array([0.9, 0.4, 0.6]))]
    curve = precision_recall_curve(pred, true, 1.0, [0.3, 0.5, 0.8, 0.95])
    assert curve[:, 1].tolist() == pytest.approx([2 / 3, 0.5, 1.0, 1.0])
    assert curve[:, 2].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.0])


def test_point_heatmap_peaks_at_the_points():
    hm = point_heatmap(np.array([[3.0, 4.0], [10.5, 10.0]]), (16, 16), 1.5)
    assert hm[4, 3] == pytest.approx(1.0) and hm.max() <= 1.0
    assert hm[10, 10] == pytest.approx(np.exp(-0.25 / 4.5), rel=1e-5)


# --------------------------------------------------------------------------- models
def test_unet_generator_and_fourier_discriminator_shapes_and_spectrum():
    import torch

    from matgen.models.cyclegan import FourierDiscriminator, UnetGenerator, fourier_log_amplitude

    g = UnetGenerator(1, 1, ngf=4, depth=2)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    d = FourierDiscriminator(1, 4, 2)
    assert d(x).shape[0] == 2
    # the spectrum tells white from row-correlated noise, which the image PatchGAN sees poorly
    torch.manual_seed(0)
    white = torch.randn(1, 1, 64, 64)
    rows = torch.cumsum(torch.randn(1, 1, 64, 64), dim=-1) * 0.2
    aw, ar = fourier_log_amplitude(white)[0, 0], fourier_log_amplitude(rows)[0, 0]
    assert torch.allclose(aw.mean(), torch.tensor(0.0), atol=1e-5)
    # energy of row-correlated noise sits at low kx (centre columns), of white noise everywhere
    centre = slice(28, 36)
    assert ar[:, centre].mean() - ar.mean() > 3 * abs(aw[:, centre].mean() - aw.mean())


def test_stem_cyclegan_trains_with_unet_generators_fourier_discriminators_and_input_noise(tmp_path):
    from matgen.inference.cyclegan import load_cyclegan_generator, translate
    from matgen.train.cyclegan import train_cyclegan

    rng = np.random.default_rng(0)
    np.save(tmp_path / "sim.npy", rng.random((6, 1, 16, 16)).astype(np.float16))
    np.save(tmp_path / "exp.npy", rng.random((6, 1, 16, 16)).astype(np.float16))
    kw = dict(
        steps=4,
        batch_size=2,
        ngf=4,
        n_downsampling=2,
        ndf=4,
        n_layers=2,
        generator="unet",
        fourier=True,
        input_noise=0.1,
        log_every=2,
        show_progress=False,
        device="cpu",
    )
    train_cyclegan(
        tmp_path / "sim.npy", tmp_path / "exp.npy", tmp_path / "c.pt", tmp_path / "c.csv", **kw
    )
    log = pd.read_csv(tmp_path / "c.csv")
    assert (log["fourier"] > 0).all() and (log["identity"] > 0).all()  # both active at scale 1
    g = load_cyclegan_generator(tmp_path / "c.pt", "G_LH")
    tiles = np.load(tmp_path / "sim.npy")
    a = translate(g, tiles, input_noise=0.1, seed=3)
    assert np.array_equal(a, translate(g, tiles, input_noise=0.1, seed=3))
    assert not np.array_equal(a, translate(g, tiles, input_noise=0.1, seed=4))
    with pytest.raises(InputError, match="U-Net generators translate at one pixel size"):
        np.save(tmp_path / "big.npy", rng.random((6, 1, 32, 32)).astype(np.float16))
        train_cyclegan(
            tmp_path / "sim.npy", tmp_path / "big.npy", tmp_path / "d.pt", tmp_path / "d.csv", **kw
        )


def _spots(rng, n_images=4, size=64, n_points=6):
    """Bright Gaussian spots (the 'vacancies') on a noisy background, with their positions."""
    images, points = [], []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_images):
        xy = rng.uniform(6, size - 6, (n_points, 2))
        im = 0.2 + 0.05 * rng.standard_normal((size, size))
        for x, y in xy:
            im += 0.6 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
        images.append(np.clip(im, 0, 1))
        points.append(pd.DataFrame({"image": i, "x_px": xy[:, 0], "y_px": xy[:, 1]}))
    return np.stack(images)[:, None].astype(np.float32), pd.concat(points, ignore_index=True)


def _write_spots(tmp_path) -> pd.DataFrame:
    """Four 64-px training images of :func:`_spots` (seed 0) at 0.2 Å/px as the detector reads
    them (i.npy, t.csv, p.csv); returns the table."""
    images, points = _spots(np.random.default_rng(0))
    np.save(tmp_path / "i.npy", images)
    table = pd.DataFrame({"index": range(4), "pixel_size": 0.2, "height": 64, "width": 64})
    table.to_csv(tmp_path / "t.csv", index=False)
    points.assign(x_angstrom=0, y_angstrom=0).to_csv(tmp_path / "p.csv", index=False)
    return table


def test_calibrated_threshold_is_the_best_f1_on_training_images():
    """A probe whose probability map is its input: true vacancies peak at 0.3, distractors at
    0.1. A fixed 0.5 finds nothing; the calibration must sit above the distractors and at or
    below the vacancies: 0.15, the lowest threshold of F1 1."""
    import torch

    from matgen.data.points import point_heatmap
    from matgen.pipeline.stem import calibrate_threshold

    class Probe(torch.nn.Module):
        depth = 2

        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Conv2d(1, 1, 1)  # one (heatmap) channel

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.logit(x.clamp(1e-4, 1 - 1e-4))

    rng = np.random.default_rng(0)
    images, points = [], []
    grid = np.stack(np.meshgrid(np.arange(10, 60, 12), np.arange(10, 60, 12)), -1).reshape(-1, 2)
    for _ in range(3):  # spots 12 px apart, each a vacancy or a decoy
        xy = rng.permutation(grid).astype(float)
        true, decoy = xy[:8], xy[8:16]
        heat = 0.3 * point_heatmap(true, (64, 64), 1.5) + 0.1 * point_heatmap(decoy, (64, 64), 1.5)
        images.append(heat)
        points.append(true)
    images = np.stack(images)[:, None]
    threshold, curve = calibrate_threshold(
        Probe(), ["vacancy"], images, points, tolerance_px=2.0, min_distance_px=3, tile=64,
        overlap=0,
    )  # fmt: skip
    assert threshold == pytest.approx(0.15)
    f1 = dict(zip(np.round(curve[:, 0], 2), curve[:, 3]))
    assert f1[0.15] == pytest.approx(1.0) and f1[0.1] < 1 and f1[0.5] == 0


class _HeatProbe:
    """A 'detector' whose vacancy probability map is its input image (one channel)."""

    @staticmethod
    def make():
        import torch

        class Probe(torch.nn.Module):
            depth = 2

            def __init__(self) -> None:
                super().__init__()
                self.head = torch.nn.Conv2d(1, 1, 1)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.logit(x.clamp(1e-4, 1 - 1e-4))

        return Probe()


def _two_populations(rng, high, low, n_images=3):
    """Heat maps with 8 peaks of each population a map, heights drawn from ``high``/``low``."""
    from matgen.data.points import point_heatmap

    grid = np.stack(np.meshgrid(np.arange(10, 60, 12), np.arange(10, 60, 12)), -1).reshape(-1, 2)
    maps = []
    for _ in range(n_images):
        xy = rng.permutation(grid).astype(float)
        heat = sum(
            h * point_heatmap(p[None], (64, 64), 1.5)
            for p, h in zip(xy[:16], np.r_[rng.uniform(*high, 8), rng.uniform(*low, 8)])
        )
        maps.append(heat)
    return np.stack(maps)[:, None]


def test_score_valley_threshold_cuts_between_the_two_populations_of_peaks():
    """Confident vacancies and a low tail of lattice/noise peaks: the threshold falls between
    them, follows them when a domain gap shifts both, and is None without enough peaks."""
    from matgen.pipeline.stem import score_valley_threshold

    probe = _HeatProbe.make()
    rng = np.random.default_rng(0)
    kw = dict(min_distance_px=3, tile=64, overlap=0)
    low_t, scores = score_valley_threshold(
        probe, ["vacancy"], _two_populations(rng, (0.55, 0.7), (0.08, 0.2)), **kw
    )
    assert len(scores) == 48 and 0.25 < low_t < 0.5  # mid-gap, not at the low tail's top
    high_t, _ = score_valley_threshold(
        probe, ["vacancy"], _two_populations(rng, (0.8, 0.95), (0.35, 0.5)), **kw
    )
    assert 0.5 < high_t < 0.8 and high_t > low_t + 0.2
    none, few = score_valley_threshold(
        probe, ["vacancy"], _two_populations(rng, (0.6, 0.7), (0.1, 0.2), n_images=1), **kw
    )
    assert none is None and len(few) == 16  # under min_peaks (20)


def test_f1_plateau_is_the_thresholds_within_one_standard_error_of_the_best():
    from matgen.pipeline.stem import f1_plateau

    curve = np.array([[0.1, 0, 0, 0.90], [0.2, 0, 0, 0.985], [0.3, 0, 0, 0.99],
                      [0.4, 0, 0, 0.978], [0.5, 0, 0, 0.95]])  # fmt: skip
    # 100 true vacancies: sd of an F1 of 0.99 is 0.00995, so 0.2-0.3 qualify and 0.4 does not
    assert f1_plateau(curve, 100) == (0.2, 0.3)
    # 25: sd 0.0199, 0.2-0.4
    assert f1_plateau(curve, 25) == (0.2, 0.4)


def test_detector_operating_point_on_the_experimental_images(tmp_path, capsys):
    """operating_point 'experiment': the checkpoint's threshold is the valley of the trained
    detector's peak scores on the unlabelled experimental images, the training-image one kept
    beside it; a wrong pixel size or a missing stack is refused before any training."""
    import torch

    from matgen.inference.detector import load_vacancy_detector
    from matgen.pipeline.stem import score_valley_threshold
    from matgen.train.detector import train_vacancy_detector

    table = _write_spots(tmp_path)
    exp_images, _ = _spots(np.random.default_rng(5), n_images=4)
    np.save(tmp_path / "e.npy", (0.8 * exp_images + 0.1).astype(np.float32))  # another gain
    table.to_csv(tmp_path / "et.csv", index=False)
    table.assign(pixel_size=0.25).to_csv(tmp_path / "bad.csv", index=False)
    torch.set_num_threads(2)
    kw = dict(seed=1, epochs=6, steps_per_epoch=10, batch_size=4, crop=32, width=8, depth=2,
              lr=3e-3, device="cpu", show_progress=False)  # fmt: skip
    args = [tmp_path / n for n in ("i.npy", "t.csv", "p.csv", "d.pt", "d.csv")]
    with pytest.raises(InputError, match=r"e\.npy: experimental images at 0\.25 Å/px"):
        train_vacancy_detector(
            *args, operating_point="experiment", experiment_images_path=tmp_path / "e.npy",
            experiment_table_path=tmp_path / "bad.csv", **kw,
        )  # fmt: skip
    with pytest.raises(InputError, match="needs the experimental images"):
        train_vacancy_detector(*args, operating_point="experiment", **kw)
    with pytest.raises(InputError, match="expected 'training' or 'experiment'"):
        train_vacancy_detector(*args, operating_point="test", **kw)
    assert not (tmp_path / "d.pt").exists()
    summary = train_vacancy_detector(
        *args, operating_point="experiment", experiment_images_path=tmp_path / "e.npy",
        experiment_table_path=tmp_path / "et.csv", **kw,
    )  # fmt: skip
    said = capsys.readouterr().err
    assert "the valley (" in said and "4 experimental images" in said
    det = load_vacancy_detector(tmp_path / "d.pt")
    valley, scores = score_valley_threshold(
        det.model, det.types, np.load(tmp_path / "e.npy"), min_distance_px=5
    )
    raw = torch.load(tmp_path / "d.pt", weights_only=False)
    low, high = raw["threshold_plateau"]
    assert low <= raw["threshold_training"] <= high
    assert len(scores) >= 20 and det.threshold == pytest.approx(np.clip(valley, low, high))
    assert raw["threshold_training"] == summary["threshold_training"]
    assert 0.05 <= raw["threshold_training"] <= 0.95 and summary["threshold"] == det.threshold


def test_detector_learns_to_find_points_and_tiled_tta_inference_is_consistent(tmp_path):
    import torch

    from matgen.inference.detector import detector_threshold, load_vacancy_detector
    from matgen.pipeline.stem import detect_in_stack, score_detections, vacancy_probability
    from matgen.train.detector import train_vacancy_detector

    table = _write_spots(tmp_path)
    torch.set_num_threads(2)
    train_vacancy_detector(
        tmp_path / "i.npy",
        tmp_path / "t.csv",
        tmp_path / "p.csv",
        tmp_path / "d.pt",
        tmp_path / "d.csv",
        seed=1,
        epochs=8,
        steps_per_epoch=10,
        batch_size=4,
        crop=32,
        width=8,
        depth=2,
        lr=3e-3,
        device="cpu",
        show_progress=False,
    )
    log = pd.read_csv(tmp_path / "d.csv")
    assert log["loss"].iloc[-1] < 0.5 * log["loss"].iloc[0]
    # new images of the same kind
    test_images, test_points = _spots(np.random.default_rng(1), n_images=2)
    np.save(tmp_path / "ti.npy", test_images)
    table.iloc[:2].to_csv(tmp_path / "tt.csv", index=False)
    test_points.to_csv(tmp_path / "tp.csv", index=False)
    detect_in_stack(
        tmp_path / "d.pt",
        tmp_path / "ti.npy",
        tmp_path / "tt.csv",
        tmp_path / "pred.csv",
        tile=32,
        overlap=8,
        device="cpu",
    )
    scores = score_detections(
        {"spots": tmp_path / "pred.csv"},
        tmp_path / "tp.csv",
        tmp_path / "tt.csv",
        tmp_path / "s.csv",
        tmp_path / "c.csv",
        tmp_path / "pi.csv",
        tmp_path / "points.csv",
        threshold=0.5,
        tolerance_angstrom=0.4,
        border_angstrom=0.0,
        n_boot=200,
    )
    assert scores["f1"].item() > 0.8
    # every scored point with its status, consistent with the counts of Table 1
    status = pd.read_csv(tmp_path / "points.csv").status.value_counts()
    assert [status.get(s, 0) for s in ("tp", "fp", "fn")] == [
        scores[s].item() for s in ("tp", "fp", "fn")
    ]
    assert scores["f1_low"].item() <= scores["f1"].item() <= scores["f1_high"].item()
    model, px, types, threshold, _ = load_vacancy_detector(tmp_path / "d.pt")
    assert px == 0.2 and types == ["vacancy"]  # labels without a type column: one channel
    # the operating point was calibrated on the training images and travels with the weights
    assert 0.05 <= threshold <= 0.95 and threshold == detector_threshold(tmp_path / "d.pt")
    calibrated = score_detections(
        {"spots": tmp_path / "pred.csv"}, tmp_path / "tp.csv", tmp_path / "tt.csv",
        tmp_path / "s3.csv", tmp_path / "c3.csv", tmp_path / "pi3.csv",
        detectors={"spots": tmp_path / "d.pt"}, tolerance_angstrom=0.4, border_angstrom=0.0,
        n_boot=50,
    )  # fmt: skip
    assert calibrated["threshold"].item() == threshold and calibrated["f1"].item() > 0.8
    with pytest.raises(InputError, match="no detector checkpoint for spots"):
        score_detections(
            {"spots": tmp_path / "pred.csv"}, tmp_path / "tp.csv", tmp_path / "tt.csv",
            tmp_path / "s4.csv", tmp_path / "c4.csv", tmp_path / "pi4.csv",
        )  # fmt: skip
    # the loaded head reports odds divided by pos_weight (20, the default used here)
    raw = torch.load(tmp_path / "d.pt", weights_only=False)
    assert raw["pos_weight"] == 20.0
    assert torch.allclose(model.head.bias, raw["model"]["head.bias"] - np.log(20.0))
    image = test_images[0, 0]
    whole = vacancy_probability(model, image, tile=64, overlap=0, tta=True)
    tiled = vacancy_probability(model, image, tile=32, overlap=16, tta=True)
    # TTA makes the map D4-equivariant: a rotated image gives the rotated map
    rotated = vacancy_probability(model, np.rot90(image).copy(), tile=64, overlap=0, tta=True)
    assert np.allclose(np.rot90(whole), rotated, atol=1e-5)
    # tiles disagree only where a window's border cuts the receptive field
    assert np.corrcoef(whole.ravel(), tiled.ravel())[0, 1] > 0.95


def _typed_spots(rng, n_images=4, size=64, n_points=8):
    """Bright and dark Gaussian spots (two 'vacancy types') on a noisy grey background."""
    images, points = [], []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_images):
        xy = rng.uniform(6, size - 6, (n_points, 2))
        kind = np.array(["bright", "dark"])[np.arange(n_points) % 2]
        im = 0.5 + 0.04 * rng.standard_normal((size, size))
        for (x, y), k in zip(xy, kind):
            im += (0.4 if k == "bright" else -0.4) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.5)
        images.append(np.clip(im, 0, 1))
        points.append(pd.DataFrame({"image": i, "x_px": xy[:, 0], "y_px": xy[:, 1], "type": kind}))
    return np.stack(images)[:, None].astype(np.float32), pd.concat(points, ignore_index=True)


def test_typed_detector_tells_vacancy_types_apart_and_table1_scores_each(tmp_path):
    import torch

    from matgen.inference.detector import load_vacancy_detector
    from matgen.pipeline.stem import detect_in_stack, score_detections
    from matgen.train.detector import train_vacancy_detector

    images, points = _typed_spots(np.random.default_rng(0))
    np.save(tmp_path / "i.npy", images)
    table = pd.DataFrame({"index": range(4), "pixel_size": 0.2, "height": 64, "width": 64})
    table.to_csv(tmp_path / "t.csv", index=False)
    points.to_csv(tmp_path / "p.csv", index=False)
    torch.set_num_threads(2)
    summary = train_vacancy_detector(
        tmp_path / "i.npy", tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "d.pt",
        tmp_path / "d.csv", seed=1, epochs=8, steps_per_epoch=10, batch_size=4, crop=32,
        width=8, depth=2, lr=3e-3, device="cpu", show_progress=False,
    )  # fmt: skip
    assert summary["n_per_type"] == {"bright": 16, "dark": 16}
    detector = load_vacancy_detector(tmp_path / "d.pt")
    # one heatmap channel for every vacancy, two type channels
    assert detector.types == ["bright", "dark"] and detector.model.head.out_channels == 3
    test_images, test_points = _typed_spots(np.random.default_rng(1), n_images=3)
    np.save(tmp_path / "ti.npy", test_images)
    table.iloc[:3].to_csv(tmp_path / "tt.csv", index=False)
    test_points.to_csv(tmp_path / "tp.csv", index=False)
    pred = detect_in_stack(tmp_path / "d.pt", tmp_path / "ti.npy", tmp_path / "tt.csv",
                           tmp_path / "pred.csv", tile=32, overlap=8, device="cpu")  # fmt: skip
    assert set(pred["type"]) <= {"bright", "dark"}
    scores = score_detections(
        {"spots": tmp_path / "pred.csv"}, tmp_path / "tp.csv", tmp_path / "tt.csv",
        tmp_path / "s.csv", tmp_path / "c.csv", tmp_path / "pi.csv", tmp_path / "points.csv",
        threshold=0.5, tolerance_angstrom=0.4, border_angstrom=0.0, n_boot=200,
    )  # fmt: skip
    row = scores.iloc[0]
    assert row["n_bright"] == row["n_dark"] == 12
    assert row["f1_bright"] > 0.8 and row["f1_dark"] > 0.8 and row["type_accuracy"] > 0.9
    assert row["f1_dark_low"] <= row["f1_dark"] <= row["f1_dark_high"]
    # typed matching can only lose matches: each type's tp sum to at most the any-type tp
    tp_typed = sum(round(row[f"recall_{k}"] * row[f"n_{k}"]) for k in ("bright", "dark"))
    assert tp_typed <= row["tp"]
    # an untyped detector on typed labels gets no per-type columns (not a fake type score)
    untyped = pred.drop(columns="type")
    untyped.to_csv(tmp_path / "u.csv", index=False)
    plain = score_detections(
        {"u": tmp_path / "u.csv"}, tmp_path / "tp.csv", tmp_path / "tt.csv", tmp_path / "s2.csv",
        tmp_path / "c2.csv", tmp_path / "pi2.csv", threshold=0.5, n_boot=50,
        tolerance_angstrom=0.4, border_angstrom=0.0,
    )  # fmt: skip
    assert "f1_dark" not in plain.columns and plain["f1"].item() == row["f1"]


def test_detect_vacancies_resamples_user_images_and_maps_points_back(tmp_path):
    import torch

    from matgen.checkpoint import save_checkpoint
    from matgen.models.unet import UNet
    from matgen.pipeline.stem import detect_vacancies_in_files

    torch.manual_seed(0)
    cfg = dict(in_ch=1, out_ch=4, width=4, depth=2, residual=True)  # heatmap + 3 types
    net = UNet(**cfg)
    save_checkpoint(
        tmp_path / "d.pt",
        step=1,
        model_config=cfg,
        include_rng=False,
        family="vacancy_detector",
        model=net.state_dict(),
        pixel_size=0.2,
        types=["V_Se", "V_Se2", "V_W"],
        sigma_px=1.5,
    )
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((40, 40)))
    out = detect_vacancies_in_files(
        tmp_path / "d.pt",
        [tmp_path / "a.npy"],
        0.1,
        tmp_path / "pts.csv",
        threshold=0.0,
        tile=32,
        device="cpu",
    )
    columns = ["image", "x_px", "y_px", "x_angstrom", "y_angstrom", "score", "type"]
    assert list(out.columns) == columns and set(out["type"]) <= {"V_Se", "V_Se2", "V_W"}
    # coordinates are in the input image's own 0.1 Å pixels
    assert out["x_px"].max() <= 40 and np.allclose(out["x_angstrom"], out["x_px"] * 0.1)
    with pytest.raises(InputError, match="cannot be an atom-resolved image"):
        detect_vacancies_in_files(
            tmp_path / "d.pt", [tmp_path / "a.npy"], 5.0, tmp_path / "pts.csv"
        )
    # 'valley': the candidates above the lowest level, cut at the Otsu level of their scores
    from matgen.data.threshold import otsu_split

    np.save(tmp_path / "b.npy", np.random.default_rng(1).random((160, 160)))
    kw = dict(tile=32, device="cpu", tta=False)
    every = detect_vacancies_in_files(
        tmp_path / "d.pt", [tmp_path / "b.npy"], 0.1, tmp_path / "all.csv", threshold=0.05, **kw
    )
    valley = detect_vacancies_in_files(
        tmp_path / "d.pt", [tmp_path / "b.npy"], 0.1, tmp_path / "v.csv", threshold="valley", **kw
    )
    cut = otsu_split(every["score"].to_numpy())
    assert len(every) >= 20 and 0 < len(valley) < len(every)
    pd.testing.assert_frame_equal(valley, every[every["score"] >= cut].reset_index(drop=True))
    # a detector that keeps its training plateau: the valley is brought within it
    raw = torch.load(tmp_path / "d.pt", weights_only=False)
    low = (cut + every["score"].max()) / 2  # a plateau above the valley, inside the scores
    torch.save({**raw, "threshold_plateau": [low, 1.0]}, tmp_path / "dp.pt")
    clipped = detect_vacancies_in_files(
        tmp_path / "dp.pt", [tmp_path / "b.npy"], 0.1, tmp_path / "v.csv", threshold="valley", **kw
    )
    pd.testing.assert_frame_equal(clipped, every[every["score"] >= low].reset_index(drop=True))
    assert 0 < len(clipped) < len(valley)
    with pytest.raises(InputError, match="too few to set a threshold"):
        detect_vacancies_in_files(
            tmp_path / "d.pt", [tmp_path / "a.npy"], 0.1, tmp_path / "v.csv", threshold="valley",
            **kw,
        )  # fmt: skip


def test_cli_detect_vacancies_one_line_errors(tmp_path, capsys):
    from matgen.cli import main

    np.save(tmp_path / "a.npy", np.ones((32, 32)))
    assert (
        main(
            [
                "detect-vacancies",
                str(tmp_path / "none.pt"),
                str(tmp_path / "a.npy"),
                "--pixel-size",
                "0.2",
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "none.pt: checkpoint not found" in capsys.readouterr().err
    assert (
        main(
            [
                "detect-vacancies",
                str(tmp_path / "none.pt"),
                str(tmp_path / "b.npy"),
                "--pixel-size",
                "0.2",
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 2
    )
    assert "b.npy: file not found" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(SystemExit):
        main(["detect-vacancies", "d.pt", "a.npy", "--pixel-size", "0.2", "--out", "p.csv",
              "--threshold", "low"])  # fmt: skip
    assert "expected a probability or 'valley', got 'low'" in capsys.readouterr().err


def test_detector_amp_trains_in_bfloat16_where_it_pays_and_keeps_local_contrast_in_float32(
    tmp_path, monkeypatch
):
    """``amp``: the detector's training under bfloat16 autocast where bfloat16 pays (forced
    here, so every machine runs the path), a rerun bit-identical; the local-contrast layer
    computes in float32 inside autocast (its output equal to the float32 one)."""
    import torch

    import matgen.util
    from matgen.models.unet import LocalContrast
    from matgen.train.detector import train_vacancy_detector

    layer = LocalContrast(3.0)
    x = torch.rand(2, 1, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = layer(x)
    assert inside.dtype == torch.float32 and torch.equal(inside, layer(x))
    _write_spots(tmp_path)
    monkeypatch.setattr(matgen.util, "cpu_bfloat16_pays", lambda: True)
    kw = dict(seed=1, epochs=2, steps_per_epoch=3, batch_size=4, crop=32, width=4, depth=2,
              device="cpu", show_progress=False, local_contrast_angstrom=0.6)  # fmt: skip
    weights = {}
    for name, amp in (("a", True), ("b", True), ("c", False)):
        files = [tmp_path / n for n in ("i.npy", "t.csv", "p.csv", f"{name}.pt", f"{name}.csv")]
        train_vacancy_detector(*files, amp=amp, **kw)
        weights[name] = torch.load(tmp_path / f"{name}.pt", weights_only=False)["model"]
    assert all(torch.equal(v, weights["b"][k]) for k, v in weights["a"].items())
    assert any(not torch.equal(v, weights["c"][k]) for k, v in weights["a"].items())


def test_local_contrast_removes_background_and_gain_and_tiles_agree_with_the_image():
    import torch

    from matgen.models.unet import LocalContrast

    images, _ = _spots(np.random.default_rng(3), n_images=1, size=96, n_points=20)
    image = torch.from_numpy(images)
    yy, xx = np.mgrid[:96, :96].astype(np.float32)
    ramp = torch.from_numpy(0.004 * xx - 0.002 * yy)[None, None]
    norm = LocalContrast(sigma_px=4.0)
    clean, degraded = norm(image), norm(0.5 * image + ramp + 0.1)
    # a linear background and a gain cancel exactly where the windows of the mean and of the
    # sd (twice the window's 3-sd radius) lie inside the image
    inner = (slice(None), slice(None), slice(24, -24), slice(24, -24))
    assert torch.allclose(clean[inner], degraded[inner], rtol=3e-3, atol=1e-3)  # eps: 1e-3 sd
    assert abs(float(clean[inner].mean())) < 0.1 and abs(float(clean[inner].std()) - 1) < 0.2
    # a tile is normalised as the image is, 6 sd away from the tile's border
    tile = norm(image[..., 16:80, 16:80])
    assert torch.allclose(tile[..., 24:-24, 24:-24], clean[..., 40:56, 40:56], atol=1e-4)
    # a raw image's background shift is what the layer removes
    assert not torch.allclose(image[inner], (0.5 * image + ramp + 0.1)[inner], atol=0.05)


def test_detector_with_local_contrast_ignores_a_background_slope_and_stores_its_window(tmp_path):
    import torch

    from matgen.inference.detector import load_vacancy_detector
    from matgen.pipeline.stem import vacancy_probability
    from matgen.train.detector import train_vacancy_detector

    _write_spots(tmp_path)
    torch.set_num_threads(2)
    train_vacancy_detector(
        tmp_path / "i.npy", tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "d.pt",
        tmp_path / "d.csv", seed=1, epochs=6, steps_per_epoch=10, batch_size=4, crop=32,
        width=8, depth=2, lr=3e-3, device="cpu", show_progress=False,
        local_contrast_angstrom=0.8,
    )  # fmt: skip
    raw = torch.load(tmp_path / "d.pt", weights_only=False)
    assert raw["model_config"]["local_contrast_px"] == pytest.approx(4.0)  # 0.8 Å at 0.2 Å/px
    model = load_vacancy_detector(tmp_path / "d.pt").model
    assert model.contrast is not None and model.contrast.taps.numel() == 2 * 12 + 1
    test, _ = _spots(np.random.default_rng(1), n_images=1)
    xx = np.mgrid[:64, :64][1].astype(np.float32)
    sloped = 0.6 * test[0, 0] + 0.005 * xx + 0.05  # a dimmer image on a background slope
    plain = vacancy_probability(model, test[0, 0], tile=64, overlap=0, tta=False)
    moved = vacancy_probability(model, sloped, tile=64, overlap=0, tta=False)
    assert plain.max() > 0.5
    assert np.abs(plain - moved)[8:-8, 8:-8].max() < 0.05
