"""Ingestion, tiling and augmentation of micrograph stacks."""

from .augment import D4_SIZE, d4_transform, random_d4
from .ingest import MASK_UNLABELLED, ingest_domain, load_stack
from .tiling import (
    GridCrops,
    cut_tiles,
    grid_crops,
    random_tile_positions,
    tile_domain,
    tile_paired,
    tile_positions,
)

__all__ = [
    "D4_SIZE",
    "d4_transform",
    "random_d4",
    "MASK_UNLABELLED",
    "ingest_domain",
    "load_stack",
    "GridCrops",
    "cut_tiles",
    "grid_crops",
    "random_tile_positions",
    "tile_domain",
    "tile_paired",
    "tile_positions",
]
