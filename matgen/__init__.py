"""matgen: deep generative models for materials micrographs, one reproducible workflow."""

__version__ = "0.1.0"
