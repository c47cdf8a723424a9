"""Regression scores of an estimated property (E11 in GPa, a tile's porosity) against the truth."""

from __future__ import annotations

import numpy as np


def regression_scores(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Mean absolute error and coefficient of determination of a regression.

    Parameters
    ----------
    predicted, true : ndarray, shape (N,)
        Predicted and true values, in the same unit (e.g. GPa).

    Returns
    -------
    dict
        ``e11_mae``: mean |predicted − true|, in the unit of the inputs; ``e11_r2``:
        R² = 1 − SS_res / SS_tot (NaN when the true values do not vary).
    """
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    ss_tot = float(((true - true.mean()) ** 2).sum())
    r2 = 1 - float(((true - predicted) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {"e11_mae": float(np.abs(predicted - true).mean()), "e11_r2": r2}


def fit_to_truth(estimated: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """How an estimate follows the truth across samples: Pearson r and the least-squares slope of
    the estimate on the truth.

    Parameters
    ----------
    estimated, true : ndarray, shape (N,)
        Estimated and true values, in the same unit (e.g. porosity, a fraction).

    Returns
    -------
    dict
        ``pearson_r`` (dimensionless); ``slope`` (dimensionless: 1 keeps the samples'
        differences, below 1 pulls every sample towards one value — which r cannot show). Both
        NaN for fewer than two samples or no spread in ``true``.
    """
    estimated, true = np.asarray(estimated, float), np.asarray(true, float)
    var = float(np.var(true))
    if len(true) < 2 or var == 0:
        return {"pearson_r": float("nan"), "slope": float("nan")}
    return {
        "pearson_r": float(np.corrcoef(estimated, true)[0, 1]),
        "slope": float(np.cov(true, estimated, bias=True)[0, 1] / var),
    }
