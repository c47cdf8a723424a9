"""Cut image stacks into tiles: a regular grid with overlap, or random non-overlapping tiles.

Tile stacks are (M, 1, size, size) float16 in [0, 1] (half the bytes of float32, ample for 8- or
12-bit micrographs) with a table, one row per tile: source sample, image index, y, x (top-left,
pixels), size, pixel size. Labels of the source row travel with the tile in the table.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import save_npy, save_table
from .ingest import load_stack

EdgePolicy = Literal["drop", "shift"]


def tile_positions(
    height: int, width: int, size: int, stride: int, edge: EdgePolicy = "drop"
) -> np.ndarray:
    """Top-left corners (y, x) of a regular grid of ``size`` x ``size`` tiles.

    Neighbouring tiles overlap by ``size - stride`` pixels (overlap fraction
    ``1 - stride / size``). ``edge='drop'`` keeps only tiles on the grid; ``edge='shift'`` adds a
    last row/column flush with the image border so that every pixel is covered.
    Returns an int array of shape (M, 2), row-major.
    """
    if size <= 0:
        raise InputError(f"tile size must be positive, got {size}")
    if stride <= 0:
        raise InputError(f"tile stride must be positive, got {stride}")
    if size > height or size > width:
        raise InputError(f"tile size {size} is larger than the image ({height} x {width})")
    if edge not in ("drop", "shift"):
        raise InputError(f"unknown edge policy {edge!r} (use 'drop' or 'shift')")

    def starts(extent: int) -> np.ndarray:
        s = np.arange(0, extent - size + 1, stride)
        if edge == "shift" and s[-1] != extent - size:
            s = np.append(s, extent - size)
        return s

    ys, xs = np.meshgrid(starts(height), starts(width), indexing="ij")
    return np.stack([ys.ravel(), xs.ravel()], axis=1).astype(np.int64)


def random_tile_positions(
    height: int, width: int, size: int, n: int | None, rng: np.random.Generator
) -> np.ndarray:
    """``n`` random, mutually non-overlapping tile corners (y, x), drawn with ``rng``.

    A grid of cells of ``size`` is laid at a random offset and ``n`` distinct cells are drawn, so
    tiles never overlap and every part of the image can be picked. ``n=None`` takes all cells.
    """
    if size <= 0 or size > height or size > width:
        raise InputError(f"tile size {size} does not fit the image ({height} x {width})")
    oy = int(rng.integers(0, height % size + 1))
    ox = int(rng.integers(0, width % size + 1))
    grid = tile_positions(height - oy, width - ox, size, size) + [oy, ox]
    if n is None:
        n = len(grid)
    if n > len(grid):
        raise InputError(
            f"cannot place {n} non-overlapping {size}-px tiles in a "
            f"{height} x {width} image (at most {len(grid)})"
        )
    pick = np.sort(rng.choice(len(grid), size=n, replace=False))
    return grid[pick]


def cut_tiles(
    images: np.ndarray, index: np.ndarray, positions: np.ndarray, size: int, scale: int = 1
) -> np.ndarray:
    """Cut tiles (M, C, size*scale, size*scale) from ``images`` (N, C, H, W).

    ``index[m]`` is the image of tile ``m`` and ``positions[m]`` its corner in units of
    ``1/scale`` pixels of ``images``, so the same table cuts an aligned stack ``scale`` times
    finer (the true high-resolution slice behind a micro-CT tile).
    """
    s = size * scale
    out = np.empty((len(index), images.shape[1], s, s), dtype=np.float16)
    for m, (i, (y, x)) in enumerate(zip(index, positions)):
        out[m] = images[i, :, y * scale : y * scale + s, x * scale : x * scale + s]
    return out


def _layout(
    table: pd.DataFrame,
    heights: np.ndarray,
    widths: np.ndarray,
    size: int,
    stride: int | None,
    edge: EdgePolicy,
    random_per_image: int | None,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Image index (M,) and top-left corner (M, 2) of every tile, image by image, each image
    tiled within its own size; a tile that cannot fit names the image it came from."""
    index, positions = [], []
    for i, (height, width) in enumerate(zip(heights, widths)):
        try:
            if stride is not None:
                pos = tile_positions(int(height), int(width), size, stride, edge)
            else:
                pos = random_tile_positions(
                    int(height), int(width), size, random_per_image or None, rng
                )
        except InputError as exc:
            source = table["path"].iloc[i] if "path" in table else f"image {i}"
            raise InputError(f"{source}: {exc}") from None
        index.append(np.full(len(pos), i))
        positions.append(pos)
    return np.concatenate(index), np.concatenate(positions)


def _image_sizes(table: pd.DataFrame, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's own height and width (a stack of mixed sizes is padded to the largest)."""
    n, _, height, width = images.shape
    heights = table["height"].to_numpy() if "height" in table else np.full(n, height)
    widths = table["width"].to_numpy() if "width" in table else np.full(n, width)
    return heights, widths


class GridCrops:
    """Every ``size``² crop of an image stack (N, C, H, W) on a grid of ``stride`` px, cut when
    indexed: ``crops[idx]`` is (len(idx), C, size, size) float16, as a tile stack's rows would
    be, without holding the overlapping crops in memory (a stride of 1 px would hold each
    pixel size² times)."""

    def __init__(self, images: np.ndarray, table: pd.DataFrame, size: int, stride: int) -> None:
        heights, widths = _image_sizes(table, images)
        self.index, self.positions = _layout(table, heights, widths, size, stride, "drop",
                                             None, None)  # fmt: skip
        self.images, self.size = images, size
        self.shape = (len(self.index), images.shape[1], size, size)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.atleast_1d(idx)
        return cut_tiles(self.images, self.index[idx], self.positions[idx], self.size)


def grid_crops(
    images_path: str | os.PathLike, table_path: str | os.PathLike, size: int, stride: int
) -> GridCrops:
    """The crops of an ingested stack (``images.npy`` and its table) on a ``stride``-px grid:
    a denser view of the same images than the study's tiles, for training a generator on
    every position of the micrographs rather than on a fixed set of overlapping tiles."""
    images = np.asarray(load_stack(images_path))
    return GridCrops(images, pd.read_csv(table_path), size, stride)


def tile_domain(
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    tiles_out: str | os.PathLike,
    tile_table_out: str | os.PathLike,
    *,
    size: int,
    stride: int | None = None,
    edge: EdgePolicy = "drop",
    random_per_image: int | None = None,
    seed: int = 0,
    masks_path: str | os.PathLike | None = None,
    mask_tiles_out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Tile an ingested stack: a regular grid (``stride``) or random non-overlapping tiles.

    Give exactly one of ``stride`` (grid with overlap ``size - stride``, see
    :func:`tile_positions`) and ``random_per_image`` (that many random non-overlapping tiles per
    image, drawn from ``seed``; 0 means as many as fit). Each image is tiled within its own
    ``height`` x ``width`` (table columns, where a domain mixes sizes); the tile table records
    the source image, position and, for a volume's slices, the slice. Masks, when given, are
    tiled alike.
    """
    if (stride is None) == (random_per_image is None):
        raise InputError("tiling needs exactly one of 'stride' and 'random_per_image'")
    images = load_stack(images_path)
    table = pd.read_csv(table_path)
    heights, widths = _image_sizes(table, images)
    rng = np.random.default_rng(seed)
    index, positions = _layout(table, heights, widths, size, stride, edge, random_per_image, rng)
    source = table.iloc[index].reset_index(drop=True)
    keep = [
        c
        for c in source.columns
        if c
        not in (
            "path",
            "mask",
            "index",
            "row",
            "height",
            "width",
            "has_mask",
            "raw_shape",
            "raw_dtype",
        )
    ]
    tiles_table = pd.concat(
        [
            pd.DataFrame(
                {
                    "tile": np.arange(len(index)),
                    "image_index": index,
                    "y": positions[:, 0],
                    "x": positions[:, 1],
                    "size": size,
                }
            ),
            source[keep],
        ],
        axis=1,
    )
    tiles_table["source_path"] = source["path"]
    tiles_table["overlap"] = 0.0 if stride is None else max(0.0, 1.0 - stride / size)
    tiles = cut_tiles(images, index, positions, size)
    if masks_path is not None and mask_tiles_out is not None:
        masks = np.load(masks_path, mmap_mode="r")[:, None]
        save_npy(mask_tiles_out, cut_tiles(masks, index, positions, size).astype(np.uint8)[:, 0])
    save_npy(tiles_out, tiles)
    save_table(tile_table_out, tiles_table)
    return tiles_table


def tile_paired(
    tile_table_path: str | os.PathLike,
    paired_images_path: str | os.PathLike,
    paired_table_path: str | os.PathLike,
    tiles_out: str | os.PathLike,
    table_out: str | os.PathLike | None = None,
) -> np.ndarray:
    """Cut, for every tile of a coarse domain, the aligned region of a finer paired domain.

    Pairs are matched by the ``sample`` column; the scale is the ratio of pixel sizes and must be
    an integer (e.g. 16 for micro-CT -> SEM). Used to keep the true high-resolution slice behind
    each micro-CT tile. ``table_out`` (optional) gets one row per paired tile: tile, sample,
    y, x, size in the fine pixels and the fine pixel size.
    """
    tiles = pd.read_csv(tile_table_path)
    paired = pd.read_csv(paired_table_path)
    images = load_stack(paired_images_path)
    ratio = float(tiles["pixel_size"].iloc[0]) / float(paired["pixel_size"].iloc[0])
    scale = int(round(ratio))
    if scale < 1 or abs(ratio - scale) > 1e-6:
        raise InputError(
            f"{paired_table_path}: pixel-size ratio {ratio:g} to the tiles of "
            f"{tile_table_path} is not an integer"
        )
    lookup = {str(s): i for i, s in enumerate(paired["sample"])}
    missing = sorted(set(map(str, tiles["sample"])) - set(lookup))
    if missing:
        raise InputError(f"{paired_table_path}: no paired image for sample {missing[0]!r}")
    index = np.array([lookup[str(s)] for s in tiles["sample"]])
    size = int(tiles["size"].iloc[0])
    need = (tiles[["y", "x"]].to_numpy() + size) * scale
    if (need[:, 0] > images.shape[2]).any() or (need[:, 1] > images.shape[3]).any():
        raise InputError(
            f"{paired_images_path}: paired images ({images.shape[2]} x "
            f"{images.shape[3]}) are smaller than {scale} x the tiled images"
        )
    out = cut_tiles(images, index, tiles[["y", "x"]].to_numpy(), size, scale=scale)
    if table_out is not None:
        save_table(
            table_out,
            pd.DataFrame(
                {
                    "tile": tiles["tile"],
                    "sample": tiles["sample"],
                    "y": tiles["y"] * scale,
                    "x": tiles["x"] * scale,
                    "size": size * scale,
                    "pixel_size": float(paired["pixel_size"].iloc[0]),
                }
            ),
        )
    save_npy(tiles_out, out)
    return out
