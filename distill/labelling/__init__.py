"""Labelling: the teacher run over a face store (label.py) and the posterior cache it writes (cache.py)."""
