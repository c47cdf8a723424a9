"""``matgen <command>``: apply matgen to one's own micrographs without Snakemake.

Bad input ends the command with one line on stderr (``matgen: error: <file>: <problem>``) and
exit status 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .errors import MatgenError

DESCRIPTION = """Apply matgen to your own micrographs without Snakemake: measure pore morphology,
ingest and tile images, sample a trained StyleGAN2, translate with a CycleGAN, find vacancies
in STEM images, segment micrographs. Run matgen COMMAND --help for its options.

Bad input ends a command with one line (matgen: error: FILE: PROBLEM) and exit status 2."""


def _morphology(args: argparse.Namespace) -> None:
    from .data.threshold import binarise_pores
    from .errors import InputError
    from .io import read_volume, save_table, to_unit_float
    from .microscopy import pixel_size_from_metadata
    from .pipeline.morphology import describe_morphology
    from .util import progress

    images = [to_unit_float(read_volume(path)) for path in args.images]  # all checked up front
    sizes = []
    for path in args.images:
        size = args.pixel_size or pixel_size_from_metadata(path, args.unit)
        if size is None:
            raise InputError(f"{path}: no --pixel-size given and the file records none")
        sizes.append(size)
    rows = []
    work = zip(args.images, images, sizes)
    for path, image, size in progress(work, desc="morphology", total=len(images)):
        ndim = image.ndim  # a volume gets its 3-D descriptors (S_V, spherical S2)
        pores, level = binarise_pores(image, args.threshold, args.smooth_sigma, ndim=ndim)
        r_max = args.r_max or min(image.shape) // 2
        table, _, _ = describe_morphology(pores[None], size, r_max, show_progress=False, ndim=ndim)
        rows.append(
            table.assign(image=str(path), dimensions=ndim, threshold=level, pixel_size=size)
        )
    table = pd.concat(rows, ignore_index=True)
    table = table[["image", "dimensions"] + [c for c in table if c not in ("image", "dimensions")]]
    save_table(args.out, table)
    print(f"wrote {args.out} ({len(table)} images)", file=sys.stderr)


def _ingest(args: argparse.Namespace) -> None:
    from .data.ingest import ingest_domain

    out = Path(args.out)
    table = ingest_domain(
        args.sheet, args.domain, out / "images.npy", out / "masks.npy", out / "table.csv"
    )
    print(f"wrote {out} ({len(table)} images)", file=sys.stderr)


def _tile(args: argparse.Namespace) -> None:
    from .data.tiling import tile_domain

    src, out = Path(args.ingested), Path(args.out)
    table = tile_domain(
        src / "images.npy",
        src / "table.csv",
        out / "tiles.npy",
        out / "table.csv",
        size=args.size,
        stride=args.stride,
        edge=args.edge,
        random_per_image=args.random_per_image,
        seed=args.seed,
        masks_path=src / "masks.npy",
        mask_tiles_out=out / "masks.npy",
    )
    print(f"wrote {out} ({len(table)} tiles)", file=sys.stderr)


def _sample(args: argparse.Namespace) -> None:
    import numpy as np

    from .inference.stylegan2 import generate, load_stylegan2
    from .io import save_image, save_table
    from .util import select_device

    if args.n < 1:
        raise MatgenError(f"-n must be at least 1, got {args.n}")
    G = load_stylegan2(args.checkpoint, str(select_device(args.device)))
    seeds = args.seed + np.arange(args.n)
    tiles = generate(G, seeds, args.batch_size, args.truncation_psi, show_progress=True)
    out = Path(args.out)
    names = []
    for seed, tile in zip(seeds, tiles):
        names.append(f"seed{seed:08d}.png")
        save_image(out / names[-1], np.round(tile[0] * 255).astype(np.uint8))
    save_table(out / "table.csv", pd.DataFrame({"path": names, "seed": seeds}))
    print(f"wrote {out} ({len(names)} tiles)", file=sys.stderr)


def _translate(args: argparse.Namespace) -> None:
    import numpy as np

    from .inference.cyclegan import load_cyclegan_generator
    from .io import read_image, save_image, to_unit_float
    from .pipeline.porous import translate_image
    from .util import progress, select_device

    images = [to_unit_float(read_image(path)) for path in args.images]  # all checked up front
    G, tile = load_cyclegan_generator(
        args.checkpoint, args.direction, str(select_device(args.device)), return_tile_size=True
    )
    out = Path(args.out)
    for path, image in progress(zip(args.images, images), desc="translate", total=len(images)):
        result = translate_image(G, image, tile)
        save_image(out / f"{Path(path).stem}.png", np.round(result * 255).astype(np.uint8))
    print(f"wrote {out} ({len(images)} images)", file=sys.stderr)


def _detection_threshold(text: str) -> float | str:
    """--threshold: a probability in [0, 1] or 'valley'."""
    if text == "valley":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a probability or 'valley', got {text!r}"
        ) from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a probability is in [0, 1], got {value}")
    return value


def _detect_vacancies(args: argparse.Namespace) -> None:
    from .io import read_image
    from .pipeline.stem import detect_vacancies_in_files

    for path in args.images:  # all checked up front
        read_image(path)
    table = detect_vacancies_in_files(
        args.checkpoint,
        args.images,
        args.pixel_size,
        args.out,
        threshold=args.threshold,
        tta=not args.no_tta,
        device=args.device,
    )
    print(
        f"wrote {args.out} ({len(table)} vacancies in {len(args.images)} images)", file=sys.stderr
    )


def _segment(args: argparse.Namespace) -> None:
    from .inference.segmentation import load_segmenter, segment
    from .io import read_image, save_image, save_table, to_unit_float
    from .util import progress, select_device

    images = [to_unit_float(read_image(path)) for path in args.images]  # all checked up front
    model, classes = load_segmenter(args.checkpoint, str(select_device(args.device)))
    out, rows = Path(args.out), []
    for path, image in progress(zip(args.images, images), desc="segment", total=len(images)):
        labels = segment(model, image[None, None])[0]
        save_image(out / f"{Path(path).stem}_labels.png", labels)
        rows.append(
            {
                "image": str(path),
                **{f"fraction_{c}": float((labels == i).mean()) for i, c in enumerate(classes)},
            }
        )
    save_table(out / "class_fractions.csv", pd.DataFrame(rows))
    print(f"wrote {out} ({len(images)} label maps, classes {', '.join(classes)})", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matgen", formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "morphology", help="porosity, specific surface area, S2, λ per image or volume"
    )
    p.add_argument("images", nargs="+", type=Path, help="images or volumes (TIFF stack, 3-D NPY)")
    p.add_argument(
        "--pixel-size", type=float, default=0.0,
        help="length per pixel in --unit (default: read from each file's metadata)",
    )  # fmt: skip
    p.add_argument("--unit", default="um", help="length unit of the results (default um)")
    p.add_argument("--threshold", default="otsu", help="'otsu' or a grey level in [0, 1]")
    p.add_argument("--smooth-sigma", type=float, default=1.0, help="Gaussian pre-smoothing, px")
    p.add_argument("--r-max", type=int, default=0, help="largest S2 lag, px (0: half the image)")
    p.add_argument("--out", type=Path, required=True, help="CSV table to write")
    p.set_defaults(func=_morphology)

    p = sub.add_parser("ingest", help="sample sheet -> validated image stack of one domain")
    p.add_argument("sheet", type=Path)
    p.add_argument("--domain", required=True)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("tile", help="ingested stack -> tiles (grid or random)")
    p.add_argument("ingested", type=Path, help="directory written by 'matgen ingest'")
    p.add_argument("--size", type=int, required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--stride", type=int)
    group.add_argument("--random-per-image", type=int)
    p.add_argument("--edge", choices=["drop", "shift"], default="drop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_tile)

    p = sub.add_parser("sample", help="synthetic tiles from a trained StyleGAN2 (PNG + table)")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("-n", type=int, required=True, help="number of tiles")
    p.add_argument("--seed", type=int, default=0, help="tile i comes from seed + i")
    p.add_argument("--truncation-psi", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_sample)

    p = sub.add_parser("translate", help="apply a CycleGAN generator tile-wise to images")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--direction", choices=["G_LH", "G_HL"], default="G_LH")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_translate)

    p = sub.add_parser("detect-vacancies", help="vacancy positions in atom-resolved STEM images")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--pixel-size", type=float, required=True, help="Å per pixel of the images")
    p.add_argument(
        "--threshold",
        type=_detection_threshold,
        default=None,
        help="probability of a detection, or 'valley': the valley of the peak scores on these "
        "images (default: the detector's operating point)",
    )
    p.add_argument("--no-tta", action="store_true", help="skip the 8-fold D4 test-time average")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--out", type=Path, required=True,
        help="points.csv to write: image, x_px, y_px, x_angstrom, y_angstrom, score, type",
    )  # fmt: skip
    p.set_defaults(func=_detect_vacancies)

    p = sub.add_parser("segment", help="label maps of micrographs from a trained U-Net")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_segment)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except MatgenError as exc:
        print(f"matgen: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
