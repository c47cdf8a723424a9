"""Morphology metrics against values known exactly or computed by hand."""

import numpy as np
import pytest

from matgen.metrics.morphology import (
    axis_aligned_boundary_fraction,
    correlation_length,
    particle_shapes,
    porosity,
    radial_average,
    specific_surface_area,
    two_point_correlation,
    two_point_correlation_map,
)
from matgen.synth.fields import poisson_line_mosaic


def brute_force_s2_map(im, r_max):
    """Direct sum over all pixel pairs inside the image: the definition of unbiased S2."""
    h, w = im.shape
    out = np.zeros((2 * r_max + 1, 2 * r_max + 1))
    for dy in range(-r_max, r_max + 1):
        for dx in range(-r_max, r_max + 1):
            a = im[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            b = im[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            out[dy + r_max, dx + r_max] = (a & b).mean()
    return out


def test_porosity_single_and_batch():
    im = np.zeros((2, 4, 4), bool)
    im[0, :2] = True  # 8 of 16
    im[1, 0, 0] = True  # 1 of 16
    assert porosity(im[0]) == 0.5
    np.testing.assert_allclose(porosity(im), [0.5, 1 / 16])


def test_s2_at_zero_is_porosity(rng):
    im = rng.random((3, 40, 50)) < 0.3
    r, s2 = two_point_correlation(im)
    assert r[0] == 0
    np.testing.assert_allclose(s2[:, 0], porosity(im), atol=1e-12)


def test_s2_tends_to_porosity_squared_for_random_medium(rng):
    im = rng.random((256, 256)) < 0.25
    r, s2 = two_point_correlation(im, r_max=20)
    phi = porosity(im)
    # independent pixels: S2(r>0) = phi^2 up to sampling noise (~sqrt(phi^2(1-phi^2)/N) per lag)
    np.testing.assert_allclose(s2[1:], phi**2, atol=2.5e-3)


def test_nonperiodic_map_equals_brute_force(rng):
    im = rng.random((17, 23)) < 0.4
    np.testing.assert_allclose(
        two_point_correlation_map(im, r_max=6), brute_force_s2_map(im, 6), atol=1e-12
    )


def test_stripes_periodic_by_hand():
    # vertical stripes, period 4, two pixels wide: S2 depends on dx only
    # dx mod 4 = 0 -> 1/2, 1 -> 1/4, 2 -> 0, 3 -> 1/4
    im = np.zeros((16, 16), bool)
    im[:, (np.arange(16) % 4) < 2] = True
    s2 = two_point_correlation_map(im, periodic=True, r_max=4)
    by_dx = {0: 0.5, 1: 0.25, 2: 0.0, 3: 0.25, 4: 0.5}
    for dx in range(-4, 5):
        np.testing.assert_allclose(s2[:, dx + 4], by_dx[abs(dx)])
    r, radial = two_point_correlation(im, periodic=True, r_max=4)
    # ring r=1: (0,+-1) -> 1/4 each, (+-1,0) -> 1/2 each, and (+-1,+-1) at |d|=1.41 -> 1/4
    # each (4 vectors). Mean of 8 vectors: (2*0.25 + 2*0.5 + 4*0.25) / 8 = 0.3125
    assert radial[1] == pytest.approx(0.3125)


def test_checkerboard_periodic_by_hand():
    yy, xx = np.mgrid[0:8, 0:8]
    im = (yy + xx) % 2 == 0
    s2 = two_point_correlation_map(im, periodic=True, r_max=2)
    assert s2[2, 3] == 0.0 and s2[3, 2] == 0.0  # nearest neighbours differ
    assert s2[3, 3] == 0.5 and s2[2, 4] == 0.5  # (1, 1) and (0, 2) are the same colour
    # ring r=1 holds 4 axial (0) and 4 diagonal (1/2) vectors
    r, radial = radial_average(s2)
    assert radial[1] == pytest.approx(0.25)


def test_specific_surface_area_of_disk():
    n, radius, pixel = 401, 80.0, 0.5
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    disk = np.hypot(yy, xx) <= radius
    expected = 2 * np.pi * radius * pixel / (n * pixel) ** 2  # perimeter / area, 1/unit
    assert specific_surface_area(disk, pixel_size=pixel) == pytest.approx(expected, rel=0.01)


def test_specific_surface_area_of_stripes_by_hand():
    # vertical stripes 2 px wide on a 16-px period: 8 interfaces of length 16 in 16 x 16 px.
    # True L_A = 8*16/256 = 0.5 per px; the isotropic estimator is calibrated for random
    # orientations, so for one orientation it returns (pi/2) * P_L averaged over 4 directions:
    # P_L(0 deg) = 7/15 (7 changes per 15 pairs), P_L(90 deg) = 0,
    # P_L(+-45 deg) = 7/15 / sqrt(2) each.
    im = np.zeros((16, 16), bool)
    im[:, (np.arange(16) % 4) < 2] = True
    p_l = (7 / 15 + 0 + 2 * (7 / 15) / np.sqrt(2)) / 4
    assert specific_surface_area(im) == pytest.approx(np.pi / 2 * p_l)


def test_correlation_length_exact_curve():
    r = np.arange(60, dtype=float)
    phi, lam = 0.2, 7.5
    s2 = phi**2 + (phi - phi**2) * np.exp(-r / lam)
    assert correlation_length(r, s2, phi) == pytest.approx(lam, rel=1e-5)


def test_correlation_length_recovered_from_exponential_medium():
    # Poisson line mosaic: S2 = phi^2 + (phi - phi^2) exp(-r/lam) exactly. Per-image estimates
    # scatter by ~10 % (few correlation areas per image), so average over an ensemble of 32.
    rng = np.random.default_rng(3)
    lam_true = 8.0
    ims = np.stack([poisson_line_mosaic((256, 256), lam_true, 0.3, rng) for _ in range(32)])
    r, s2 = two_point_correlation(ims, r_max=60)
    lam = correlation_length(r, s2, porosity(ims))
    assert lam.shape == (32,)
    assert np.mean(lam) == pytest.approx(lam_true, rel=0.05)


def test_correlation_length_of_single_phase_is_nan():
    r = np.arange(10.0)
    assert np.isnan(correlation_length(r, np.ones(10), 1.0))


def test_rejects_non_binary():
    with pytest.raises(ValueError, match="binary"):
        porosity(np.array([[0.5, 1.0], [0.0, 0.2]]))


def test_particle_shapes_of_discs_ellipses_and_cut_particles():
    yy, xx = np.mgrid[:64, :64]
    image = np.zeros((64, 64), bool)
    image[(yy - 16) ** 2 + (xx - 16) ** 2 <= 36] = True  # disc, radius 6
    image[((yy - 44) / 3.0) ** 2 + ((xx - 40) / 9.0) ** 2 <= 1] = True  # ellipse 9 x 3
    image[0:5, 50:56] = True  # cut by the border
    image[30, 3] = True  # one pixel: below min_area
    shapes = particle_shapes(image, pixel_size=0.5)
    assert len(shapes["area"]) == 2
    disc, ellipse = np.argsort(shapes["aspect_ratio"])[::-1]
    assert shapes["aspect_ratio"][disc] == pytest.approx(1.0, abs=0.02)
    assert shapes["aspect_ratio"][ellipse] == pytest.approx(1 / 3, abs=0.04)  # digitised
    assert shapes["circularity"][disc] == pytest.approx(1.0, abs=0.1)
    assert shapes["circularity"][ellipse] < 0.8 * shapes["circularity"][disc]
    # areas in unit²: the disc's 113 px (pi 6², digitised) at 0.5 per px
    assert shapes["area"][disc] == pytest.approx(0.25 * image[:24, :24].sum())
    assert shapes["equivalent_diameter"][disc] == pytest.approx(6.0, rel=0.05)
    batch = particle_shapes(np.stack([image, image]), exclude_border=False)
    assert len(batch["area"]) == 6  # both images, the cut particle now counted


def test_axis_aligned_boundary_fraction_by_hand_and_lattice_vs_voronoi():
    from matgen.synth.polysilicon import grain_boundaries, voronoi_grains

    b = np.zeros((20, 20), bool)
    b[5, 2:10] = True  # a horizontal run of 8: counts
    b[12, 0:4] = True  # a run of 4: too short
    b[:, 15] = True  # a vertical run of 20 (crossing nothing)
    assert axis_aligned_boundary_fraction(b) == pytest.approx((8 + 20) / 32)
    lattice = np.zeros((64, 64), bool)
    lattice[::8, :] = lattice[:, ::8] = True  # square grains of 7 px
    rng = np.random.default_rng(0)
    voronoi = np.stack([grain_boundaries(voronoi_grains(64, 60, rng)) for _ in range(4)])
    random_share = axis_aligned_boundary_fraction(voronoi)
    assert random_share.shape == (4,)
    assert axis_aligned_boundary_fraction(lattice) == pytest.approx(1.0)
    assert (random_share < 0.6).all()
    assert np.isnan(axis_aligned_boundary_fraction(np.zeros((8, 8), bool)))


def test_fit_to_truth_gives_r_and_the_slope_r_cannot_show():
    from matgen.metrics.regression import fit_to_truth

    true = np.array([0.1, 0.2, 0.3, 0.4])
    squeezed = fit_to_truth(0.5 * true + 0.1, true)  # every value pulled halfway to 0.2
    assert squeezed["pearson_r"] == pytest.approx(1) and squeezed["slope"] == pytest.approx(0.5)
    # by hand: dx = ±0.15, ±0.05; dy = −0.13, −0.07, 0.08, 0.12; Σdx·dy / Σdx² = 0.045 / 0.05
    est = np.array([0.12, 0.18, 0.33, 0.37])
    assert fit_to_truth(est, true)["slope"] == pytest.approx(0.9)
    assert np.isnan(fit_to_truth([0.2], [0.3])["slope"])
    assert np.isnan(fit_to_truth([0.1, 0.2], [0.3, 0.3])["pearson_r"])


def test_otsu_split_cuts_a_gap_in_its_middle_and_agrees_with_binned_otsu():
    from skimage.filters import threshold_otsu

    from matgen.data.threshold import otsu_split
    from matgen.errors import InputError

    # two clean populations: the cut sits midway in the gap between them
    assert otsu_split([0.1, 0.12, 0.15, 0.6, 0.62, 0.7]) == pytest.approx((0.15 + 0.6) / 2)
    # overlapping populations: where a fine histogram puts Otsu's level
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0.2, 0.08, 3000), rng.normal(0.7, 0.1, 1000)]
    assert otsu_split(x) == pytest.approx(threshold_otsu(x, nbins=4096), abs=0.01)
    # equal values never straddle the cut
    assert otsu_split([0.0, 0.0, 0.0, 1.0]) == 0.5
    with pytest.raises(InputError, match="two distinct values"):
        otsu_split([0.3, 0.3])


def test_crack_share_counts_sections_with_a_thin_long_stretch_of_pore():
    """A 1- or 2-px line 20 px long is a crack, a disc or a short jag is not; sections of the
    embedded medium hold cracks where it has fractures, hardly any where it has none."""
    from matgen.metrics.morphology import crack_share
    from matgen.synth.porous import porous_volume

    tiles = np.zeros((4, 32, 32), bool)
    tiles[0, 5, 4:24] = True  # a 1-px horizontal crack, 20 px
    tiles[1, np.arange(4, 24), np.arange(4, 24)] = True  # a diagonal one
    tiles[1, np.arange(4, 24), np.arange(5, 25)] = True  # ... 2 px wide
    yy, xx = np.mgrid[:32, :32]
    tiles[2] = (yy - 16) ** 2 + (xx - 16) ** 2 <= 36  # a disc
    tiles[3] = tiles[2]
    tiles[3, 16, 22:28] = True  # a disc with a 6-px jag: too short
    assert crack_share(tiles) == 0.5
    assert crack_share(tiles[:1], min_length=24) == 0.0  # major axis 4 sqrt(var) = 23.1 px
    wide = np.zeros((1, 32, 32), bool)
    wide[0, 5:9, 4:24] = True  # 4 px wide: a 3 x 3 opening keeps it, no thin part
    assert crack_share(wide) == 0.0
    with pytest.raises(ValueError):
        crack_share(tiles[0])

    def sections(fractures: float, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        slab = porous_volume((9, 128, 128), 0.15, 4.0, fractures, rng)
        return slab[4].reshape(2, 64, 2, 64).transpose(0, 2, 1, 3).reshape(4, 64, 64)

    fractured = np.concatenate([sections(30.0, seed) for seed in range(3)])
    intact = np.concatenate([sections(0.0, seed) for seed in range(3)])
    assert crack_share(fractured) >= 0.5 and crack_share(intact) <= 0.1
