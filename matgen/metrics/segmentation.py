"""Segmentation scores on integer label maps (0 .. num_classes − 1), single images or batches.

Definitions (per image; a batch (N, H, W) is scored image by image and the scores averaged):

- ``iou_per_class``: IoU_c = |P_c ∩ T_c| / |P_c ∪ T_c|; NaN where class c is in neither the
  prediction nor the target (the union is empty: nothing to score).
- ``miou``: the mean of IoU_c over the classes present in prediction ∪ target. A class that is
  only predicted (absent from the target) counts with IoU 0, so a few stray pixels of an absent
  class pull the mean down by 1/(number of classes present).
- ``miou_present_classes``: the customised mIoU of the segmentation study — the mean of IoU_c
  over the classes present in the *target* only. Stray predictions of an absent class are not
  scored as a class of their own (they still lower the IoU of the class they were taken from,
  through its union). If the target has no labelled pixel at all it is NaN.

Pixels labelled ``ignore_index`` in the target (e.g. 255, unlabelled) are left out of both maps.
"""

from __future__ import annotations

import numpy as np


def _check(pred: np.ndarray, target: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if pred.ndim not in (2, 3):
        raise ValueError(f"label maps must be (H, W) or (N, H, W), got {pred.shape}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    return pred, target


def _intersections_unions(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image and class: intersection, union, and whether the class is in the target."""
    pred = pred.reshape(len(pred), -1).astype(np.int64)
    target = target.reshape(len(target), -1).astype(np.int64)
    valid = np.ones_like(target, bool) if ignore_index is None else target != ignore_index
    inter = np.zeros((len(pred), num_classes))
    area_p = np.zeros((len(pred), num_classes))
    area_t = np.zeros((len(pred), num_classes))
    for i in range(len(pred)):
        p, t = pred[i][valid[i]], target[i][valid[i]]
        if ((p < 0) | (p >= num_classes)).any() or ((t < 0) | (t >= num_classes)).any():
            raise ValueError(f"labels outside 0..{num_classes - 1} in image {i}")
        inter[i] = np.bincount(t[p == t], minlength=num_classes)
        area_p[i] = np.bincount(p, minlength=num_classes)
        area_t[i] = np.bincount(t, minlength=num_classes)
    return inter, area_p + area_t - inter, area_t > 0


def iou_per_class(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Intersection over union of each class.

    Parameters
    ----------
    pred, target : ndarray of int, shape (H, W) or (N, H, W)
        Label maps of equal shape, values in 0..num_classes-1.
    num_classes : int
        Number of classes.
    ignore_index : int, optional
        Target label of unlabelled pixels, left out of both maps.

    Returns
    -------
    ndarray, shape (num_classes,) or (N, num_classes)
        IoU in [0, 1]; NaN where a class is in neither map.
    """
    pred, target = _check(pred, target, num_classes)
    single = pred.ndim == 2
    inter, union, _ = _intersections_unions(
        pred[None] if single else pred,
        target[None] if single else target,
        num_classes,
        ignore_index,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return iou[0] if single else iou


def miou(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> float:
    """Mean IoU over the classes present in prediction ∪ target.

    Parameters
    ----------
    pred, target : ndarray of int, shape (H, W) or (N, H, W)
        Label maps of equal shape.
    num_classes : int
        Number of classes.
    ignore_index : int, optional
        Target label of unlabelled pixels, left out of both maps.

    Returns
    -------
    float
        In [0, 1]; the mean over images for a batch. A class predicted where the target has
        none counts with IoU 0.
    """
    iou = np.atleast_2d(iou_per_class(pred, target, num_classes, ignore_index))
    with np.errstate(invalid="ignore"):
        per_image = np.array([np.nanmean(row) if np.isfinite(row).any() else np.nan for row in iou])
    return float(np.nanmean(per_image)) if np.isfinite(per_image).any() else float("nan")


def miou_present_classes(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> float:
    """Mean IoU over the classes present in the target only (the customised mIoU).

    A few stray pixels of a class the ground truth lacks do not sink the score.

    Parameters
    ----------
    pred, target : ndarray of int, shape (H, W) or (N, H, W)
        Label maps of equal shape.
    num_classes : int
        Number of classes.
    ignore_index : int, optional
        Target label of unlabelled pixels, left out of both maps.

    Returns
    -------
    float
        In [0, 1]; the mean over images for a batch.
    """
    pred, target = _check(pred, target, num_classes)
    single = pred.ndim == 2
    inter, union, present = _intersections_unions(
        pred[None] if single else pred,
        target[None] if single else target,
        num_classes,
        ignore_index,
    )
    scores = []
    for i in range(len(inter)):
        if not present[i].any():
            scores.append(np.nan)
            continue
        scores.append(float((inter[i][present[i]] / union[i][present[i]]).mean()))
    scores = np.array(scores)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")
