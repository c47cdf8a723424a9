"""Regression scores of a predicted property (here E11 in GPa) against the truth."""

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
