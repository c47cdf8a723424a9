"""Embedded porous data: porosity as configured, micro-CT consistent with its kept truth."""

import numpy as np
import pytest

from matgen.io import read_image, read_sample_sheet, to_unit_float
from matgen.synth.porous import porous_volume, render_microct, simulate_porous


def test_volume_porosity_and_fractures():
    rng = np.random.default_rng(0)
    plain = porous_volume((16, 96, 96), 0.15, 4.0, 0.0, rng)
    assert plain.mean() == pytest.approx(0.15, abs=0.002)
    cracked = porous_volume((16, 96, 96), 0.15, 4.0, 20.0, np.random.default_rng(0))
    assert cracked.mean() > plain.mean()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("porous")
    sheet = simulate_porous(
        out,
        n_sem=2,
        sem_size=96,
        n_microct=2,
        microct_size=24,
        factor=4,
        porosity=(0.15, 0.2),
        correlation_length=3.0,
        fractures_per_megavoxel=2.0,
        sem_pixel_size=0.25,
        sem_noise=0.03,
        microct_noise=0.02,
        seed=4,
    )
    return sheet, read_sample_sheet(sheet)


def test_sample_sheet_lists_all_domains(dataset):
    _, table = dataset
    assert table["domain"].value_counts().to_dict() == {"sem": 2, "microct": 2, "microct_truth": 2}
    ct = table[table.domain == "microct"]
    assert (ct["pixel_size"] == 1.0).all()


def test_sem_pores_are_dark_and_porosity_in_range(dataset):
    _, table = dataset
    for _, row in table[table.domain == "sem"].iterrows():
        image, mask = to_unit_float(read_image(row["path"])), read_image(row["mask"]).astype(bool)
        assert 0.1 < mask.mean() < 0.3
        assert image[mask].mean() < 0.3 < image[~mask].mean()


def test_microct_is_the_partial_volume_of_its_truth(dataset):
    _, table = dataset
    for sample in table[table.domain == "microct"]["sample"]:
        ct = table[(table.domain == "microct") & (table["sample"] == sample)].iloc[0]
        truth = table[(table.domain == "microct_truth") & (table["sample"] == sample)].iloc[0]
        grey = to_unit_float(read_image(ct["path"]))
        solid = 1.0 - read_image(truth["mask"]).astype(float)
        coarse = solid.reshape(24, 4, 24, 4).mean(axis=(1, 3))
        # one slice of the 4-slice block explains most of the coarse grey level ...
        assert np.corrcoef(grey.ravel(), coarse.ravel())[0, 1] > 0.6
        # ... and the grey level is the attenuation 0.2 + 0.6 x solid fraction, on average
        assert grey.mean() == pytest.approx(0.2 + 0.6 * solid.mean(), abs=0.03)


def test_microct_voxel_is_the_solid_fraction_of_its_block():
    # coarse voxel row 0: half of its 4 x 4 x 4 fine voxels are pore; row 1: all solid
    block = np.zeros((4, 8, 8), bool)
    block[:2, :4, :] = True
    image = render_microct(block, 4, 0.0, np.random.default_rng(0))
    assert image.shape == (2, 2)
    # the blur moves grey level between voxels but keeps the total (reflecting edges)
    assert image.mean() == pytest.approx(0.2 + 0.6 * (0.5 + 1.0) / 2, abs=1e-9)
    assert image[0].max() < image[1].min()  # the half-pore row stays darker
    assert np.allclose(image[:, 0], image[:, 1])  # no structure along x
