"""A user's own micrographs: volumes, mixed image sizes, pixel size from the microscope's file."""

import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest
import tifffile

from matgen.data.ingest import MASK_UNLABELLED, ingest_domain
from matgen.data.tiling import tile_domain
from matgen.errors import InputError
from matgen.io import read_image, read_sample_sheet, read_volume
from matgen.metrics.morphology import porosity, specific_surface_area, two_point_correlation
from matgen.microscopy import convert_length, pixel_size_from_metadata


def boolean_spheres(n: int, radius: float, density: float, seed: int) -> np.ndarray:
    """Pores = union of balls of ``radius`` voxels with Poisson centres (``density`` per voxel)
    in a periodic n³ box (no edge effects)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, n, (rng.poisson(density * n**3), 3))
    pores = np.zeros((n, n, n), bool)
    off = np.arange(-int(np.ceil(radius)) - 1, int(np.ceil(radius)) + 2)
    for c in centres:
        corner = np.floor(c)
        index = np.ix_(*[((corner[k] + off) % n).astype(int) for k in range(3)])
        d2 = sum(
            ((corner[k] + off + 0.5 - c[k]) ** 2).reshape([-1 if j == k else 1 for j in range(3)])
            for k in range(3)
        )
        pores[index] |= d2 <= radius**2
    return pores


def fei_tiff(path, image, pixel_width_m):
    text = (
        f"[User]\nUser=test\n[Scan]\nPixelWidth={pixel_width_m!r}\nPixelHeight={pixel_width_m!r}\n"
    )
    tifffile.imwrite(path, image, extratags=[(34682, "s", 0, text, True)])


# --- volumes: 3-D descriptors against the Boolean model's closed forms
N, R, RHO = 96, 8.0, 1.6e-4  # ~30 % porosity


@pytest.fixture(scope="module")
def spheres():
    return [boolean_spheres(N, R, RHO, seed) for seed in range(3)]


def test_porosity_and_surface_area_of_a_boolean_model_of_spheres(spheres):
    volume = 4 / 3 * np.pi * R**3
    phi = 1 - np.exp(-RHO * volume)
    s_v = RHO * 4 * np.pi * R**2 * np.exp(-RHO * volume)  # exposed sphere surface per volume
    measured_phi = np.mean([porosity(s, ndim=3) for s in spheres])
    measured_sv = np.mean(specific_surface_area(np.stack(spheres), pixel_size=0.5, ndim=3))
    assert measured_phi == pytest.approx(phi, rel=0.03)
    assert measured_sv * 0.5 == pytest.approx(s_v, rel=0.06)  # 1/µm at 0.5 µm voxels
    # counting voxel faces instead overestimates by about 3/2
    faces = np.mean([sum((np.diff(s, axis=k) != 0).mean() for k in range(3)) for s in spheres])
    assert 1.3 < faces / s_v < 1.6
    # a batch of 2-D slices still means what it did: a batch of images
    assert porosity(spheres[0][:4]).shape == (4,)


def test_two_point_correlation_of_a_volume_matches_the_boolean_model(spheres):
    r, s2 = two_point_correlation(np.stack(spheres), r_max=24, ndim=3)
    phi = 1 - np.exp(-RHO * 4 / 3 * np.pi * R**3)
    lens = np.where(r < 2 * R, np.pi * (4 * R + r) * (2 * R - r) ** 2 / 12, 0.0)
    expected = 2 * phi - 1 + (1 - phi) ** 2 * np.exp(RHO * lens)
    assert s2.shape == (3, 25)
    assert np.abs(s2.mean(0) - expected).max() < 0.02
    assert s2[:, 0] == pytest.approx([porosity(s, ndim=3) for s in spheres])


def test_morphology_command_reports_3d_descriptors_of_a_tiff_stack(spheres, tmp_path):
    stack = tmp_path / "scan.tif"
    grey = np.where(spheres[0], 40, 200).astype(np.uint8)  # dark pores
    tifffile.imwrite(
        stack, grey, imagej=True, resolution=(1 / 0.5, 1 / 0.5), metadata={"unit": "um"}
    )
    out = tmp_path / "m.csv"
    cmd = [sys.executable, "-m", "matgen.cli", "morphology", str(stack), "--smooth-sigma", "0"]
    result = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    row = pd.read_csv(out).iloc[0]
    assert row.dimensions == 3 and row.pixel_size == pytest.approx(0.5)  # from the ImageJ tags
    assert row.porosity == pytest.approx(porosity(spheres[0], ndim=3))
    assert row.specific_surface_area == pytest.approx(
        specific_surface_area(spheres[0], 0.5, ndim=3)
    )


# --- pixel size from the file
def test_pixel_size_from_fei_zeiss_and_imagej_tiffs(tmp_path, rng):
    image = rng.integers(0, 255, (16, 24), dtype=np.uint8)
    fei_tiff(tmp_path / "fei.tif", image, 2.5e-9)
    zeiss = "\r\n0\r\nAP_PIXEL_SIZE\r\nImage Pixel Size = 4.0 nm\r\n"
    tifffile.imwrite(tmp_path / "zeiss.tif", image, extratags=[(34118, "s", 0, zeiss, True)])
    tifffile.imwrite(tmp_path / "ij.tif", image, imagej=True, resolution=(4.0, 4.0),
                     metadata={"unit": "micron"})  # fmt: skip
    tifffile.imwrite(tmp_path / "plain.tif", image)
    assert pixel_size_from_metadata(tmp_path / "fei.tif", "nm") == pytest.approx(2.5)
    assert pixel_size_from_metadata(tmp_path / "zeiss.tif", "um") == pytest.approx(0.004)
    assert pixel_size_from_metadata(tmp_path / "ij.tif", "um") == pytest.approx(0.25)
    assert pixel_size_from_metadata(tmp_path / "plain.tif", "um") is None
    assert convert_length(2.0, "Å", "nm") == pytest.approx(0.2)
    with pytest.raises(InputError, match="unknown length unit 'furlong'"):
        convert_length(1, "furlong", "um")


def test_an_empty_pixel_size_cell_is_read_from_the_file_and_checked_against_it(tmp_path, rng):
    image = rng.integers(0, 255, (16, 16), dtype=np.uint8)
    fei_tiff(tmp_path / "a.tif", image, 5e-7)  # 0.5 µm
    tifffile.imwrite(tmp_path / "plain.tif", image)
    sheet = tmp_path / "s.tsv"
    sheet.write_text("path\tdomain\tpixel_size\na.tif\tsem\t\na.tif\tsem\t0.502\n")
    assert list(read_sample_sheet(sheet).pixel_size) == pytest.approx([0.5, 0.502])
    sheet.write_text("path\tdomain\tpixel_size\na.tif\tsem\t0.6\n")
    with pytest.raises(InputError, match=r"row 2: pixel_size 0.6 um differs from the 0.5 um"):
        read_sample_sheet(sheet)
    sheet.write_text("path\tdomain\tpixel_size\nplain.tif\tsem\t\n")
    with pytest.raises(InputError, match="row 2: pixel_size is empty and plain.tif records none"):
        read_sample_sheet(sheet)


def test_microscope_files_are_read_through_rosettasciio(tmp_path, monkeypatch):
    """A .dm4 is read by RosettaSciIO's reader (its documented return value: a list of dicts
    with data and axes); without the package, one line says what to install."""
    (tmp_path / "a.dm4").write_bytes(b"dm4")
    monkeypatch.setitem(sys.modules, "rsciio.digitalmicrograph", None)
    with pytest.raises(InputError, match=r"a.dm4: reading .dm4 files needs RosettaSciIO"):
        read_image(tmp_path / "a.dm4")
    image = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    axes = [{"name": n, "size": s, "scale": 0.02, "units": "nm", "navigate": False}
            for n, s in (("y", 20), ("x", 30))]  # fmt: skip
    spectrum = {"data": np.zeros(100), "axes": [{"scale": 1, "units": "eV", "navigate": False}]}
    fake = types.ModuleType("rsciio.digitalmicrograph")
    fake.file_reader = lambda path: [spectrum, {"data": image, "axes": axes}]
    monkeypatch.setitem(sys.modules, "rsciio.digitalmicrograph", fake)
    np.testing.assert_array_equal(read_image(tmp_path / "a.dm4"), image)
    assert pixel_size_from_metadata(tmp_path / "a.dm4", "angstrom") == pytest.approx(0.2)
    fake.file_reader = lambda path: (_ for _ in ()).throw(ValueError("not a DM file"))
    with pytest.raises(InputError, match="a.dm4: unreadable microscope file"):
        read_image(tmp_path / "a.dm4")


# --- ingest and tiling
def test_mixed_sizes_and_a_volume_are_ingested_and_tiled_with_their_origin(tmp_path, rng):
    data = tmp_path / "data"
    data.mkdir()
    for name, shape in (("small", (40, 48)), ("large", (64, 80))):
        fei_tiff(data / f"{name}.tif", rng.integers(0, 255, shape, dtype=np.uint8), 2.5e-7)
    volume = rng.integers(0, 65535, (5, 16, 20), dtype=np.uint16)
    tifffile.imwrite(data / "ct.tif", volume, imagej=True, resolution=(1.0, 1.0),
                     metadata={"unit": "um"})  # fmt: skip
    volume.astype("<u2").tofile(data / "ct.raw")
    sheet = data / "samples.tsv"
    sheet.write_text(
        "path\tdomain\tpixel_size\traw_shape\traw_dtype\n"
        "small.tif\tsem\t\t\t\nlarge.tif\tsem\t\t\t\n"
        "ct.tif\tmicroct\t\t\t\nct.raw\tct_raw\t1.0\t5x16x20\tuint16\n"
    )
    out = tmp_path / "out"
    with pytest.raises(InputError, match="differs from \\(40, 48\\).*ingest.mixed_sizes"):
        ingest_domain(sheet, "sem", out / "i.npy", out / "m.npy", out / "t.csv")
    table = ingest_domain(sheet, "sem", out / "i.npy", out / "m.npy", out / "t.csv",
                          mixed_sizes=True)  # fmt: skip
    assert list(table.height) == [40, 64] and list(table.width) == [48, 80]
    assert list(table.pixel_size) == pytest.approx([0.25, 0.25])
    images, masks = np.load(out / "i.npy"), np.load(out / "m.npy")
    assert images.shape == (2, 1, 64, 80) and (masks[0, 40:] == MASK_UNLABELLED).all()
    tiles = tile_domain(out / "i.npy", out / "t.csv", out / "tiles.npy", out / "tiles.csv",
                        size=32, stride=16)  # fmt: skip
    # each image tiled within its own size: 1 x 2 grid of the small one, 3 x 4 of the large
    assert list(tiles.groupby("image_index").size()) == [2, 12]
    assert tiles.groupby("image_index").apply(lambda g: (g.y + 32).max()).tolist() == [32, 64]
    assert set(tiles.source_path.map(lambda p: p.split("/")[-1])) == {"small.tif", "large.tif"}

    for domain in ("microct", "ct_raw"):
        table = ingest_domain(sheet, domain, out / "v.npy", out / "vm.npy", out / "vt.csv",
                              volume_axis=0)  # fmt: skip
        assert list(table.slice_index) == [0, 1, 2, 3, 4] and (table.volume_axis == 0).all()
        np.testing.assert_allclose(np.load(out / "v.npy")[3, 0], volume[3] / 65535, rtol=1e-6)
    assert read_volume(data / "ct.raw", "5,16,20", "uint16").shape == (5, 16, 20)
    table = ingest_domain(sheet, "microct", out / "v.npy", out / "vm.npy", out / "vt.csv",
                          volume_axis=2)  # fmt: skip
    assert len(table) == 20 and (table.height == 5).all() and (table.width == 16).all()
    tiles = tile_domain(out / "v.npy", out / "vt.csv", out / "vtiles.npy", out / "vtiles.csv",
                        size=4, random_per_image=2, seed=0)  # fmt: skip
    assert list(tiles.slice_index[:4]) == [0, 0, 1, 1]


@pytest.mark.parametrize(
    "case, message",
    [
        ("axis", "ct.tif: volume axis 3 is out of range for a 3-D volume (0, 1 or 2)"),
        ("raw", "ct.raw: 1600 bytes, but shape (5, 16, 30) of uint16 needs 4800"),
        ("raw_missing", "ct.raw: a .raw volume needs raw_shape (D,H,W) and raw_dtype"),
    ],
)
def test_bad_volumes_fail_in_one_line_and_write_nothing(tmp_path, rng, case, message):
    volume = rng.integers(0, 255, (5, 16, 10), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "ct.tif", volume)
    volume.astype(np.uint16).tofile(tmp_path / "ct.raw")
    rows = {
        "axis": "ct.tif\tct\t1\t\t",
        "raw": "ct.raw\tct\t1\t5x16x30\tuint16",
        "raw_missing": "ct.raw\tct\t1\t\t",
    }
    sheet = tmp_path / "s.tsv"
    sheet.write_text(f"path\tdomain\tpixel_size\traw_shape\traw_dtype\n{rows[case]}\n")
    with pytest.raises(InputError) as err:
        ingest_domain(sheet, "ct", tmp_path / "i.npy", tmp_path / "m.npy", tmp_path / "t.csv",
                      volume_axis=3 if case == "axis" else 0)  # fmt: skip
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.npy"))
    with pytest.raises(InputError, match="a volume \\(5 x 16 x 10\\), but a 2-D image is required"):
        read_image(tmp_path / "ct.tif")
