"""Embedded-default data generators with known ground truth, one module per study."""
