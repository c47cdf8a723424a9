"""Stages of the STEM study: make the training sets, find vacancies in images, score them.

Training sets for the detector, all with the simulation's vacancy labels: (a) the noiseless
simulation, (b) the same with Poisson dose noise (:func:`add_shot_noise`), (c) the simulation
translated to the experimental domain by the CycleGAN (:func:`translate_simulation`). Detection
runs over overlapping tiles with D4 test-time augmentation (:func:`vacancy_maps`);
peaks of the any-type probability above a threshold are typed by their most probable channel and
matched to the true vacancies within a tolerance in Å, for all types together and per type
(:func:`score_detections`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import ndimage

from ..data.augment import D4_SIZE, d4_inverse, d4_transform
from ..data.ingest import load_stack
from ..data.points import UNTYPED, load_points, normalise_percentile
from ..data.tiling import tile_positions
from ..errors import InputError
from ..io import read_image, save_npy, save_table
from ..metrics.detection import (
    bootstrap_scores,
    find_peaks,
    inside,
    match_points,
    precision_recall_curve,
)
from ..util import progress, select_device

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def add_shot_noise(
    images_path: str | os.PathLike,
    images_out: str | os.PathLike,
    *,
    counts_at_white: float,
    seed: int,
) -> None:
    """Poisson dose noise on normalised noiseless images: a pixel of value v collects
    Poisson(v · ``counts_at_white``) electrons; the result is renormalised like ingestion."""
    if counts_at_white <= 0:
        raise InputError(f"counts_at_white must be positive, got {counts_at_white}")
    images = np.asarray(load_stack(images_path), dtype=np.float64)
    rng = np.random.default_rng(seed)
    noisy = rng.poisson(images * counts_at_white).astype(np.float64)
    save_npy(images_out, np.stack([normalise_percentile(im) for im in noisy[:, 0]])[:, None])


def translate_simulation(
    checkpoint: str | os.PathLike,
    images_path: str | os.PathLike,
    images_out: str | os.PathLike,
    *,
    input_noise: float = 0.0,
    seed: int = 0,
    device: str = "auto",
) -> None:
    """Whole simulated images → experiment-like images with the CycleGAN's G_LH (fully
    convolutional, pixel-aligned, so the vacancy labels stay valid), then the scan-row jitter
    the CycleGAN was trained with, if any (sub-pixel: the labels stay valid; drawn from
    ``seed``)."""
    from ..checkpoint import read_model_checkpoint
    from ..inference.cyclegan import load_cyclegan_generator, translate
    from ..synth.stem import ar1_series, scan_row_jitter

    dev = select_device(device)
    generator = load_cyclegan_generator(checkpoint, "G_LH", str(dev))
    jitter = read_model_checkpoint(checkpoint, "cyclegan")["model_config"].get("scan_jitter")
    images = np.asarray(load_stack(images_path), dtype=np.float32)
    out = translate(
        generator, images, batch_size=4, show_progress=True, input_noise=input_noise, seed=seed
    )
    if jitter:
        rng = np.random.default_rng(seed + 1)
        for im in out[:, 0]:
            im[:] = scan_row_jitter(im, ar1_series(im.shape[0], *jitter, rng))
    save_npy(images_out, np.stack([normalise_percentile(im) for im in out[:, 0]])[:, None])


def _taper(size: int) -> np.ndarray:
    """2-D blending weight of one tile: a raised cosine that never reaches zero, so overlapping
    tiles hand over smoothly and a border pixel covered once still counts."""
    w = 0.1 + 0.9 * np.hanning(size + 2)[1:-1]
    return np.outer(w, w).astype(np.float32)


def vacancy_probability(
    model: "torch.nn.Module",
    image: np.ndarray,
    *,
    tile: int = 128,
    overlap: int = 32,
    tta: bool = True,
    batch_size: int = 8,
) -> np.ndarray:
    """Per-pixel probability (H, W) in [0, 1] of a vacancy (of any type): the first map of
    :func:`vacancy_maps`."""
    return vacancy_maps(model, image, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size)[0]


def vacancy_maps(
    model: "torch.nn.Module",
    image: np.ndarray,
    *,
    tile: int = 128,
    overlap: int = 32,
    tta: bool = True,
    batch_size: int = 8,
) -> np.ndarray:
    """Maps (1 + C, H, W) of a (H, W) image: the probability of a vacancy (sigmoid of the
    heatmap channel) and, for a detector of C > 1 types, the probability of each type given a
    vacancy there (softmax of the type channels).

    Overlapping ``tile``² windows (stride ``tile - overlap``, last row/column flush with the
    border) are blended with a tapered weight; with ``tta`` each window is predicted in all 8
    D4 orientations and the probabilities averaged. Images smaller than a tile are reflected
    up to one.
    """
    import torch

    dev = next(model.parameters()).device
    h0, w0 = image.shape
    mult = 2**model.depth
    tile = max(mult, tile - tile % mult)
    ph, pw = max(0, tile - h0), max(0, tile - w0)
    padded = np.pad(image, ((0, ph), (0, pw)), mode="reflect") if ph or pw else image
    h, w = padded.shape
    positions = tile_positions(h, w, tile, max(1, tile - overlap), edge="shift")
    weight = _taper(tile)
    total = np.zeros((model.head.out_channels, h, w), np.float32)
    norm = np.zeros((h, w), np.float32)
    ks = range(D4_SIZE) if tta else [0]
    with torch.no_grad():
        for s in range(0, len(positions), batch_size):
            pos = positions[s : s + batch_size]
            x = torch.from_numpy(
                np.stack([padded[y : y + tile, x0 : x0 + tile] for y, x0 in pos])[:, None].astype(
                    np.float32
                )
            ).to(dev)
            prob = 0
            for k in ks:
                with torch.autocast(
                    device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"
                ):
                    logits = model(d4_transform(x, k)).float()
                maps = torch.cat([torch.sigmoid(logits[:, :1]), logits[:, 1:].softmax(1)], 1)
                prob += d4_transform(maps, d4_inverse(k))
            prob = (prob / len(ks)).cpu().numpy()
            for (y, x0), p in zip(pos, prob):
                total[:, y : y + tile, x0 : x0 + tile] += p * weight
                norm[y : y + tile, x0 : x0 + tile] += weight
    return (total / norm)[:, :h0, :w0]


def typed_peaks(
    maps: np.ndarray, types: list[str], threshold: float, min_distance: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vacancies in the maps of :func:`vacancy_maps`: peaks (x, y) of the vacancy probability
    at ``threshold`` or above, at least ``min_distance`` px apart, strongest first; their
    scores; and the type of each, the most probable one at the peak."""
    xy, score = find_peaks(maps[0], threshold, min_distance)
    if len(types) == 1:
        return xy, score, np.full(len(xy), types[0], dtype=object)
    ij = np.round(xy).astype(int)
    channel = maps[1:, ij[:, 1], ij[:, 0]].argmax(0) if len(xy) else np.empty(0, int)
    return xy, score, np.asarray(types, dtype=object)[channel]


CALIBRATION_THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 3)


def calibrate_threshold(
    model: "torch.nn.Module",
    types: list[str],
    images: np.ndarray,
    points: list[np.ndarray],
    *,
    tolerance_px: float,
    min_distance_px: int,
    augment: dict[str, Any] | None = None,
    seed: int = 0,
    tile: int = 128,
    overlap: int = 32,
) -> tuple[float, np.ndarray]:
    """The probability threshold of a detector's operating point: the one of
    :data:`CALIBRATION_THRESHOLDS` with the best F1 (the lowest of ties) on its own training
    ``images`` (N, 1, H, W) and their true ``points`` (x, y px per image), matched within
    ``tolerance_px``; with ``augment`` (the training's ranges of
    :func:`~matgen.data.augment.microscope_augment`, plus ``p``) the images first take fresh
    draws of it (``seed``), so the threshold is set where the conditions vary as in training.

    Why: a peak's probability is lower than the Gaussian target's height wherever the net is
    unsure of the position to a pixel, and lower still the more varied its training images; a
    fixed 0.5 then cuts the augmented detector's recall on every image (seen as a recall
    collapse at high precision). No test label is used. Without test-time augmentation (8×
    cheaper; its averaged peaks are a little lower). Returns the threshold and the curve
    (threshold, precision, recall, f1, tp, fp per row).
    """
    from ..data.augment import microscope_augment

    rng = np.random.default_rng(seed)
    ranges = {k: tuple(v) for k, v in (augment or {}).items() if k != "p"}
    candidates = []
    for image in np.asarray(images, np.float32)[:, 0]:
        if augment and rng.random() < float(augment.get("p", 1.0)):
            image = microscope_augment(image, rng, **ranges).astype(np.float32)
        maps = vacancy_maps(model, image, tile=tile, overlap=overlap, tta=False)
        xy, score, _ = typed_peaks(maps, types, float(CALIBRATION_THRESHOLDS[0]), min_distance_px)
        candidates.append((xy, score))
    curve = precision_recall_curve(candidates, list(points), tolerance_px, CALIBRATION_THRESHOLDS)
    return float(curve[int(np.argmax(curve[:, 3])), 0]), curve


def f1_plateau(curve: np.ndarray, n_true: int) -> tuple[float, float]:
    """The range of thresholds whose F1 on a labelled set is within one standard error of the
    best (the binomial sd √(F(1 − F)/n) of an F1 over ``n_true`` true vacancies): the
    thresholds those labels cannot tell apart. ``curve``: rows of threshold, precision, recall,
    F1 (:func:`calibrate_threshold`). Returns (lowest, highest) threshold of that set."""
    curve = np.asarray(curve, dtype=np.float64)
    best = curve[:, 3].max()
    se = np.sqrt(best * (1 - best) / max(int(n_true), 1))
    within = curve[curve[:, 3] >= best - se - 1e-12, 0]
    return float(within.min()), float(within.max())


def score_valley(scores: np.ndarray, min_peaks: int = 20) -> float | None:
    """Otsu's level (:func:`matgen.data.threshold.otsu_split`) of candidate peaks' ``scores``
    (probabilities), or None where fewer than ``min_peaks`` of them or a single value: too few
    to tell two populations apart."""
    from ..data.threshold import otsu_split

    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) < min_peaks or np.ptp(scores) <= 0:
        return None
    return otsu_split(scores)


def score_valley_threshold(
    model: "torch.nn.Module",
    types: list[str],
    images: np.ndarray,
    *,
    min_distance_px: int,
    min_peaks: int = 20,
    tile: int = 128,
    overlap: int = 32,
) -> tuple[float | None, np.ndarray]:
    """The probability threshold at the valley between a detector's two populations of peak
    scores on unlabelled ``images`` (N, 1, H, W) of the microscope it will be used on:
    :func:`score_valley` of the scores of every candidate peak (above the lowest calibration
    threshold, ``min_distance_px`` apart); None where fewer than ``min_peaks`` candidates or
    one score.

    Why: on its own training images a detector's F1 is flat over a wide band of thresholds, so
    the best one there is decided by one or two detections in hundreds, while on another
    microscope's images the scores of lattice sites and noise dips move up or down with the
    domain gap. There the candidates' scores split into confident vacancies and a low tail; a
    microscopist would cut at the valley of their histogram, and so does this — with no label.
    Without test-time augmentation, as the training-image calibration. Returns the threshold and
    the scores.
    """
    scores = []
    for image in np.asarray(images, np.float32)[:, 0]:
        maps = vacancy_maps(model, image, tile=tile, overlap=overlap, tta=False)
        scores.append(
            typed_peaks(maps, types, float(CALIBRATION_THRESHOLDS[0]), min_distance_px)[1]
        )
    scores = np.concatenate(scores) if scores else np.empty(0)
    return score_valley(scores, min_peaks), scores


def detect_in_stack(
    checkpoint: str | os.PathLike,
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    points_out: str | os.PathLike,
    *,
    min_threshold: float = 0.05,
    min_distance_angstrom: float = 1.0,
    tile: int = 128,
    overlap: int = 32,
    tta: bool = True,
    device: str = "auto",
) -> pd.DataFrame:
    """Candidate vacancies (peaks above ``min_threshold``, with scores and types) in every
    image of an ingested stack; thresholds above that are applied when scoring."""
    from ..inference.detector import load_vacancy_detector

    dev = select_device(device)
    model, model_px, types, *_ = load_vacancy_detector(checkpoint, str(dev))
    images = load_stack(images_path)
    px = float(pd.read_csv(table_path)["pixel_size"].iloc[0])
    if abs(px - model_px) > 1e-6 * model_px:
        raise InputError(
            f"{images_path}: images at {px} Å/px but {checkpoint} was trained at "
            f"{model_px} Å/px; ingest them at the detector's pixel size"
        )
    min_distance = max(1, int(round(min_distance_angstrom / px)))
    rows = []
    for i in progress(range(len(images)), "detecting", len(images)):
        maps = vacancy_maps(
            model, np.asarray(images[i, 0], np.float32), tile=tile, overlap=overlap, tta=tta
        )
        xy, score, kind = typed_peaks(maps, types, min_threshold, min_distance)
        rows.append(
            pd.DataFrame(
                {
                    "image": i,
                    "x_px": xy[:, 0],
                    "y_px": xy[:, 1],
                    "x_angstrom": xy[:, 0] * px,
                    "y_angstrom": xy[:, 1] * px,
                    "score": score,
                    "type": kind,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table["image"] = table["image"].astype(int)
    save_table(points_out, table)
    return table


def score_detections(
    predictions: dict[str, str | os.PathLike],
    truth_points: str | os.PathLike,
    table_path: str | os.PathLike,
    scores_out: str | os.PathLike,
    curve_out: str | os.PathLike,
    per_image_out: str | os.PathLike,
    points_out: str | os.PathLike | None = None,
    *,
    detectors: dict[str, str | os.PathLike] | None = None,
    threshold: float | None = None,
    tolerance_angstrom: float = 1.0,
    border_angstrom: float = 2.0,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 1: precision, recall and F1 (95 % bootstrap intervals over images) per training set,
    for vacancies of any type and (columns ``precision_<type>``, ``recall_<type>``, ``f1_<type>``
    with ``f1_<type>_low/high``, ``n_<type>`` true ones) per type of the true labels, where a
    prediction must also have the right type; ``type_accuracy``: the share of matched
    vacancies given their true type.

    ``predictions`` maps a training-set name to its candidate table (from
    :func:`detect_in_stack`); those at ``threshold`` or above count, or, with ``threshold``
    None, those at the calibrated threshold of each set's detector (``detectors``: name →
    checkpoint; :func:`calibrate_threshold`: set on its training images, no test label). A
    prediction matches a true vacancy within ``tolerance_angstrom``; points closer than
    ``border_angstrom`` to an edge are dropped from both sides. Also writes the PR curve over
    the threshold, per-image counts and (``points_out``) every scored point with its status:
    ``tp`` (a matched prediction), ``fp`` or ``fn`` (a missed true vacancy), in pixels.
    """
    table = pd.read_csv(table_path)
    n = len(table)
    if n == 0:
        raise InputError(f"{table_path}: no experimental images to score")
    px = float(table["pixel_size"].iloc[0])
    shape = (int(table["height"].iloc[0]), int(table["width"].iloc[0]))
    border, tol = border_angstrom / px, tolerance_angstrom / px
    truths, true_types = [], []
    for xy, kind in zip(*load_points(truth_points, n)):
        keep = inside(xy, shape, border)
        truths.append(xy[keep])
        true_types.append(kind[keep])
    results, curves, per_image, points = [], [], [], []
    cuts = _operating_points(predictions, detectors, threshold)
    for name, path in predictions.items():
        cut = cuts[name]
        pred = pd.read_csv(path)
        if "type" not in pred.columns:
            pred["type"] = UNTYPED
        cands, kinds = [], []
        for i in range(n):
            rows = pred[pred["image"] == i]
            xy = rows[["x_px", "y_px"]].to_numpy(float)
            keep = inside(xy, shape, border)
            cands.append((xy[keep], rows["score"].to_numpy(float)[keep]))
            kinds.append(rows["type"].astype(str).to_numpy(object)[keep])
        counts, kept, kept_types = [], [], []
        for i, ((xy, score), true) in enumerate(zip(cands, truths)):
            kept.append(xy[score >= cut])
            kept_types.append(kinds[i][score >= cut])
            m = match_points(kept[i], true, tol)
            counts.append((m.tp, m.fp, m.fn))
            points += _point_status(name, i, kept[i], true, m, kept_types[i], true_types[i])
            per_image.append(dict(training_set=name, image=i, tp=m.tp, fp=m.fp, fn=m.fn))
        ci = bootstrap_scores(np.array(counts), n_boot=n_boot, seed=seed)
        tp, fp, fn = np.sum(counts, axis=0)
        results.append(
            dict(
                training_set=name,
                precision=ci["precision"][0],
                precision_low=ci["precision"][1],
                precision_high=ci["precision"][2],
                recall=ci["recall"][0],
                recall_low=ci["recall"][1],
                recall_high=ci["recall"][2],
                f1=ci["f1"][0],
                f1_low=ci["f1"][1],
                f1_high=ci["f1"][2],
                tp=int(tp),
                fp=int(fp),
                fn=int(fn),
                n_images=n,
                threshold=cut,
                tolerance_angstrom=tolerance_angstrom,
                **_per_type_scores(
                    kept,
                    kept_types,
                    truths,
                    true_types,
                    tol,
                    n_boot=n_boot,
                    seed=seed,
                ),  # fmt: skip
            )
        )
        curve = precision_recall_curve(cands, truths, tol, CALIBRATION_THRESHOLDS)
        curves.append(
            pd.DataFrame(
                curve, columns=["threshold", "precision", "recall", "f1", "tp", "fp"]
            ).assign(training_set=name)
        )
    scores = pd.DataFrame(results)
    save_table(scores_out, scores)
    save_table(curve_out, pd.concat(curves, ignore_index=True))
    save_table(per_image_out, pd.DataFrame(per_image))
    if points_out is not None:
        columns = ["training_set", "image", "x_px", "y_px", "status", "type"]
        save_table(points_out, pd.DataFrame(points, columns=columns))
    return scores


def _operating_points(
    predictions: dict[str, Any], detectors: dict[str, Any] | None, threshold: float | None
) -> dict[str, float]:
    """Each set's threshold: ``threshold`` for all, or (None) each detector's calibrated one."""
    from ..inference.detector import detector_threshold

    if threshold is not None:
        return {name: float(threshold) for name in predictions}
    missing = sorted(set(predictions) - set(detectors or {}))
    if missing:
        raise InputError(
            "score threshold null (each detector's calibrated one) but no detector checkpoint "
            f"for {', '.join(missing)}"
        )
    return {name: detector_threshold(detectors[name]) for name in predictions}


def _per_type_scores(
    pred: list[np.ndarray],
    pred_types: list[np.ndarray],
    truths: list[np.ndarray],
    true_types: list[np.ndarray],
    tolerance: float,
    *,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Table 1's per-type columns for one training set (see :func:`score_detections`); none
    when the detector's types are not the labels' (e.g. an untyped detector)."""
    types = sorted(set(np.concatenate(true_types).tolist())) if true_types else []
    predicted = set(np.concatenate(pred_types).tolist()) if pred_types else set()
    if not types or not predicted <= set(types):
        return {}
    out: dict[str, Any] = {}
    for kind in types:
        counts = []
        for xy, pk, true, tk in zip(pred, pred_types, truths, true_types):
            m = match_points(xy[pk == kind], true[tk == kind], tolerance)
            counts.append((m.tp, m.fp, m.fn))
        ci = bootstrap_scores(np.array(counts), n_boot=n_boot, seed=seed)
        out.update({f"precision_{kind}": ci["precision"][0], f"recall_{kind}": ci["recall"][0],
                    f"f1_{kind}": ci["f1"][0], f"f1_{kind}_low": ci["f1"][1],
                    f"f1_{kind}_high": ci["f1"][2],
                    f"n_{kind}": int(sum((tk == kind).sum() for tk in true_types))})  # fmt: skip
    right = matched = 0
    for xy, pk, true, tk in zip(pred, pred_types, truths, true_types):
        pairs = match_points(xy, true, tolerance).pairs
        if len(pairs):
            matched += len(pairs)
            right += int((pk[pairs[:, 0]] == tk[pairs[:, 1]]).sum())
    out["type_accuracy"] = right / matched if matched else float("nan")
    return out


def _point_status(
    name: str,
    image: int,
    pred: np.ndarray,
    true: np.ndarray,
    matches: Any,
    pred_types: np.ndarray,
    true_types: np.ndarray,
) -> list[dict[str, Any]]:
    """One row per prediction (tp or fp, with its predicted type) and per missed true point
    (fn, with its true type) of one image."""
    matched_pred = set(matches.pairs[:, 0].tolist()) if len(matches.pairs) else set()
    matched_true = set(matches.pairs[:, 1].tolist()) if len(matches.pairs) else set()
    rows = [
        dict(training_set=name, image=image, x_px=float(x), y_px=float(y),
             status="tp" if i in matched_pred else "fp", type=str(pred_types[i]))
        for i, (x, y) in enumerate(pred)
    ]  # fmt: skip
    rows += [
        dict(training_set=name, image=image, x_px=float(x), y_px=float(y), status="fn",
             type=str(true_types[i]))
        for i, (x, y) in enumerate(true)
        if i not in matched_true
    ]  # fmt: skip
    return rows


def detect_vacancies_in_files(
    checkpoint: str | os.PathLike,
    images: list[str | os.PathLike],
    pixel_size: float,
    out: str | os.PathLike,
    *,
    threshold: float | str | None = None,
    min_distance_angstrom: float = 1.0,
    tile: int = 128,
    tta: bool = True,
    device: str = "auto",
) -> pd.DataFrame:
    """Vacancies in a user's own images (any sampling): each is resampled to the detector's
    training pixel size, normalised, searched, and the points mapped back to its own pixels.

    ``pixel_size`` in Å/px; ``threshold``: the probability of a detection, None for the
    detector's operating point (saved with it), ``'valley'`` for the valley of the peak scores
    on these images (Otsu's level, :func:`matgen.data.threshold.otsu_split`: a new session at
    the microscope sets its own), brought within the detector's training plateau where its
    checkpoint keeps one. Writes ``out``: image, x_px, y_px, x_angstrom, y_angstrom,
    score, type (the detector's most probable vacancy type at the point).
    """
    from ..data.points import pixel_size_angstrom
    from ..inference.detector import load_vacancy_detector

    pixel_size = pixel_size_angstrom(pixel_size, "angstrom", "--pixel-size")
    dev = select_device(device)
    model, model_px, types, calibrated, plateau = load_vacancy_detector(checkpoint, str(dev))
    if threshold not in (None, "valley") and not isinstance(threshold, (int, float)):
        raise InputError(f"threshold must be a probability, 'valley' or None, got {threshold!r}")
    factor = pixel_size / model_px
    if threshold == "valley":  # every candidate first; the valley of their scores cuts them
        search = float(CALIBRATION_THRESHOLDS[0])
    else:
        search = calibrated if threshold is None else float(threshold)
    rows = []
    for path in progress(list(images), "detecting", len(images)):
        raw = read_image(path).astype(np.float64)
        image = ndimage.zoom(raw, factor, order=3) if abs(factor - 1) > 1e-6 else raw
        maps = vacancy_maps(model, normalise_percentile(image), tile=tile, tta=tta)
        xy, score, kind = typed_peaks(
            maps, types, search, max(1, int(round(min_distance_angstrom / model_px)))
        )
        xy = xy / factor  # back to the input image's pixels
        rows.append(
            pd.DataFrame(
                {
                    "image": Path(path).name,
                    "x_px": xy[:, 0],
                    "y_px": xy[:, 1],
                    "x_angstrom": xy[:, 0] * pixel_size,
                    "y_angstrom": xy[:, 1] * pixel_size,
                    "score": score,
                    "type": kind,
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    if threshold == "valley":
        cut = score_valley(table["score"].to_numpy())
        if cut is None:
            raise InputError(
                f"{len(table)} candidate peaks in {len(images)} images: too few to set a "
                "threshold from their scores; give --threshold a probability"
            )
        table = table[table["score"] >= (cut if plateau is None else np.clip(cut, *plateau))]
    save_table(out, table.reset_index(drop=True))
    return table.reset_index(drop=True)


def detection_summary(scores: pd.DataFrame) -> dict[str, Any]:
    """F1 per training set and whether CycleGAN data beat the noiseless simulation (the seed
    result) with non-overlapping intervals."""
    by = scores.set_index("training_set")
    out: dict[str, Any] = {f"f1_{k}": float(by.loc[k, "f1"]) for k in by.index}
    if {"cyclegan", "noiseless"} <= set(by.index):
        out["cyclegan_beats_noiseless"] = bool(
            by.loc["cyclegan", "f1_low"] > by.loc["noiseless", "f1_high"]
        )
    return out
