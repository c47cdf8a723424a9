"""Point detection scores: peaks of a probability map, one-to-one matching of predicted to true
points within a tolerance, precision / recall / F1, bootstrap intervals and the PR curve.

Points are (x, y) arrays of shape (N, 2) in one unit (pixels or Å: the tolerance is in the
same unit). Matching is optimal (Hungarian, ``scipy.optimize.linear_sum_assignment``) so a
prediction between two true points never counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


@dataclass
class Matches:
    """Result of :func:`match_points`: counts and the matched index pairs (pred, true)."""

    tp: int
    fp: int
    fn: int
    pairs: np.ndarray = field(default_factory=lambda: np.empty((0, 2), int))
    distances: np.ndarray = field(default_factory=lambda: np.empty(0))


def find_peaks(
    probability: np.ndarray, threshold: float = 0.5, min_distance: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a probability map above ``threshold``, at least ``min_distance`` apart.

    Parameters
    ----------
    probability : ndarray, shape (H, W)
        Per-pixel probability (or any score) map.
    threshold : float
        Smallest value a peak may have.
    min_distance : int
        Smallest distance between two peaks, in pixels.

    Returns
    -------
    xy : ndarray of float, shape (N, 2)
        Peak positions in pixels (x = column, y = row), strongest first.
    scores : ndarray, shape (N,)
        The map's value at each peak. A flat map (no structure) has no peaks.
    """
    from skimage.feature import peak_local_max

    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"expected a 2-D probability map, got shape {prob.shape}")
    rc = peak_local_max(
        prob, min_distance=min_distance, threshold_abs=threshold, exclude_border=False
    )
    if len(rc) == 0:
        return np.empty((0, 2)), np.empty(0)
    scores = prob[rc[:, 0], rc[:, 1]]
    order = np.argsort(-scores, kind="stable")
    return rc[order][:, ::-1].astype(float), scores[order].astype(float)


def inside(xy: np.ndarray, shape: tuple[int, int], border: float) -> np.ndarray:
    """Which points lie at least ``border`` from every image edge.

    Applied to predictions and ground truth alike, so the edge band counts on neither side.

    Parameters
    ----------
    xy : ndarray, shape (N, 2)
        Points (x, y) in pixels.
    shape : (int, int)
        Image height and width in pixels.
    border : float
        Width of the excluded band, in pixels.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    xy = np.asarray(xy, float).reshape(-1, 2)
    h, w = shape
    return (
        (xy[:, 0] >= border)
        & (xy[:, 0] <= w - 1 - border)
        & (xy[:, 1] >= border)
        & (xy[:, 1] <= h - 1 - border)
    )


def match_points(pred_xy: np.ndarray, true_xy: np.ndarray, tolerance: float) -> Matches:
    """Optimal one-to-one matching of predictions to true points closer than ``tolerance``.

    The Hungarian algorithm on the distance matrix, pairs farther than ``tolerance`` forbidden.
    A prediction is a true positive when it is matched; unmatched predictions are false
    positives and unmatched true points false negatives.

    Parameters
    ----------
    pred_xy, true_xy : ndarray, shape (N, 2) and (M, 2)
        Points in one unit (pixels or Å).
    tolerance : float
        Largest matching distance, in the same unit.

    Returns
    -------
    Matches
        ``tp``, ``fp``, ``fn`` counts and the matched index ``pairs`` (K, 2).
    """
    pred = np.asarray(pred_xy, float).reshape(-1, 2)
    true = np.asarray(true_xy, float).reshape(-1, 2)
    if len(pred) == 0 or len(true) == 0:
        return Matches(0, len(pred), len(true))
    d = cdist(pred, true)
    # forbid pairs beyond the tolerance with a cost larger than any allowed assignment
    cost = np.where(d <= tolerance, d, tolerance * (len(pred) + len(true)) + 1.0)
    rows, cols = linear_sum_assignment(cost)
    ok = d[rows, cols] <= tolerance
    pairs = np.stack([rows[ok], cols[ok]], axis=1)
    tp = int(ok.sum())
    return Matches(tp, len(pred) - tp, len(true) - tp, pairs, d[rows[ok], cols[ok]])


def precision_recall_f1(matches: Matches | tuple[int, int, int]) -> tuple[float, float, float]:
    """Precision tp/(tp+fp), recall tp/(tp+fn) and their harmonic mean F1.

    Conventions for empty sets: no predictions → precision 1; nothing to find → recall 1; so an
    image with no vacancies and no detections scores (1, 1, 1).

    Parameters
    ----------
    matches : Matches or (tp, fp, fn)
        Counts of true positives, false positives and false negatives.

    Returns
    -------
    (precision, recall, f1) : tuple of float, each in [0, 1]
    """
    tp, fp, fn = (matches.tp, matches.fp, matches.fn) if isinstance(matches, Matches) else matches
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def bootstrap_scores(
    counts: np.ndarray, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Precision, recall and F1 pooled over images with bootstrap intervals over images.

    Images are resampled with replacement ``n_boot`` times and the scores recomputed from the
    pooled counts; the intervals are percentile intervals.

    Parameters
    ----------
    counts : ndarray of int, shape (n_images, 3)
        tp, fp, fn per image.
    n_boot : int
        Bootstrap resamples.
    confidence : float
        Coverage of the intervals (0.95: the 2.5th and 97.5th percentiles).
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``{"precision": (value, low, high), "recall": ..., "f1": ...}``, all in [0, 1].
    """
    counts = np.asarray(counts, float).reshape(-1, 3)
    if len(counts) == 0:
        raise ValueError("no images to score")
    value = precision_recall_f1(tuple(counts.sum(0)))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(counts), (n_boot, len(counts)))
    tp, fp, fn = (counts[idx].sum(1)).T
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        r = np.where(tp + fn > 0, tp / (tp + fn), 1.0)
        f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    alpha = (1 - confidence) / 2
    out = {}
    for name, v, boot in zip(("precision", "recall", "f1"), value, (p, r, f)):
        lo, hi = np.quantile(boot, [alpha, 1 - alpha])
        out[name] = (float(v), float(lo), float(hi))
    return out


def precision_recall_curve(
    predictions: list[tuple[np.ndarray, np.ndarray]],
    truths: list[np.ndarray],
    tolerance: float,
    thresholds: np.ndarray,
) -> np.ndarray:
    """Pooled precision, recall and F1 over images for each score threshold.

    Parameters
    ----------
    predictions : list of (xy, scores)
        One pair per image: peaks found at the lowest threshold, (N, 2) positions and (N,)
        scores.
    truths : list of ndarray, each (M, 2)
        The true points of each image, in the unit of the predictions.
    tolerance : float
        Largest matching distance (see :func:`match_points`).
    thresholds : ndarray, shape (T,)
        Score thresholds.

    Returns
    -------
    ndarray, shape (T, 6)
        threshold, precision, recall, f1, tp, fp per threshold (fn follows from the number of
        true points).
    """
    rows = []
    for t in np.asarray(thresholds, float):
        tp = fp = fn = 0
        for (xy, scores), true in zip(predictions, truths):
            m = match_points(np.asarray(xy)[np.asarray(scores) >= t], true, tolerance)
            tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
        rows.append((t, *precision_recall_f1((tp, fp, fn)), tp, fp))
    return np.array(rows, float).reshape(-1, 6)
