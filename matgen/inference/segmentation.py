"""Segmentation study: load the VQ-VAE, its PixelCNN prior and the U-Net segmenters; encode
image + mask pairs to code maps and segment micrographs."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checkpoint import load_trained_weights, read_model_checkpoint
from ..errors import InputError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch

UNLABELLED = 255


def load_vqvae(path: str | os.PathLike, device: str = "cpu") -> "torch.nn.Module":
    from ..models.vqvae import VQVAE

    payload = read_model_checkpoint(path, "vqvae", device)
    return load_trained_weights(VQVAE(**payload["model_config"]), payload["model"], path, device)


def encode_codes(
    vqvae: "torch.nn.Module", images: np.ndarray, masks: np.ndarray, batch_size: int = 16
) -> np.ndarray:
    """Code maps (N, H/d, W/d) int64 of whole images + masks (unlabelled pixels as class 0)."""
    import torch

    dev = next(vqvae.parameters()).device
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(np.asarray(images[s : s + batch_size], np.float32)).to(dev)
            m = torch.from_numpy(np.asarray(masks[s : s + batch_size]).astype(np.int64)).to(dev)
            out.append(vqvae.encode(x, m)[2].cpu().numpy())
    return np.concatenate(out)


def code_class_counts(masks: np.ndarray, downsample: int, n_classes: int) -> np.ndarray:
    """Pixels of each class under each code of a ``downsample``-px code grid: (N, H, W) masks
    → (N, n_classes, H/d, W/d) uint16 (unlabelled pixels count for no class)."""
    blocks = code_pixel_blocks(masks, downsample)  # (N, d, d, H/d, W/d)
    return np.stack([(blocks == c).sum((1, 2)) for c in range(n_classes)], 1).astype(np.uint16)


def code_pixel_blocks(pixels: np.ndarray, downsample: int) -> np.ndarray:
    """A per-pixel map (N, H, W) as blocks on the code grid: (N, d, d, H/d, W/d), element
    (a, b, i, j) being pixel (i d + a, j d + b), d = ``downsample``."""
    m = np.asarray(pixels)
    n, h, w = m.shape
    d = downsample
    if h % d or w % d:
        raise InputError(f"masks of {h} x {w} px do not tile into {d}-px codes")
    return np.ascontiguousarray(m.reshape(n, h // d, d, w // d, d).transpose(0, 2, 4, 1, 3))


def pore_centre_cells(
    masks: np.ndarray, cell: int, pore_class: int, size_edges: Sequence[float] = ()
) -> np.ndarray:
    """Which cells of a ``cell``-px grid hold a pore's centre: (N, H, W) masks → (N, H/cell,
    W/cell) uint8, 0 where no centroid of a connected region (4-connected) of class
    ``pore_class`` falls, else 1 + the pore's size class: its equivalent diameter (px) binned
    by ``size_edges`` (increasing; none: one class, a marker for where a pore sits, not for its
    area). Two centres in one cell: the larger pore's class."""
    from scipy import ndimage

    m = np.asarray(masks)
    n, h, w = m.shape
    if h % cell or w % cell:
        raise InputError(f"masks of {h} x {w} px do not tile into {cell}-px cells")
    edges = np.asarray(size_edges, np.float64)
    if edges.size and not (np.diff(edges) > 0).all():
        raise InputError(f"pore size edges {list(size_edges)} are not increasing")
    marks = np.zeros((n, h // cell, w // cell), np.uint8)
    for i, mask in enumerate(m):
        labels, count = ndimage.label(mask == pore_class)
        if count:
            index = range(1, count + 1)
            centres = np.asarray(ndimage.center_of_mass(labels > 0, labels, index))
            areas = np.asarray(ndimage.sum_labels(labels > 0, labels, index), np.float64)
            size_class = 1 + np.searchsorted(edges, np.sqrt(4 * areas / np.pi), side="right")
            # nearest pixel: a centroid lies inside the image, so no clipping is needed
            rows, cols = (np.floor(centres + 0.5).astype(int) // cell).T
            np.maximum.at(marks[i], (rows, cols), size_class.astype(np.uint8))
    return marks


def class_fractions(counts: np.ndarray) -> np.ndarray:
    """Class fractions (n, C) float32 of windows of class counts (n, C, h, w); a window with no
    labelled pixel gets equal fractions."""
    totals = np.asarray(counts, np.float64).sum((2, 3))
    sums = totals.sum(1, keepdims=True)
    equal = np.full_like(totals, 1.0 / max(totals.shape[1], 1))
    return np.where(sums > 0, totals / np.maximum(sums, 1), equal).astype(np.float32)


def load_pixelcnn(
    path: str | os.PathLike, device: str = "cpu"
) -> tuple["torch.nn.Module", int, np.ndarray | None]:
    """The prior (a :class:`~matgen.models.pixelcnn.GatedPixelCNN`, or a hierarchical prior
    whose class map is drawn first), its training window (codes) and, for a prior
    conditioned on class fractions, the class-count maps of its training masks (else None)."""
    from ..models.pixelcnn import GatedPixelCNN, HierarchicalPrior

    payload = read_model_checkpoint(path, "pixelcnn", device)
    config = payload["model_config"]
    model = HierarchicalPrior(**config) if "cell" in config else GatedPixelCNN(**config)
    counts = payload.get("class_counts")
    return (
        load_trained_weights(model, payload["model"], path, device),
        int(payload["window"]),
        None if counts is None else counts.cpu().numpy(),
    )


def real_class_fractions(class_counts: np.ndarray) -> np.ndarray:
    """Class fractions (C,) float64 of all the real masks behind class-count maps (N, C, h, w)."""
    totals = np.asarray(class_counts, np.float64).sum((0, 2, 3))
    return totals / max(totals.sum(), 1.0)


def draw_class_fractions(
    class_counts: np.ndarray,
    n: int,
    side: int,
    generator: "torch.Generator",
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """Class fractions (n, C) of ``n`` random ``side``² windows (codes; the whole map where
    the maps are smaller) of class-count maps (N, C, h, w): the conditions of a prior's maps,
    as often as the real masks hold them at the size drawn.

    ``mean`` (C,): all ``n`` moved by one offset so that they average exactly that (the real
    fractions). 64 random windows average the real second phase only to about ±0.012 (their sd
    ~0.1), and the prior draws what it is asked: on the embedded default that draw noise was
    about 40 % of the generated masks' phase-fraction error (docs/segmentation.md)."""
    import torch

    h, w = class_counts.shape[-2:]
    sh, sw = min(side, h), min(side, w)
    idx = torch.randint(0, len(class_counts), (n,), generator=generator).numpy()
    ys = torch.randint(0, h - sh + 1, (n,), generator=generator).numpy()
    xs = torch.randint(0, w - sw + 1, (n,), generator=generator).numpy()
    windows = np.stack([class_counts[i, :, y : y + sh, x : x + sw] for i, y, x in zip(idx, ys, xs)])
    fractions = class_fractions(windows)
    if mean is not None and n:
        fractions += (np.asarray(mean, np.float64) - fractions.mean(0, dtype=np.float64)).astype(
            np.float32
        )
    return fractions


def segment(model: "torch.nn.Module", images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Label maps (N, H, W) uint8 of images (N, C, H, W) in [0, 1]; sides padded (reflect) to a
    multiple of the U-Net's 2^depth and cropped back."""
    return np.concatenate(
        [logits.argmax(1).cpu().numpy().astype(np.uint8)
         for logits in segmenter_logits(model, images, batch_size)]
    )  # fmt: skip


def segmenter_logits(
    model: "torch.nn.Module", images: np.ndarray, batch_size: int = 8
) -> Iterator["torch.Tensor"]:
    """The U-Net's logits (n, classes, H, W), float32 on its device, batch by batch, of images
    (N, C, H, W) in [0, 1]; sides padded (reflect) to a multiple of its 2^depth, cropped back."""
    import torch

    dev = next(model.parameters()).device
    mult = 2**model.depth
    h, w = images.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = np.asarray(images[s : s + batch_size], np.float32)
            if ph or pw:
                x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
            yield model(torch.from_numpy(x).to(dev))[:, :, :h, :w].float()


def load_segmenter(
    path: str | os.PathLike, device: str = "cpu"
) -> tuple["torch.nn.Module", list[str]]:
    from ..models.unet import UNet

    payload = read_model_checkpoint(path, "segmenter", device)
    model = load_trained_weights(UNet(**payload["model_config"]), payload["model"], path, device)
    return model, list(payload["classes"])


def level_kwargs(level_temperature: dict[str, float] | None) -> dict[str, Any]:
    """``prior.sample``'s keyword for per-level temperatures: none where none are given, so a
    one-level prior (which has no levels) samples as before."""
    return {"level_temperature": level_temperature} if level_temperature else {}


def calibrated_fraction_shift(
    prior: "torch.nn.Module",
    vqvae: "torch.nn.Module",
    class_counts: np.ndarray,
    side: int,
    *,
    rounds: int,
    maps: int,
    seed: int,
    temperature: float = 1.0,
    level_temperature: dict[str, float] | None = None,
) -> np.ndarray:
    """The shift (C,) to add to a fraction-conditioned prior's conditions so that its decoded
    masks hold the real masks' class fractions on average.

    Drawn freely, position after position, the prior drifts from what it was asked for (on
    the embedded default: a second phase at 0.18 where its conditions ask 0.27; under teacher
    forcing its marginals match the data): each of ``rounds`` pilot batches of ``maps``
    ``side``² maps, drawn from their own seeds (``seed`` and the round), measures the decoded
    fractions, and the shift moves by the real minus the measured ones. Each batch's conditions
    average the real fractions (:func:`draw_class_fractions`' ``mean``), so a round measures the
    prior's drift, not which windows it happened to draw."""
    import torch

    target = real_class_fractions(class_counts)
    shift = np.zeros(len(target), np.float32)
    for r in range(rounds):
        state = int(np.random.SeedSequence([seed, 1, r]).generate_state(1)[0])
        gen = torch.Generator().manual_seed(state)
        cond = torch.from_numpy(draw_class_fractions(class_counts, maps, side, gen, target) + shift)
        codes = prior.sample(maps, (side, side), temperature, generator=gen, cond=cond,
                             **level_kwargs(level_temperature))  # fmt: skip
        with torch.no_grad():
            labels = vqvae.decode_codes(codes)[1].argmax(1).cpu().numpy()
        drawn = np.array([(labels == c).mean() for c in range(len(target))])
        shift += (target - drawn).astype(np.float32)
    return shift
