"""Applying trained models: load a model file, then sample, translate, segment, judge or detect.

One module per model family, beside :mod:`matgen.models`; nothing here trains (that is
:mod:`matgen.train`), so stages, figures and the command line can use a model without
pulling in the training code.
"""
