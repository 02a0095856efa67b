"""Distillation losses: pure tensor functions (functional.py) and thin registered modules (modules.py)."""

from distill.losses import modules  # noqa: F401  (registers the losses)
