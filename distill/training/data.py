"""LightningDataModule over face stores and their posterior caches; HDF5 files open lazily in each worker."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset, WeightedRandomSampler

from distill import augment
from distill.cache import PosteriorCache
from distill.datasets.emotions import canonical, canonical_classes
from distill.errors import DistillError
from distill.faces.store import FaceStore


def held_out(keys: list[str], fraction: float) -> np.ndarray:
    """Boolean mask of the validation split, stable per key (not per position): adding faces moves nothing.

    Tiny pools still get one validation face (the one with the smallest hash)."""
    buckets = np.array([int(hashlib.sha1(k.encode()).hexdigest()[:8], 16) % 10_000 for k in keys])
    mask = buckets < int(fraction * 10_000)
    if len(keys) >= 2 and fraction > 0 and not mask.any():
        mask[int(buckets.argmin())] = True
    return mask


class CachedFaces(Dataset):
    """uint8 pixels, view parameters and the teacher logits of that exact view.

    views: "cached" picks one of the cache's views, "fresh" draws a new random view each time (the online
    teacher labels it in the training step), "identity" uses the clean face."""

    def __init__(self, store: FaceStore, cache: PosteriorCache, indices: np.ndarray, views: str):
        self.store, self.cache, self.indices, self.views = store, cache, indices, views
        self.augment = augment.AugmentConfig(**cache.augment) if cache.augment else augment.AugmentConfig()
        self.targets = store_targets(store.labels, cache.classes)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict:
        i = int(self.indices[j])
        params, logits = augment.IDENTITY, self.cache.logits[i]
        if self.views == "cached":
            params, logits = self.cache.view(i, int(torch.randint(self.cache.views, ()).item()))
        elif self.views == "fresh":
            params = augment.random_view(self.augment)
        return {
            "pixels": torch.from_numpy(self.store.pixels(i)),
            "params": torch.from_numpy(np.asarray(params, np.float32)),
            "teacher_logits": torch.from_numpy(np.asarray(logits, np.float32)),
            "target": int(self.targets[i]),
            "index": i,
        }


def store_targets(labels: list[str], classes: list[str]) -> np.ndarray:
    """The index in `classes` of each face's own label (a labelled store: csv, rafd, fer2013 readers), or -1 where
    the face has none or one the teacher lacks (the `ce` loss ignores those)."""
    index = {name: i for i, name in enumerate(canonical_classes(classes))}
    return np.array([index.get(canonical(label) or "", -1) if label else -1 for label in labels], np.int64)


def open_sources(sources: list[tuple[Path, Path]]) -> list[tuple[FaceStore, PosteriorCache]]:
    """Open (store, cache) pairs; all caches must come from the same teacher with the same classes."""
    pairs = []
    for store_path, cache_path in sources:
        store, cache = FaceStore(store_path), PosteriorCache(cache_path)
        cache.check_store(store)
        if pairs and (cache.teacher != pairs[0][1].teacher or cache.classes != pairs[0][1].classes):
            first = pairs[0][1]
            raise DistillError(
                f"{cache.path} was made by {cache.teacher.get('spec')} with classes {cache.classes}, but "
                f"{first.path} by {first.teacher.get('spec')} with {first.classes}; train from caches of one teacher"
            )
        pairs.append((store, cache))
    if not pairs:
        raise DistillError("no posterior cache given")
    return pairs


class DistillData(L.LightningDataModule):
    def __init__(
        self,
        sources: list[tuple[Path, Path]],
        batch_size: int = 64,
        val_fraction: float = 0.1,
        workers: int = 2,
        views: str = "cached",
        limit: int | None = None,
        balance: float = 0.0,
    ):
        super().__init__()
        self.pairs = open_sources(sources)
        self.batch_size, self.workers, self.balance = batch_size, workers, balance
        self.views = views if views != "cached" or all(c.views > 0 for _, c in self.pairs) else "identity"
        self.train_sets, self.val_sets = [], []
        for store, cache in self.pairs:
            val = held_out(store.keys, val_fraction)
            idx = np.arange(len(store))
            self.train_sets.append(CachedFaces(store, cache, idx[~val], self.views))
            self.val_sets.append(CachedFaces(store, cache, idx[val], "identity"))
        self.train_set, self.val_set = ConcatDataset(self.train_sets), ConcatDataset(self.val_sets)
        if limit:
            gen = torch.Generator().manual_seed(0)
            self.train_set = _subset(self.train_set, limit, gen)
            self.val_set = _subset(self.val_set, max(1, limit // 8), gen)
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            total = sum(len(s) for s, _ in self.pairs)
            raise DistillError(f"{total} faces are too few to split into train and validation")

    def labelled_training_faces(self) -> int:
        """Training faces (after --limit) with a label of the teacher's classes (what the `ce` loss learns from)."""
        return int((_per_face(self.train_set, lambda part: part.targets[part.indices]) >= 0).sum())

    @property
    def classes(self) -> list[str]:
        return self.pairs[0][1].classes

    @property
    def teacher(self) -> dict:
        return self.pairs[0][1].teacher

    def _loader(self, dataset: Dataset, shuffle: bool, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
            drop_last=False,
        )

    def teacher_classes(self, dataset: Dataset) -> np.ndarray:
        """The teacher's argmax on each clean face of `dataset`, in the dataset's order."""
        return _per_face(dataset, lambda part: part.cache.logits[part.indices].argmax(1))

    def train_sampler(self) -> Sampler | None:
        """With balance b > 0, faces are drawn (with replacement, one epoch's worth) with weight freq(c)^-b, c the
        teacher's class for the face: unlabelled pools are mostly neutral and happy faces, so the student sees the
        teacher's rare classes (fear, surprise, disgust) too seldom to learn them. b = 0.5 gives each class a share
        proportional to sqrt(freq); b = 1 equal shares."""
        if self.balance <= 0:
            return None
        labels = self.teacher_classes(self.train_set)
        freq = np.bincount(labels, minlength=len(self.classes)).astype(np.float64)
        weights = freq[labels] ** -self.balance
        return WeightedRandomSampler(torch.from_numpy(weights), len(labels), replacement=True)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True, self.train_sampler())

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)


def _per_face(dataset: Dataset, column) -> np.ndarray:
    """column(part) for every CachedFaces part of a ConcatDataset (maybe under a --limit Subset), in item order."""
    picks = dataset.indices if isinstance(dataset, Subset) else None
    concat = dataset.dataset if isinstance(dataset, Subset) else dataset
    values = np.concatenate([column(part) for part in concat.datasets])
    return values if picks is None else values[np.asarray(picks)]


def _subset(dataset: Dataset, n: int, gen: torch.Generator) -> Dataset:
    """A random (not leading) subset, so a limited run still samples every source."""
    keep = torch.randperm(len(dataset), generator=gen)[: min(n, len(dataset))]
    return torch.utils.data.Subset(dataset, keep.tolist())
