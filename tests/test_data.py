"""Tiling, ingestion and D4 augmentation."""

import numpy as np
import pandas as pd
import pytest

from matgen.data import (
    d4_transform,
    grid_crops,
    ingest_domain,
    random_tile_positions,
    tile_domain,
    tile_paired,
    tile_positions,
)
from matgen.data.augment import d4_inverse
from matgen.errors import InputError
from matgen.io import save_image


def test_grid_positions_and_overlap():
    pos = tile_positions(100, 70, size=40, stride=30)
    # y starts 0, 30, 60; x starts 0, 30
    assert pos.tolist() == [[0, 0], [0, 30], [30, 0], [30, 30], [60, 0], [60, 30]]
    # paper geometry: 1024-px tiles, stride 500 -> 524 px shared by neighbours
    pos = tile_positions(3024, 3024, size=1024, stride=500)
    assert len(pos) == 5 * 5 and pos[:, 0].max() + 1024 <= 3024


def test_shift_edge_covers_every_pixel():
    pos = tile_positions(110, 75, size=40, stride=30, edge="shift")
    covered = np.zeros((110, 75), bool)
    for y, x in pos:
        covered[y : y + 40, x : x + 40] = True
    assert covered.all()
    assert tile_positions(110, 75, 40, 30, "drop").shape[0] == 6 and len(pos) == 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size=200, stride=10), "larger than the image"),
        (dict(size=20, stride=-5), "stride must be positive"),
        (dict(size=20, stride=10, edge="wrap"), "unknown edge policy"),
    ],
)
def test_bad_tiling(kwargs, message):
    with pytest.raises(InputError, match=message):
        tile_positions(100, 100, **kwargs)


def test_random_tiles_do_not_overlap_and_are_reproducible():
    a = random_tile_positions(100, 90, 16, 20, np.random.default_rng(1))
    b = random_tile_positions(100, 90, 16, 20, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    canvas = np.zeros((100, 90), int)
    for y, x in a:
        canvas[y : y + 16, x : x + 16] += 1
    assert canvas.max() == 1 and len(a) == 20
    with pytest.raises(InputError, match="at most"):
        random_tile_positions(100, 90, 16, 100, np.random.default_rng(1))


def test_d4_is_a_group_with_eight_distinct_elements(rng):
    x = rng.random((3, 5, 5))
    images = [d4_transform(x, k) for k in range(8)]
    assert len({im.tobytes() for im in images}) == 8
    for k in range(8):
        np.testing.assert_array_equal(d4_transform(d4_transform(x, k), d4_inverse(k)), x)
    import torch

    t = torch.from_numpy(x)
    for k in range(8):
        np.testing.assert_array_equal(d4_transform(t, k).numpy(), images[k])


def test_pixel_blocks_on_a_code_grid_turn_as_the_image_turns(rng):
    """Blocks of 2 x 2 pixels carried on a code grid (a pore map to the pixel, say): turning
    grid and blocks together is turning the image, for every D4 element; and random windows
    turn such a stack so, beside plain stacks cut at the same places."""
    from matgen.data.augment import d4_transform_blocks, random_d4_windows
    from matgen.inference.segmentation import code_pixel_blocks

    image = rng.integers(0, 9, (1, 6, 8))
    blocks = code_pixel_blocks(image, 2)  # (1, 2, 2, 3, 4)
    assert blocks.shape == (1, 2, 2, 3, 4) and blocks[0, 1, 0, 2, 3] == image[0, 5, 6]

    def unblock(b):
        return b.transpose(0, 3, 1, 4, 2).reshape(len(b), 2 * b.shape[-2], 2 * b.shape[-1])

    for k in range(8):
        np.testing.assert_array_equal(unblock(d4_transform_blocks(blocks, k)),
                                      d4_transform(image, k))  # fmt: skip
    grid = image[:, ::2, ::2]  # a plain stack on the code grid
    plain, turned = random_d4_windows((grid, blocks), 16, 2, np.random.default_rng(0), (1,))
    draw = np.random.default_rng(0)  # the same draws: items, rows, columns, orientations
    _, ys, xs = draw.integers(0, 1, 16), draw.integers(0, 2, 16), draw.integers(0, 3, 16)
    for p, t, y, x, k in zip(plain, turned, ys, xs, draw.integers(0, 8, 16)):
        np.testing.assert_array_equal(p, d4_transform(grid[0, y : y + 2, x : x + 2], int(k)))
        window = image[:, 2 * y : 2 * y + 4, 2 * x : 2 * x + 4]
        np.testing.assert_array_equal(unblock(t[None]), d4_transform(window, int(k)))


def make_dataset(tmp_path, rng, pixel_sizes=(0.5, 0.5), shapes=((48, 64), (48, 64))):
    rows = []
    for i, (ps, shape) in enumerate(zip(pixel_sizes, shapes)):
        image = rng.integers(0, 65536, shape, dtype=np.uint16)
        save_image(tmp_path / f"im{i}.tif", image)
        mask = (image > 30000).astype(np.uint8)
        save_image(tmp_path / f"im{i}_mask.png", mask)
        rows.append(f"im{i}.tif\tsem\t{ps}\tim{i}_mask.png\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("path\tdomain\tpixel_size\tmask\n" + "".join(rows))
    return sheet


def test_ingest_then_tile_keeps_pixels_masks_and_positions(tmp_path, rng):
    sheet = make_dataset(tmp_path, rng)
    out = tmp_path / "ingest"
    table = ingest_domain(sheet, "sem", out / "images.npy", out / "masks.npy", out / "table.csv")
    images = np.load(out / "images.npy")
    assert images.shape == (2, 1, 48, 64) and images.dtype == np.float32
    assert table["has_mask"].all()
    tiles_table = tile_domain(
        out / "images.npy",
        out / "table.csv",
        tmp_path / "t.npy",
        tmp_path / "t.csv",
        size=32,
        stride=16,
        masks_path=out / "masks.npy",
        mask_tiles_out=tmp_path / "m.npy",
    )
    tiles, masks = np.load(tmp_path / "t.npy"), np.load(tmp_path / "m.npy")
    assert len(tiles) == 2 * 2 * 3 and tiles.dtype == np.float16
    row = tiles_table.iloc[5]
    assert (row["image_index"], row["y"], row["x"]) == (0, 16, 32)
    np.testing.assert_allclose(tiles[5, 0], images[0, 0, 16:48, 32:64], atol=1e-3)
    raw_mask = np.asarray(__import__("PIL.Image").Image.open(tmp_path / "im0_mask.png"))
    np.testing.assert_array_equal(masks[5], raw_mask[16:48, 32:64])
    assert tiles_table["overlap"].iloc[0] == 0.5 and tiles_table["pixel_size"].iloc[0] == 0.5


def test_grid_crops_are_the_tiles_of_that_stride_cut_when_indexed(tmp_path, rng):
    sheet = make_dataset(tmp_path, rng)
    out = tmp_path / "ingest"
    ingest_domain(sheet, "sem", out / "images.npy", out / "masks.npy", out / "table.csv")
    tile_domain(out / "images.npy", out / "table.csv", tmp_path / "t.npy", tmp_path / "t.csv",
                size=16, stride=8)  # fmt: skip
    tiles = np.load(tmp_path / "t.npy")
    crops = grid_crops(out / "images.npy", out / "table.csv", size=16, stride=8)
    # (48 - 16) / 8 + 1 = 5 rows, (64 - 16) / 8 + 1 = 7 columns, 2 images
    assert len(crops) == len(tiles) == 2 * 5 * 7 and crops.shape == (70, 1, 16, 16)
    idx = np.array([0, 34, 35, 69])
    got = crops[idx]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, tiles[idx])
    images = np.load(out / "images.npy")
    np.testing.assert_allclose(got[2, 0], images[1, 0, 0:16, 0:16], atol=1e-3)  # image 1 starts
    assert len(grid_crops(out / "images.npy", out / "table.csv", size=16, stride=1)) == 2 * 33 * 49


def test_ingest_rejects_mixed_pixel_sizes_and_writes_nothing(tmp_path, rng):
    sheet = make_dataset(tmp_path, rng, pixel_sizes=(0.5, 0.7))
    out = tmp_path / "ingest"
    with pytest.raises(InputError, match="row 3: pixel_size 0.7 differs from 0.5 of row 2"):
        ingest_domain(sheet, "sem", out / "images.npy", out / "masks.npy", out / "table.csv")
    assert not out.exists() or not any(out.iterdir())


def test_ingest_rejects_mixed_shapes_and_unknown_domain(tmp_path, rng):
    sheet = make_dataset(tmp_path, rng, shapes=((48, 64), (40, 64)))
    out = tmp_path / "ingest"
    with pytest.raises(InputError, match="im1.tif: shape"):
        ingest_domain(sheet, "sem", out / "images.npy", out / "masks.npy", out / "table.csv")
    with pytest.raises(InputError, match="no rows with domain 'tem'"):
        ingest_domain(sheet, "tem", out / "images.npy", out / "masks.npy", out / "table.csv")


def test_tile_paired_cuts_the_aligned_fine_region(tmp_path, rng):
    coarse = rng.random((1, 1, 8, 8)).astype(np.float32)
    fine = np.kron(coarse, np.ones((1, 1, 4, 4), np.float32))  # 4x finer, same content
    np.save(tmp_path / "c.npy", coarse)
    np.save(tmp_path / "f.npy", fine)
    pd.DataFrame({"sample": ["s"], "pixel_size": [4.0], "path": ["c"]}).to_csv(
        tmp_path / "c.csv", index=False
    )
    pd.DataFrame({"sample": ["s"], "pixel_size": [1.0]}).to_csv(tmp_path / "f.csv", index=False)
    table = tile_domain(
        tmp_path / "c.npy",
        tmp_path / "c.csv",
        tmp_path / "ct.npy",
        tmp_path / "ct.csv",
        size=4,
        random_per_image=3,
        seed=5,
    )
    paired = tile_paired(
        tmp_path / "ct.csv", tmp_path / "f.npy", tmp_path / "f.csv", tmp_path / "p.npy"
    )
    tiles = np.load(tmp_path / "ct.npy")
    assert paired.shape == (3, 1, 16, 16)
    for m in range(3):
        np.testing.assert_allclose(paired[m, 0, ::4, ::4], tiles[m, 0], atol=1e-3)
    assert len(table) == 3
