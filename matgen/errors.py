"""Exceptions that every entry point reports in one line (no traceback)."""

from __future__ import annotations


class MatgenError(Exception):
    """An expected failure whose message is one line naming the file, row or key first."""


class InputError(MatgenError, ValueError):
    """Bad user input: a file, a sample-sheet row or a config key, and what is wrong with it.

    The message is a single line that names the offending thing first, e.g.
    ``"data/a.tif: image has NaN or inf pixels"``.
    """


class TrainingDiverged(MatgenError, RuntimeError):
    """A loss became NaN/inf; the message names the step and the last good checkpoint."""
