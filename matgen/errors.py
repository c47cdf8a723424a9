"""One exception type for bad input, so every entry point can report it in one line."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a file, a sample-sheet row or a config key, and what is wrong with it.

    The message is a single line that names the offending thing first, e.g.
    ``"data/a.tif: image has NaN or inf pixels"``.
    """
