"""Readers, sample sheets and atomic writes: good input round-trips, bad input fails in one line."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from matgen.errors import InputError
from matgen.io import atomic_path, read_image, read_sample_sheet, save_npy, to_unit_float


def test_reads_tiff_8_and_16_bit_png_npy(tmp_path, rng):
    a8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    a16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a8.tif", a8)
    tifffile.imwrite(tmp_path / "a16.tiff", a16)
    Image.fromarray(a8).save(tmp_path / "a.png")
    np.save(tmp_path / "a.npy", a16.astype(np.float32))
    np.testing.assert_array_equal(read_image(tmp_path / "a8.tif"), a8)
    np.testing.assert_array_equal(read_image(tmp_path / "a16.tiff"), a16)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), a8)
    np.testing.assert_array_equal(read_image(tmp_path / "a.npy"), a16)
    assert to_unit_float(a16).max() == pytest.approx(a16.max() / 65535)
    assert to_unit_float(np.array([[0, 255]], np.uint8)).tolist() == [[0.0, 1.0]]


def test_rgb_png_becomes_luminance(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    out = read_image(tmp_path / "c.png")
    assert out.shape == (8, 8)
    assert out[0, 0] == pytest.approx(0.587 * 200, rel=1e-5)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "file not found"),
        ("truncated", "unreadable or truncated"),
        ("3d", "a volume (5 x 6 x 7), but a 2-D image is required here"),
        ("4d", "expected a 2-D grey-level image or a 3-D volume, got shape (2, 5, 6, 7)"),
        ("nan", "NaN or inf"),
        ("suffix", "unsupported image format"),
    ],
)
def test_bad_images_fail_in_one_line_naming_the_file(tmp_path, rng, case, message):
    path = tmp_path / "bad.tif"
    if case == "truncated":
        tifffile.imwrite(path, rng.integers(0, 255, (64, 64), dtype=np.uint8))
        path.write_bytes(path.read_bytes()[:200])
    elif case in ("3d", "4d"):
        path = tmp_path / "bad.npy"
        np.save(path, np.zeros((2, 5, 6, 7) if case == "4d" else (5, 6, 7)))
    elif case == "nan":
        path = tmp_path / "bad.npy"
        np.save(path, np.array([[0.0, np.nan], [1.0, 2.0]]))
    elif case == "suffix":
        path = tmp_path / "bad.jpg"
        path.write_bytes(b"not an image")
    with pytest.raises(InputError) as err:
        read_image(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def write_sheet(tmp_path, text):
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(text)
    return sheet


def test_sample_sheet_resolves_paths_and_types(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 4)))
    sheet = write_sheet(tmp_path, "path\tdomain\tpixel_size\tlabel_site\nx.npy\tsem\t0.5\tA\n")
    table = read_sample_sheet(sheet)
    assert table["path"][0] == str((tmp_path / "x.npy").resolve())
    assert table["pixel_size"][0] == 0.5
    assert table["sample"][0] == "x" and table["label_site"][0] == "A"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "sample sheet is empty"),
        ("path\tdomain\tpixel_size\n", "sample sheet is empty (no rows)"),
        ("path\tdomain\tpixel_size\tcolour\nx.npy\tsem\t1\tred\n", "unknown column 'colour'"),
        ("path\tdomain\nx.npy\tsem\n", "missing required column 'pixel_size'"),
        ("path\tdomain\tpixel_size\ny.npy\tsem\t1\n", "row 2: path file 'y.npy' not found"),
        ("path\tdomain\tpixel_size\nx.npy\tsem\t-1\n", "row 2: pixel_size must be a positive"),
        ("path\tdomain\tpixel_size\nx.npy\tsem\tabc\n", "row 2: pixel_size 'abc' is not a number"),
    ],
)
def test_bad_sample_sheets(tmp_path, text, message):
    np.save(tmp_path / "x.npy", np.zeros((4, 4)))
    sheet = write_sheet(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_sample_sheet(sheet)
    assert message in str(err.value) and str(sheet) in str(err.value)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    save_npy(target, np.arange(3))
    assert list(tmp_path.iterdir()) == [target]
    np.testing.assert_array_equal(np.load(target), np.arange(3))
