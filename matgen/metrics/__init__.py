"""Metrics: morphology of binary micrographs (and, in later studies, detection, segmentation)."""
