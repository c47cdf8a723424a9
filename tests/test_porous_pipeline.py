"""Sampling, translation scoring and real-vs-synthetic comparison of the porous study."""

import numpy as np
import pandas as pd
import pytest
import torch

from matgen.checkpoint import save_checkpoint
from matgen.errors import InputError
from matgen.inference.stylegan2 import generate, load_stylegan2
from matgen.metrics.distributions import distribution_distances, pairwise_diversity
from matgen.models.stylegan2 import Generator
from matgen.pipeline.morphology import (
    MISMATCH_TOLERANCES,
    describe_tile_set,
    mismatch_tolerances,
    morphology_of_tiles,
    tile_set_mismatch,
)
from matgen.pipeline.porous import (
    compare_morphology,
    sample_stylegan2,
    stylegan2_panels,
    translation_error,
)


def test_distribution_distances_of_a_shifted_sample():
    rng = np.random.default_rng(0)
    a = rng.normal(0.2, 0.03, 500)
    same = distribution_distances(a, a)
    assert same["ks_statistic"] == 0 and same["wasserstein"] == 0
    shifted = distribution_distances(a, a + 0.05)
    assert shifted["wasserstein"] == pytest.approx(0.05)  # W1 of a translate is the shift
    assert shifted["mean_difference"] == pytest.approx(0.05)
    assert shifted["ks_statistic"] > 0.5 and shifted["ks_pvalue"] < 1e-6
    with pytest.raises(ValueError):
        distribution_distances([np.nan], [1.0])


def test_pairwise_diversity_is_zero_for_copies_and_the_rms_difference_otherwise():
    one = np.random.default_rng(1).random((16, 16))
    assert pairwise_diversity(np.stack([one] * 5)) == 0
    two = np.stack([np.zeros((16, 16)), np.full((16, 16), 0.3)])
    assert pairwise_diversity(two) == pytest.approx(0.3)


def _morph_table(path, porosity, lam, ssa=0.3):
    pd.DataFrame(
        {
            "tile": range(len(porosity)),
            "porosity": porosity,
            "correlation_length": lam,
            "specific_surface_area": ssa,
        }
    ).to_csv(path, index=False)
    return path


def test_compare_morphology_reports_targets(tmp_path):
    from matgen.metrics.spectra import detector_noise_sd

    rng = np.random.default_rng(2)
    real_tiles = rng.random((20, 1, 8, 8)).astype(np.float16)
    np.save(tmp_path / "real.npy", real_tiles)
    np.save(tmp_path / "good.npy", rng.random((20, 1, 8, 8)).astype(np.float16))
    np.save(tmp_path / "collapsed.npy", np.repeat(real_tiles[:1], 20, 0))
    phi = rng.normal(0.15, 0.02, 20)
    lam = rng.normal(1.0, 0.1, 20)
    tables = {
        "real": _morph_table(tmp_path / "r.csv", phi, lam),
        "good": _morph_table(tmp_path / "g.csv", phi + 0.01, lam * 1.1),
        "collapsed": _morph_table(tmp_path / "c.csv", phi + 0.05, lam * 1.5),
    }
    tiles = {
        "real": tmp_path / "real.npy",
        "good": tmp_path / "good.npy",
        "collapsed": tmp_path / "collapsed.npy",
    }
    out = compare_morphology(
        tables, tiles, tmp_path / "d.csv", "real", spectra_out=tmp_path / "s.npz"
    )
    met = out.set_index(["dataset", "descriptor"]).meets_target
    assert (
        met["good", "porosity"] and met["good", "correlation_length"] and met["good", "diversity"]
    )
    assert not met["collapsed", "porosity"] and not met["collapsed", "correlation_length"]
    assert not met["collapsed", "diversity"]
    assert met["good", "power_spectrum"]  # white noise against white noise
    spectra = np.load(tmp_path / "s.npz")
    assert list(spectra["names"]) == ["real", "good", "collapsed"]
    assert spectra["power"].shape == (3, 4) and spectra["frequency"][-1] == 0.5  # Nyquist
    assert pd.read_csv(tmp_path / "d.csv").shape[0] == 22  # 11 descriptors a set
    noise = out.set_index(["dataset", "descriptor"]).loc[("good", "detector_noise")]
    assert noise.mean_ratio == pytest.approx(1.0, abs=0.1)  # uniform noise on both sides
    assert noise.mean_real == pytest.approx(np.median(detector_noise_sd(real_tiles)))
    with pytest.raises(InputError, match="no table for the real set"):
        compare_morphology(tables, tiles, tmp_path / "d.csv", "missing")


def _pore_tiles(rng: np.random.Generator, hollow: bool) -> np.ndarray:
    """Tiles (N, 1, 32, 32): grey 0.7 solid, one dark square pore each (grey 0.1); hollow pores
    have a light core (0.3) inside a dark rim, below the Otsu level, so porosity is the same."""
    tiles = np.full((12, 1, 32, 32), 0.7, np.float32)
    for t in tiles:
        y, x = rng.integers(4, 16, 2)
        t[0, y : y + 12, x : x + 12] = 0.1
        if hollow:
            t[0, y + 3 : y + 9, x + 3 : x + 9] = 0.3
    return tiles + rng.normal(0, 0.01, tiles.shape).astype(np.float32)


def test_compare_morphology_finds_hollow_pores_that_porosity_misses(tmp_path):
    rng = np.random.default_rng(4)
    sets = {"real": False, "flat": False, "hollow": True}
    tiles, tables = {}, {}
    for name, hollow in sets.items():
        np.save(tmp_path / f"{name}.npy", _pore_tiles(rng, hollow))
        tiles[name] = tmp_path / f"{name}.npy"
        tables[name] = _morph_table(tmp_path / f"{name}.csv", np.full(12, 144 / 1024), np.ones(12))
    out = compare_morphology(tables, tiles, tmp_path / "d.csv", "real", smooth_sigma=0.0)
    rows = out.set_index(["dataset", "descriptor"])
    assert rows.meets_target["flat", "porosity"] and rows.meets_target["hollow", "porosity"]
    assert rows.wasserstein["flat", "pore_grey"] < 0.01 and rows.meets_target["flat", "pore_grey"]
    # 36 of the 100 interior pixels of a hollow pore are 0.2 lighter: W1 = 0.36 x 0.2 = 0.072
    assert rows.wasserstein["hollow", "pore_grey"] == pytest.approx(0.072, abs=0.004)
    assert not rows.meets_target["hollow", "pore_grey"]
    assert rows.mean_difference["hollow", "pore_grey"] > 0  # lighter pores
    compare_morphology(tables, tiles, tmp_path / "d.csv", "real", smooth_sigma=0.0,
                       spectra_out=tmp_path / "s.npz")  # fmt: skip
    curves = np.load(tmp_path / "s.npz")
    assert list(curves["pore_grey_names"]) == ["real", "flat", "hollow"]
    edges = curves["pore_grey_edges"]
    core = (edges[:-1] >= 0.25) & (edges[1:] <= 0.35)  # the hollow cores' bins (0.3 ± 5 σ)
    mass = (curves["pore_grey_density"] * np.diff(edges))[:, core].sum(axis=1)
    assert mass[0] == 0 and mass[2] == pytest.approx(0.36, abs=0.02)
    specks = np.full((12, 1, 32, 32), 0.7, np.float32)
    specks[:, :, ::4, ::4] = 0.1  # pores of one pixel: no interior to compare
    np.save(tmp_path / "specks.npy", specks)
    tiles["hollow"] = tmp_path / "specks.npy"
    out = compare_morphology(tables, tiles, tmp_path / "d.csv", "real", smooth_sigma=0.0)
    assert not out.set_index(["dataset", "descriptor"]).meets_target["hollow", "pore_grey"]


def test_tile_set_mismatch_sums_the_targets_in_widths_of_their_tolerances():
    rng = np.random.default_rng(4)
    real, hollow = _pore_tiles(rng, False), _pore_tiles(rng, True)
    same = tile_set_mismatch(real, real, smooth_sigma=0.0)
    assert set(same) == {*MISMATCH_TOLERANCES, "score"} and same["score"] == 0
    m = tile_set_mismatch(real, hollow, smooth_sigma=0.0)
    assert m["porosity_difference"] < 0.001  # as many pore pixels, but lighter ones
    assert m["pore_grey"] == pytest.approx(0.072, abs=0.004)  # as compare_morphology finds
    assert m["score"] == pytest.approx(sum(m[k] / t for k, t in MISMATCH_TOLERANCES.items()))
    assert m["score"] > m["pore_grey"] / 0.03 > 2
    copies = tile_set_mismatch(real, np.repeat(real[:1], 12, 0), smooth_sigma=0.0)
    assert copies["diversity_shortfall"] == 1.0 and copies["score"] > 10  # one tile, 12 times
    # the real side measured once gives the same numbers; other tolerances weigh them anew
    described = describe_tile_set(real, smooth_sigma=0.0)
    assert tile_set_mismatch(described, hollow, smooth_sigma=0.0) == m
    with pytest.raises(ValueError, match="described with"):
        tile_set_mismatch(described, hollow, smooth_sigma=1.0)
    wide = {k: 2 * t for k, t in MISMATCH_TOLERANCES.items()}
    halved = tile_set_mismatch(described, hollow, smooth_sigma=0.0, tolerances=wide)
    assert halved["score"] == pytest.approx(m["score"] / 2)


def test_mismatch_tolerances_are_the_configured_targets():
    import yaml
    from helpers import ROOT

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    compare = config["porous"]["compare"]
    assert mismatch_tolerances(compare, 0.15) == pytest.approx(MISMATCH_TOLERANCES)
    looser = mismatch_tolerances(
        {**compare, "diversity_ratio": 0.7, "porosity_tolerance": 0.03}, 0.2
    )
    assert looser["diversity_shortfall"] == pytest.approx(0.3)
    assert looser["porosity_difference"] == 0.03 and looser["ks_correlation_length"] == 0.2


def test_pore_interior_grey_keeps_the_pixels_a_margin_inside_each_pore():
    from matgen.metrics.morphology import pore_interior_grey

    images = np.full((2, 9, 9), 0.8)
    pores = np.zeros((2, 9, 9), bool)
    pores[:, 2:7, 2:7] = True
    pores[1, 0, :] = True  # a pore on one image's edge row: no interior
    images[pores] = 0.1
    images[:, 4, 4] = 0.5
    inner = pore_interior_grey(images, pores)
    assert len(inner) == 18 and sorted(inner)[-2:] == [0.5, 0.5]  # 3 x 3 per image
    assert len(pore_interior_grey(images, pores, margin=0)) == 2 * 25 + 9
    assert len(pore_interior_grey(images, pores, margin=2)) == 2
    with pytest.raises(ValueError, match="differ in shape"):
        pore_interior_grey(images[:1], pores)


def test_pore_rim_contrast_measures_a_halo_around_the_pores():
    from matgen.metrics.morphology import pore_rim_contrast

    images = np.full((3, 32, 32), 0.6)
    pores = np.zeros((3, 32, 32), bool)
    pores[:, 4:10, 4:10] = True
    images[pores] = 0.1
    images[1, 2:12, 2:12][~pores[1, 2:12, 2:12]] = 0.7  # a 2-px halo 0.1 lighter
    pores[2] = True  # all pore: no solid to measure
    rim = pore_rim_contrast(images, pores)
    # image 1: the 1-3 px ring holds the halo's outer px (0.7) and 1 px of plain solid (0.6)
    halo_share = (10**2 - 8**2) / (12**2 - 8**2)  # dilation 1 -> 8 x 8, 3 -> 12 x 12
    assert rim[0] == pytest.approx(0) and rim[1] == pytest.approx(0.1 * halo_share)
    assert np.isnan(rim[2])
    with pytest.raises(ValueError, match="inner < outer < far"):
        pore_rim_contrast(images, pores, inner=3, outer=3)


def test_compare_morphology_scores_bright_pore_rims(tmp_path):
    from scipy import ndimage

    rng = np.random.default_rng(5)
    tiles, tables = {}, {}
    for name in ("real", "halo"):
        t = _pore_tiles(rng, False)
        if name == "halo":  # a 2-px rim 0.15 lighter around each pore
            dark = t[:, 0] < 0.3
            ring = ndimage.binary_dilation(dark, np.ones((1, 5, 5), bool)) & ~dark
            t[:, 0][ring] += 0.15
        np.save(tmp_path / f"{name}.npy", t)
        tiles[name] = tmp_path / f"{name}.npy"
        tables[name] = _morph_table(tmp_path / f"{name}.csv", np.full(12, 144 / 1024), np.ones(12))
    tables["copy"], tiles["copy"] = tables["real"], tiles["real"]
    rows = compare_morphology(tables, tiles, tmp_path / "d.csv", "real", smooth_sigma=0.0)
    rows = rows.set_index(["dataset", "descriptor"])
    assert rows.mean_difference["copy", "pore_rim"] == 0 and rows.meets_target["copy", "pore_rim"]
    assert rows.mean_difference["halo", "pore_rim"] > 0.05
    assert not rows.meets_target["halo", "pore_rim"]
    assert rows.meets_target["halo", "porosity"]  # the porosity does not see it


def test_bright_rim_share_counts_one_sided_specks_that_a_rims_mean_misses():
    from matgen.metrics.morphology import bright_rim_share, far_solid_level, pore_rim_contrast

    images = np.full((2, 32, 32), 0.6)
    images[:, 24:, 24:] = np.linspace(0.5, 0.7, 64).reshape(8, 8)  # far solid, 0.5 .. 0.7
    pores = np.zeros((2, 32, 32), bool)
    pores[:, 6:12, 6:12] = True
    images[pores] = 0.1
    far = np.ones((32, 32), bool)
    far[: 12 + 8, : 12 + 8] = False  # within 8 px (chessboard) of the pore at 6..11
    assert far_solid_level(images, pores, 99.0, far=8) == np.percentile(images[:, far], 99.0)
    assert 0.65 < far_solid_level(images, pores, 99.0, far=8) < 0.7  # in the graded block
    ring = np.zeros((32, 32), bool)
    ring[5:13, 5:13] = True
    ring[6:12, 6:12] = False
    speck = images[1].copy()  # a bright speck on one side, a darker strip on the other
    speck[5, 6:12], speck[12, 6:12] = 0.9, 0.3
    images[1] = speck
    band = 10**2 - 6**2  # 2 px round the 6 x 6 pore
    share = bright_rim_share(images, pores, 0.7, outer=2)
    assert share == pytest.approx(6 / (2 * band))  # the 6 speck pixels of the pooled band
    assert bright_rim_share(images[:1], pores[:1], 0.7) == 0
    # the rim's mean sees the speck and the strip cancel
    rims = pore_rim_contrast(images, pores, inner=0)
    assert rims[1] == pytest.approx(rims[0], abs=1e-9)
    assert np.isnan(bright_rim_share(images, np.zeros_like(pores), 0.7))
    with pytest.raises(ValueError, match="at least 1 px"):
        bright_rim_share(images, pores, 0.7, outer=0)


def test_compare_morphology_scores_bright_specks_beside_pores(tmp_path):
    rng = np.random.default_rng(6)
    tiles, tables = {}, {}
    for name in ("real", "specks"):
        t = _pore_tiles(rng, False)
        t[:, 0, 26:, 26:] += np.linspace(-0.1, 0.1, 36).reshape(6, 6)  # a far solid to rank
        for i, tile in enumerate(t[:, 0]):  # the real: a bright pixel beside every 3rd pore
            y, x = np.argwhere(tile < 0.3).min(0)
            if i % 3 == 0:
                tile[y - 1, x] = 0.95
            if name == "specks":  # a bright 2 x 4 speck above each pore
                tile[y - 2 : y, x : x + 4] = 0.95
        np.save(tmp_path / f"{name}.npy", t)
        tiles[name] = tmp_path / f"{name}.npy"
        tables[name] = _morph_table(tmp_path / f"{name}.csv", np.full(12, 144 / 1024), np.ones(12))
    tables["copy"], tiles["copy"] = tables["real"], tiles["real"]
    rows = compare_morphology(
        tables, tiles, tmp_path / "d.csv", "real", smooth_sigma=0.0, rim_speck_ratio=2.0
    ).set_index(["dataset", "descriptor"])
    assert rows.mean_ratio["copy", "pore_rim_specks"] == pytest.approx(1.0)
    assert rows.meets_target["copy", "pore_rim_specks"]
    assert rows.mean_ratio["specks", "pore_rim_specks"] > 2
    assert not rows.meets_target["specks", "pore_rim_specks"]
    assert rows.target["specks", "pore_rim_specks"] == "ratio ≤ 2.0"
    from matgen.pipeline.porous import _share_ratio

    # real tiles without a speck: none is as real, any is infinitely many; no pores: unmeasured
    assert _share_ratio(0.0, 0.0) == 1 and _share_ratio(0.01, 0.0) == np.inf
    assert np.isnan(_share_ratio(np.nan, 0.01)) and np.isnan(_share_ratio(0.0, np.nan))


def _compare_with_a_copy(tmp_path, sets: dict, porosity: float, **targets) -> pd.DataFrame:
    """:func:`compare_morphology` of tile sets (12 tiles each, ``real`` first) plus a copy of
    the real set, unsmoothed; its rows indexed by (dataset, descriptor)."""
    tiles, tables = {}, {}
    for name, t in sets.items():
        np.save(tmp_path / f"{name}.npy", t)
        tiles[name] = tmp_path / f"{name}.npy"
        tables[name] = _morph_table(tmp_path / f"{name}.csv", np.full(12, porosity), np.ones(12))
    tables["copy"], tiles["copy"] = tables["real"], tiles["real"]
    out = compare_morphology(tables, tiles, tmp_path / "d.csv", "real", smooth_sigma=0.0, **targets)
    return out.set_index(["dataset", "descriptor"])


def test_compare_morphology_counts_tiles_holding_a_crack(tmp_path):
    """The real tiles hold a 1-px crack 20 px long in every other tile; a set of rounded pores
    alone holds none and misses the target, a copy of the real tiles meets it."""
    rng = np.random.default_rng(7)
    real = _pore_tiles(rng, False)
    real[::2, 0, 1, 4:24] = 0.1  # above every pore (they start at row 4)
    sets = {"real": real, "rounded": _pore_tiles(rng, False)}
    rows = _compare_with_a_copy(tmp_path, sets, 0.15, crack_ratio=2.0)
    assert rows.mean_real["copy", "cracks"] == 0.5 and rows.mean_ratio["copy", "cracks"] == 1
    assert rows.meets_target["copy", "cracks"]
    assert rows.mean_synthetic["rounded", "cracks"] == 0
    assert not rows.meets_target["rounded", "cracks"]
    assert rows.target["rounded", "cracks"] == "ratio in [0.5, 2]"


def test_compare_morphology_scores_how_round_the_pores_are(tmp_path):
    """The real tiles' pores are crosses (two 6 x 18 px bars; 4πA/P² about 0.5); discs of the same
    area are round (≈ 1) and miss the target, a copy of the real tiles meets it."""
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[:32, :32]
    crosses, discs = (np.full((12, 1, 32, 32), 0.7, np.float32) for _ in range(2))
    for cross, disc in zip(crosses, discs):
        y, x = rng.integers(4, 10, 2)
        cross[0, y + 6 : y + 12, x : x + 18] = cross[0, y : y + 18, x + 6 : x + 12] = 0.1
        cy, cx = rng.uniform(11, 21, 2)
        disc[0][(yy - cy) ** 2 + (xx - cx) ** 2 < 180 / np.pi] = 0.1
    sets = {"real": crosses, "discs": discs}
    rows = _compare_with_a_copy(tmp_path, sets, 0.14, pore_circularity_tolerance=0.05)
    assert rows.mean_real["copy", "pore_circularity"] < 0.6
    assert rows.mean_synthetic["discs", "pore_circularity"] > 0.9
    assert rows.mean_ratio["copy", "pore_circularity"] == 1
    assert rows.meets_target["copy", "pore_circularity"]
    assert rows.mean_ratio["discs", "pore_circularity"] > 1.1
    assert not rows.meets_target["discs", "pore_circularity"]
    assert rows.target["discs", "pore_circularity"] == "|ratio − 1| ≤ 0.05"


def test_translation_error_is_zero_when_the_translation_is_the_truth(tmp_path):
    rng = np.random.default_rng(3)
    truth = (rng.random((6, 1, 32, 32)) > 0.75).astype(np.float16) * 0.7 + 0.15
    ct = truth.astype(np.float32).reshape(6, 1, 8, 4, 8, 4).mean((3, 5)).astype(np.float16)
    meta = pd.DataFrame({"tile": range(6), "sample": "a", "pixel_size": 0.25})
    np.save(tmp_path / "truth.npy", truth)
    np.save(tmp_path / "ct.npy", ct)
    meta.to_csv(tmp_path / "truth_table.csv", index=False)
    meta.assign(pixel_size=1.0).to_csv(tmp_path / "ct_table.csv", index=False)
    table = morphology_of_tiles(
        tmp_path / "truth.npy",
        tmp_path / "truth_table.csv",
        tmp_path / "m.csv",
        tmp_path / "m.npz",
        tmp_path / "m_summary.csv",
        threshold=0.5,
        smooth_sigma=0,
        n_examples=3,
    )
    # what the figures draw comes from the stage: summary, autocovariance, example pores
    stats = pd.read_csv(tmp_path / "m_summary.csv").set_index("descriptor")
    assert stats.loc["porosity", "mean"] == pytest.approx(table.porosity.mean())
    assert stats.loc["porosity", "n"] == 6
    curves = np.load(tmp_path / "m.npz")
    assert np.allclose(curves["autocovariance"][:, 0], 1.0)  # f(0) = 1 for every tile
    assert list(curves["example_tiles"]) == [0, 2, 5]
    assert curves["example_pores"].mean(axis=(1, 2)) == pytest.approx(
        table.porosity.to_numpy()[[0, 2, 5]]
    )
    summary = translation_error(
        {"cyclegan_real_only": tmp_path / "m.csv", "cyclegan": tmp_path / "m.csv"},
        {"cyclegan_real_only": tmp_path / "m.npz", "cyclegan": tmp_path / "m.npz"},
        tmp_path / "m.csv",
        tmp_path / "m.npz",
        tmp_path / "ct.npy",
        tmp_path / "ct_table.csv",
        tmp_path / "per_tile.csv",
        tmp_path / "summary.csv",
        threshold=0.5,
        smooth_sigma=0,
    )
    row = summary.set_index("method").loc["cyclegan"]
    assert row.porosity_mae == 0 and row.s2_rmse == 0 and row.porosity_pearson_r == pytest.approx(1)
    assert row.porosity_slope == pytest.approx(1)
    bicubic = summary.set_index("method").loc["bicubic"]
    assert bicubic.n == 6 and bicubic.porosity_mae > 0  # blurred input loses the fine pores
    assert list(summary.method) == ["cyclegan_real_only", "cyclegan", "bicubic"]
    assert len(pd.read_csv(tmp_path / "per_tile.csv")) == 18

    def score(table: str, name: str, **kwargs) -> pd.DataFrame:
        return translation_error(
            {"cyclegan": tmp_path / table}, {"cyclegan": tmp_path / "m.npz"},
            tmp_path / "m.csv", tmp_path / "m.npz", tmp_path / "ct.npy",
            tmp_path / "ct_table.csv", tmp_path / f"per_tile_{name}.csv",
            tmp_path / f"summary_{name}.csv", threshold=0.5, smooth_sigma=0, **kwargs,
        ).set_index("method")  # fmt: skip

    # a translation with half the truth's porosity differences around the same mean
    squeezed = pd.read_csv(tmp_path / "m.csv")
    squeezed["porosity"] = 0.5 * (squeezed.porosity + squeezed.porosity.mean())
    squeezed.to_csv(tmp_path / "squeezed.csv", index=False)
    half = score("squeezed.csv", "squeezed")
    assert half.loc["cyclegan", "porosity_slope"] == pytest.approx(0.5)
    assert half.loc["cyclegan", "porosity_pearson_r"] == pytest.approx(1)  # r cannot tell
    # the micro-CT's own reading (pore 0.15, solid 0.85 here): the block means hold the porosity
    read = score("m.csv", "read", microct_levels=[0.15, 0.85])
    assert list(read.index) == ["cyclegan", "bicubic", "microct_reading"]
    reading = read.loc["microct_reading"]
    assert reading.porosity_mae < 2e-3 and reading.porosity_slope == pytest.approx(1, abs=0.01)
    assert np.isnan(reading.s2_rmse)  # porosity only


def test_pore_layout_share_tells_a_latent_that_places_pores_from_noise_that_does():
    from matgen.metrics.distributions import latent_share_of_variance
    from matgen.pipeline.porous import pore_layout_share

    rng = np.random.default_rng(0)
    by_latent = np.broadcast_to(rng.random((20, 1, 16, 16)) > 0.5, (20, 8, 16, 16))
    by_noise = rng.random((20, 8, 16, 16)) > 0.5
    assert latent_share_of_variance(by_latent) == pytest.approx(1.0)
    assert latent_share_of_variance(by_noise) == pytest.approx(1 / 8, abs=0.02)  # chance: 1/n
    assert np.isnan(latent_share_of_variance(np.zeros((3, 2, 4))))
    with pytest.raises(ValueError, match="n_latents >= 2"):
        latent_share_of_variance(np.zeros((1, 4, 4)))
    torch.manual_seed(0)
    G = Generator(16, z_dim=8, w_dim=8, n_mapping=1, channel_base=64, channel_max=16).eval()
    quiet = pore_layout_share(G, 5, smooth_sigma=0)  # noise strengths start at 0: z only
    assert quiet == {"latent_share": pytest.approx(1.0), "n_latents": 24, "n_noise": 8}
    for layer in [G.conv1, *G.convs]:
        layer.noise_strength.data.fill_(30.0)  # noise far stronger than the styles
    assert pore_layout_share(G, 5, smooth_sigma=0)["latent_share"] < 0.3


def test_sampled_tiles_are_regenerated_from_their_seed_in_the_table(tmp_path):
    torch.manual_seed(0)
    cfg = dict(
        resolution=8, z_dim=8, w_dim=8, n_mapping=1, channel_base=32, channel_max=8, img_channels=1
    )
    G = Generator(**cfg)
    for layer in [G.conv1, *G.convs]:  # noise strengths start at 0: let the noise matter
        layer.noise_strength.data.fill_(1.0)
    save_checkpoint(
        tmp_path / "g.pt",
        step=1,
        model_config=cfg,
        include_rng=False,
        G_ema=G.state_dict(),
        family="stylegan2",
    )
    pd.DataFrame({"pixel_size": [0.25]}).to_csv(tmp_path / "real.csv", index=False)
    table = sample_stylegan2(
        tmp_path / "g.pt",
        tmp_path / "real.csv",
        tmp_path / "t.npy",
        tmp_path / "t.csv",
        n=10,
        seed=40,
        batch_size=4,
        device="cpu",
    )
    tiles = np.load(tmp_path / "t.npy")
    assert tiles.shape == (10, 1, 8, 8) and tiles.dtype == np.float16
    assert list(table.seed) == list(range(40, 50)) and (table.pixel_size == 0.25).all()
    G = load_stylegan2(tmp_path / "g.pt")
    again = generate(G, np.array([table.seed[7]]))
    np.testing.assert_allclose(tiles[7].astype(np.float32), again[0], atol=1e-3)
    # the tile's per-pixel noise comes from its seed too: other noise, another tile
    other_noise = generate(G, np.array([table.seed[7]]), noise_seeds=np.array([table.seed[6]]))
    assert np.abs(other_noise[0] - again[0]).max() > 0.01
    with pytest.raises(InputError, match="n must be at least 1"):
        sample_stylegan2(
            tmp_path / "g.pt", tmp_path / "real.csv", tmp_path / "t.npy", tmp_path / "t.csv", n=0
        )


def test_detector_noise_sd_reads_the_noise_of_smooth_and_sem_like_images():
    from matgen.metrics.spectra import detector_noise_sd
    from matgen.synth.porous import render_sem

    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 1, 48)[None, :, None] + np.linspace(0, 0.5, 48)[None, None, :]
    for sd in (0.01, 0.05):
        noisy = ramp + sd * rng.standard_normal((4, 48, 48))
        assert detector_noise_sd(noisy) == pytest.approx([sd] * 4, rel=0.06)  # a plane: exact
    assert detector_noise_sd(ramp[0]) == pytest.approx(0.0, abs=1e-12)  # no noise, no reading
    # the embedded SEM renderer: pores with bright rims, 0.7 px blur, then noise of sd 0.03
    pores = np.zeros((64, 64), bool)
    pores[10:30, 12:40] = True
    sem = np.stack([render_sem(pores, 0.03, rng) for _ in range(3)])
    assert detector_noise_sd(sem) == pytest.approx([0.03] * 3, rel=0.1)
    assert detector_noise_sd(sem[:, None]).shape == (3,)
    with pytest.raises(ValueError, match="at least 3 x 3"):
        detector_noise_sd(np.zeros((2, 2)))


def test_power_spectra_tell_speckle_and_smoothing_from_the_real_texture():
    from scipy import ndimage

    from matgen.metrics.spectra import radial_power_spectrum, spectrum_log_ratio

    rng = np.random.default_rng(5)
    real = ndimage.gaussian_filter(rng.standard_normal((32, 32, 32)), (0, 2, 2))
    same = ndimage.gaussian_filter(rng.standard_normal((32, 32, 32)), (0, 2, 2))
    speckled = same + 0.05 * rng.standard_normal(same.shape)
    smooth = ndimage.gaussian_filter(same, (0, 2, 2))
    frequency, p_real = radial_power_spectrum(real, pixel_size=0.5)
    assert len(frequency) == 16 and frequency[-1] == pytest.approx(1.0)  # Nyquist, 1/(2 px)
    ratio = {k: spectrum_log_ratio(p_real, radial_power_spectrum(v)[1])
             for k, v in (("same", same), ("speckled", speckled), ("smooth", smooth))}  # fmt: skip
    assert np.abs(ratio["same"]).max() < 0.1
    assert ratio["speckled"][-4:].min() > 1  # ten times the power near Nyquist
    assert ratio["speckled"][:3].max() < 0.1  # and the coarse structure untouched
    assert ratio["smooth"].min() < -2 and ratio["smooth"][0] > -0.5  # fine texture gone
    # a flat image has no texture; spectra of a constant set are zero, not NaN
    assert np.all(radial_power_spectrum(np.ones((2, 8, 8)))[1] == 0)


def test_sample_panels_cut_every_tile_at_the_real_tiles_level(tmp_path):
    """φ printed on the samples figure: every panel at one grey level, the real tiles' Otsu
    level, so a pore-free tile reads ~0 — its own Otsu level split its solid into two phases."""
    torch.manual_seed(0)
    cfg = dict(
        resolution=8, z_dim=8, w_dim=8, n_mapping=1, channel_base=32, channel_max=8, img_channels=1
    )
    save_checkpoint(tmp_path / "g.pt", step=1, model_config=cfg, include_rng=False,
                    G_ema=Generator(**cfg).state_dict(), family="stylegan2")  # fmt: skip
    rng = np.random.default_rng(0)
    real = np.full((8, 1, 8, 8), 0.8, np.float32) + 0.02 * rng.standard_normal((8, 1, 8, 8))
    real[:4, :, 2:5, 2:5] = 0.1  # pores in half of the tiles; the others solid with noise
    np.save(tmp_path / "real.npy", real.astype(np.float16))
    table = stylegan2_panels(tmp_path / "g.pt", tmp_path / "real.npy", tmp_path / "p.npz",
                             tmp_path / "t.csv", seed=3, n_columns=8, smooth_sigma=0.0)  # fmt: skip
    shown = table[table.row == "real"].set_index("id").porosity
    assert np.allclose(shown[shown.index < 4], 9 / 64)  # the pores, and only them
    assert (shown[shown.index >= 4] < 0.02).all()  # solid tiles: no pores, not half their pixels
    assert table[table.row != "real"].porosity.dropna().between(0, 1).all()
