"""Dataset readers (registered in DATASETS) and canonical emotion names."""

from distill.datasets import readers  # noqa: F401  (registers the readers)
