"""Embedded STEM data: incoherent ADF-STEM images of monolayer 2H-WSe₂ with Se vacancies.

Imaging model (incoherent, e.g. Kirkland, *Advanced Computing in Electron Microscopy*, ch. 5):
the image is the projected object — one delta per atom column weighted by Σ Z^1.7 (W: 74, Se: 34;
a Se₂ column with one vacancy is a Se₁ column, with both Se missing an empty site, and a W
vacancy leaves its site empty) — convolved with the probe intensity |ψ(r)|², where
ψ is the inverse Fourier transform of the objective aperture times exp(−iχ(k)),
χ(k) = πλk²(½·Cs·λ²k² − Δf) (Δf > 0 underfocus), a Gaussian source-size blur and a small
thermal (Debye–Waller) blur. Dose noise is Poisson.

"Experimental" images are the same simulation plus what the training simulation lacks: slow-scan
drift (shear), fast-scan row jitter, a smooth background, amorphous contamination patches, lower
dose and correlated (amplifier) noise along the fast-scan direction. Their vacancy labels sit at
the drifted positions and are only used for scoring.

Lengths are in ångström (Å) unless a name ends in ``_px``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io import save_image, save_table

LATTICE_A = 3.28  # Å, in-plane lattice constant of 2H-WSe₂
Z_W, Z_SE = 74, 34
Z_EXPONENT = 1.7  # ADF intensity per atom ∝ Z^1.7 (Rutherford-like, screened)
BOND_PROJECTED = LATTICE_A / np.sqrt(3)  # W–Se₂ column distance in projection, 1.894 Å
# point-defect labels (Kröger–Vink style): one Se of a column missing, both, a W atom missing
VACANCY_TYPES = ("V_Se", "V_Se2", "V_W")


def electron_wavelength(kv: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV (80 kV: 0.0418 Å)."""
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    v = kv * 1e3
    return h / np.sqrt(2 * m0 * e * v * (1 + e * v / (2 * m0 * c**2))) * 1e10


def _frequencies(shape: tuple[int, int], pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
    ky = np.fft.fftfreq(shape[0], pixel_size)[:, None]
    kx = np.fft.fftfreq(shape[1], pixel_size)[None, :]
    return ky, kx


def probe_intensity(
    shape: tuple[int, int],
    pixel_size: float,
    *,
    kv: float = 80.0,
    aperture_mrad: float = 25.0,
    defocus: float = 0.0,
    cs_um: float = 0.0,
) -> np.ndarray:
    """Intensity |ψ(r)|² of the focused probe on a ``shape`` grid of ``pixel_size`` Å/px.

    Centred at pixel (0, 0) with periodic wrap-around (the layout FFT convolution wants); sums
    to 1. ``defocus`` in Å (> 0 underfocus), spherical aberration ``cs_um`` in µm. With no
    aberrations the full width at half maximum is the Airy value 0.51 λ/α.
    """
    lam = electron_wavelength(kv)
    ky, kx = _frequencies(shape, pixel_size)
    k2 = kx**2 + ky**2
    k_max = aperture_mrad * 1e-3 / lam
    if k_max > 0.5 / pixel_size:
        raise ValueError(
            f"pixel size {pixel_size} Å does not sample the {aperture_mrad} mrad "
            f"aperture (needs ≤ {0.5 / k_max:.3f} Å)"
        )
    chi = np.pi * lam * k2 * (0.5 * cs_um * 1e4 * lam**2 * k2 - defocus)
    psi = np.fft.ifft2(np.where(k2 <= k_max**2, np.exp(-1j * chi), 0.0))
    intensity = np.abs(psi) ** 2
    return intensity / intensity.sum()


def fwhm(profile: np.ndarray, pixel_size: float) -> float:
    """Full width at half maximum (Å) of a centred, peaked 1-D profile, by linear interpolation."""
    p = np.asarray(profile, float)
    c = int(np.argmax(p))
    half = p[c] / 2
    right = c + int(np.argmax(p[c:] < half))
    left = c - int(np.argmax(p[c::-1] < half))
    xr = right - 1 + (p[right - 1] - half) / (p[right - 1] - p[right])
    xl = left + 1 - (p[left + 1] - half) / (p[left + 1] - p[left])
    return float((xr - xl) * pixel_size)


def transfer_function(
    shape: tuple[int, int],
    pixel_size: float,
    *,
    kv: float = 80.0,
    aperture_mrad: float = 25.0,
    defocus: float = 0.0,
    cs_um: float = 0.0,
    source_fwhm: float = 0.6,
    thermal_rms: float = 0.08,
) -> np.ndarray:
    """Incoherent transfer function (rfft2 layout): FFT of the probe intensity times the
    Gaussian source-size (FWHM, Å) and thermal-vibration (rms, Å) envelopes."""
    probe = probe_intensity(
        shape, pixel_size, kv=kv, aperture_mrad=aperture_mrad, defocus=defocus, cs_um=cs_um
    )
    ky = np.fft.fftfreq(shape[0], pixel_size)[:, None]
    kx = np.fft.rfftfreq(shape[1], pixel_size)[None, :]
    sigma2 = (source_fwhm / 2.3548) ** 2 + thermal_rms**2
    return np.fft.rfft2(probe) * np.exp(-2 * np.pi**2 * sigma2 * (kx**2 + ky**2))


@dataclass
class Columns:
    """Projected atom columns: positions (x, y) in Å, kind ('W', 'Se2', 'Se1', 'empty' Se
    site, 'empty_W' site), the number of Se atoms missing (0 on W sites), the scattering weight
    Σ Z^1.7 and the vacancy type of :data:`VACANCY_TYPES` ('' for an intact column)."""

    xy: np.ndarray
    kind: np.ndarray
    missing: np.ndarray
    weight: np.ndarray
    vacancy_type: np.ndarray

    @property
    def vacancies(self) -> np.ndarray:
        """(V, 2) positions of the columns with a vacancy of any type."""
        return self.xy[self.vacancy_type != ""]


def wse2_columns(
    width: float,
    height: float,
    rng: np.random.Generator,
    *,
    vacancy_probability: float = 0.03,
    double_se_probability: float = 0.0,
    w_vacancy_probability: float = 0.0,
    rotation_deg: float | None = None,
    margin: float = 0.0,
) -> Columns:
    """Columns of a 2H-WSe₂ monolayer viewed along c covering [−margin, width + margin] ×
    [−margin, height + margin] Å, at a random in-plane rotation (unless given) and origin.

    Each of the two Se atoms of a Se₂ column is missing independently with
    ``vacancy_probability``, giving Se₁ columns (and, rarely, empty ones); on top of that a Se
    column loses both atoms with ``double_se_probability`` and a W column its atom with
    ``w_vacancy_probability`` (both per column; rarer than single Se vacancies in real WSe₂,
    set high enough in the embedded default that each type can be scored).
    """
    theta = np.deg2rad(rng.uniform(0, 60) if rotation_deg is None else rotation_deg)
    a1 = LATTICE_A * np.array([np.cos(theta), np.sin(theta)])
    a2 = LATTICE_A * np.array([np.cos(theta + np.pi / 3), np.sin(theta + np.pi / 3)])
    origin = rng.uniform(0, 1, 2) @ np.stack([a1, a2])
    # lattice indices covering the box: invert the basis at the four corners
    corners = (
        np.array(
            [
                [-margin, -margin],
                [width + margin, -margin],
                [-margin, height + margin],
                [width + margin, height + margin],
            ]
        )
        - origin
    )
    ij = corners @ np.linalg.inv(np.stack([a1, a2]))
    lo, hi = np.floor(ij.min(0)) - 1, np.ceil(ij.max(0)) + 1
    i, j = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = origin + i.reshape(-1, 1) * a1 + j.reshape(-1, 1) * a2
    w = cells
    se = cells + (a1 + a2) / 3

    def inside(p: np.ndarray) -> np.ndarray:
        return (
            (p[:, 0] >= -margin)
            & (p[:, 0] <= width + margin)
            & (p[:, 1] >= -margin)
            & (p[:, 1] <= height + margin)
        )

    w, se = w[inside(w)], se[inside(se)]
    missing_se = (rng.random((len(se), 2)) < vacancy_probability).sum(1)
    # further draws only when asked for, so that the single-vacancy structures stay the same
    if double_se_probability > 0:
        missing_se[rng.random(len(se)) < double_se_probability] = 2
    w_vacant = np.zeros(len(w), bool)
    if w_vacancy_probability > 0:
        w_vacant = rng.random(len(w)) < w_vacancy_probability
    n_se = 2 - missing_se
    xy = np.concatenate([w, se])
    kind = np.concatenate(
        [np.where(w_vacant, "empty_W", "W"), np.array(["empty", "Se1", "Se2"])[n_se]]
    ).astype(object)
    missing = np.concatenate([np.zeros(len(w), int), missing_se])
    weight = np.concatenate([(~w_vacant) * Z_W**Z_EXPONENT, n_se * Z_SE**Z_EXPONENT])
    vacancy_type = np.concatenate(
        [np.where(w_vacant, "V_W", ""), np.array(["V_Se2", "V_Se", ""])[n_se]]
    ).astype(object)
    return Columns(xy, kind, missing, weight.astype(float), vacancy_type)


def render_columns(
    xy_px: np.ndarray, weight: np.ndarray, shape: tuple[int, int], transfer: np.ndarray
) -> np.ndarray:
    """Projected columns (bilinear sub-pixel splatting of their weights) convolved with the
    transfer function; periodic, so pad the canvas where the border matters."""
    canvas = np.zeros(shape)
    x0, y0 = np.floor(xy_px[:, 0]).astype(int), np.floor(xy_px[:, 1]).astype(int)
    fx, fy = xy_px[:, 0] - x0, xy_px[:, 1] - y0
    for dy, dx, share in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < shape[0]) & (xx >= 0) & (xx < shape[1])
        np.add.at(canvas, (yy[ok], xx[ok]), (weight * share)[ok])
    return np.fft.irfft2(np.fft.rfft2(canvas) * transfer, s=shape)


def scan_row_jitter(image: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
    """Shift each scan row (fast scan along x) by its own sub-pixel amount, in Fourier space."""
    kx = np.fft.rfftfreq(image.shape[1])[None, :]
    spectrum = np.fft.rfft(image, axis=1) * np.exp(-2j * np.pi * kx * shifts_px[:, None])
    return np.fft.irfft(spectrum, n=image.shape[1], axis=1)


def ar1_series(n: int, rms: float, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) series of ``n`` values with the given rms and lag-1 correlation."""
    from scipy.signal import lfilter

    white = rng.standard_normal(n)
    white[1:] *= np.sqrt(1 - correlation**2)  # the first value already has unit variance
    return rms * lfilter([1.0], [1.0, -correlation], white)


def contamination(
    shape: tuple[int, int], pixel_size: float, coverage: float, rng: np.random.Generator
) -> np.ndarray:
    """Amorphous contamination thickness in [0, 1]: patches (~15 Å across) covering about
    ``coverage`` of the field with soft edges and a fine (~1 Å) amorphous texture."""
    if coverage <= 0:
        return np.zeros(shape)
    from .fields import gaussian_random_field

    blobs = gaussian_random_field(shape, 15.0 / pixel_size / 2, rng)
    level = np.quantile(blobs, 1 - coverage)
    patches = np.clip((blobs - level) / 0.5, 0, 1)  # soft edge over half a standard deviation
    texture = 1 + 0.5 * gaussian_random_field(shape, 1.0 / pixel_size, rng)
    return np.clip(patches * texture, 0, None)


def correlated_noise(
    shape: tuple[int, int], rms: float, length_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian noise low-pass filtered along the fast-scan rows (amplifier/detector afterglow:
    an exponential decay over ``length_px``), scaled to ``rms``."""
    from scipy.signal import lfilter

    white = rng.standard_normal(shape)
    if length_px > 0:
        decay = np.exp(-1 / length_px)
        white = lfilter([1.0], [1.0, -decay], white, axis=1)
    return rms * white / white.std()


def simulate_image(
    size: int,
    pixel_size: float,
    rng: np.random.Generator,
    *,
    vacancy_probability: float,
    kv: float,
    aperture_mrad: float,
    defocus: tuple[float, float],
    cs_um: tuple[float, float],
    source_fwhm: float,
    double_se_probability: float = 0.0,
    w_vacancy_probability: float = 0.0,
    counts_per_pixel: float | None = None,
    degrade: dict[str, Any] | None = None,
) -> tuple[np.ndarray, pd.DataFrame, dict[str, float]]:
    """One ``size``² ADF-STEM image of WSe₂ with its vacancy table and imaging parameters.

    The table has one row per vacancy: position (px and Å), ``type`` (:data:`VACANCY_TYPES`)
    and ``missing_se`` (Se atoms missing; 0 for a W vacancy).

    Without ``counts_per_pixel`` the image is the noiseless expected intensity scaled to a mean
    of 1; with it, Poisson counts of that mean. ``degrade`` (the experimental set) takes
    ``shear`` (drift, Δx per Å of y), ``jitter_rms`` (Å) and ``jitter_correlation`` of the row
    offsets, ``background`` (rms of a smooth field relative to the mean signal),
    ``contamination`` (coverage fraction) and ``contamination_signal`` (its intensity relative
    to the mean), ``readout_rms`` (correlated noise in counts) and ``readout_length_px``.
    """
    degrade = degrade or {}
    margin = 4.0  # Å of neighbours beyond the edge, so border columns see a full probe tail
    pad = int(np.ceil(margin / pixel_size))
    extent = size * pixel_size
    cols = wse2_columns(
        extent,
        extent,
        rng,
        vacancy_probability=vacancy_probability,
        double_se_probability=double_se_probability,
        w_vacancy_probability=w_vacancy_probability,
        margin=margin + abs(degrade.get("shear", 0.0)) * extent,
    )
    xy = cols.xy.copy()
    shear = float(degrade.get("shear", 0.0))
    xy[:, 0] = xy[:, 0] + shear * xy[:, 1]  # slow-scan drift: rows scanned later sit further in x
    df = float(rng.uniform(*defocus))
    cs = float(rng.uniform(*cs_um))
    shape = (size + 2 * pad, size + 2 * pad)
    transfer = transfer_function(
        shape,
        pixel_size,
        kv=kv,
        aperture_mrad=aperture_mrad,
        defocus=df,
        cs_um=cs,
        source_fwhm=source_fwhm,
    )
    image = render_columns(xy / pixel_size + pad, cols.weight, shape, transfer)
    image = np.clip(image[pad:-pad, pad:-pad], 0, None)
    image /= image.mean()
    params = {"defocus_angstrom": df, "cs_um": cs}
    if degrade:
        field = ndimage.zoom(rng.standard_normal((4, 4)), size / 4, order=3, mode="reflect")
        image = image + degrade.get("background", 0.0) * field / (field.std() + 1e-12)
        dirt = contamination((size, size), pixel_size, degrade.get("contamination", 0.0), rng)
        image = image + degrade.get("contamination_signal", 1.0) * dirt
        image = np.clip(image, 0, None)
        rows = ar1_series(
            size,
            degrade.get("jitter_rms", 0.0) / pixel_size,
            degrade.get("jitter_correlation", 0.5),
            rng,
        )
        image = np.clip(scan_row_jitter(image, rows), 0, None)
        params["contaminated_fraction"] = float((dirt > 0.1).mean())
    if counts_per_pixel is not None:
        image = rng.poisson(image * counts_per_pixel).astype(np.float32)
        if degrade.get("readout_rms", 0.0) > 0:
            image = image + correlated_noise(
                image.shape, degrade["readout_rms"], degrade.get("readout_length_px", 0.0), rng
            )
    vacant = cols.vacancy_type != ""
    vac = xy[vacant] / pixel_size
    keep = (vac[:, 0] >= 0) & (vac[:, 0] <= size - 1) & (vac[:, 1] >= 0) & (vac[:, 1] <= size - 1)
    missing = cols.missing[vacant][keep]
    types = cols.vacancy_type[vacant][keep].astype(str)
    vac = vac[keep]
    table = pd.DataFrame(
        {
            "x_px": vac[:, 0],
            "y_px": vac[:, 1],
            "x_angstrom": vac[:, 0] * pixel_size,
            "y_angstrom": vac[:, 1] * pixel_size,
            "type": types,
            "missing_se": missing,
        }
    )
    return image.astype(np.float32), table, params


def simulate_stem(
    out_dir: str | os.PathLike,
    *,
    seed: int,
    n_sim: int,
    n_exp: int,
    n_exp_test: int,
    size: int,
    pixel_size: float,
    vacancy_probability: float,
    double_se_probability: float = 0.0,
    w_vacancy_probability: float = 0.0,
    kv: float = 80.0,
    aperture_mrad: float = 25.0,
    defocus: tuple[float, float] = (-20.0, 20.0),
    cs_um: tuple[float, float] = (0.0, 10.0),
    source_fwhm: float = 0.6,
    exp: dict[str, Any],
) -> Path:
    """Write the STEM study's embedded-default images and return the sample sheet's path.

    Domains: ``sim`` (noiseless simulations, float32 NPY, with vacancy labels), ``exp``
    (degraded "experimental" images for the CycleGAN, labels not listed) and ``exp_test``
    (other degraded images, labelled, for scoring only). ``exp`` holds the degradation
    parameters of :func:`simulate_image` plus ``counts_per_pixel`` and, optionally, its own
    ``defocus`` / ``cs_um`` ranges. Each image's vacancies go to ``<name>_vacancies.csv``.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    optics = dict(
        kv=kv,
        aperture_mrad=aperture_mrad,
        source_fwhm=source_fwhm,
        vacancy_probability=vacancy_probability,
        double_se_probability=double_se_probability,
        w_vacancy_probability=w_vacancy_probability,
    )
    exp = dict(exp)
    exp_optics = dict(
        optics, defocus=tuple(exp.pop("defocus", defocus)), cs_um=tuple(exp.pop("cs_um", cs_um))
    )
    counts = float(exp.pop("counts_per_pixel"))
    rows = []
    for domain, n in (("sim", n_sim), ("exp", n_exp), ("exp_test", n_exp_test)):
        for i in range(n):
            name = f"{domain}_{i:03d}"
            if domain == "sim":
                image, vac, params = simulate_image(
                    size, pixel_size, rng, defocus=tuple(defocus), cs_um=tuple(cs_um), **optics
                )
            else:
                image, vac, params = simulate_image(
                    size, pixel_size, rng, counts_per_pixel=counts, degrade=exp, **exp_optics
                )
            save_image(out / f"{name}.npy", image)
            save_table(out / f"{name}_vacancies.csv", vac)
            rows.append(
                dict(
                    path=f"{name}.npy",
                    domain=domain,
                    pixel_size=pixel_size,
                    pixel_unit="angstrom",
                    sample=name,
                    points=f"{name}_vacancies.csv" if domain != "exp" else "",
                    **{f"label_{k}": round(v, 4) for k, v in params.items()},
                )
            )
    sheet = out / "samples.tsv"
    save_table(sheet, pd.DataFrame(rows))
    return sheet
