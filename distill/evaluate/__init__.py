"""Evaluation: scores, speed, reports, curves."""
