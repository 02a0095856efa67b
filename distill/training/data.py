"""LightningDataModule over face stores and their posterior caches, fetched a batch at a time.

A batch is one gather: from the faces held in memory (decoded once, at the side training uses), or from the HDF5
store (sorted reads, one per batch). The teacher's views (parameters and logits) are small and always in memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    Sampler,
    WeightedRandomSampler,
)

from distill.datasets.emotions import canonical, canonical_classes
from distill.errors import DistillError
from distill.faces import augment
from distill.faces.store import FaceStore
from distill.labelling.cache import PosteriorCache

PRELOAD_ROWS = 2048  # faces decoded and resized at a time when a store is loaded into memory


def held_out(keys: list[str], fraction: float) -> np.ndarray:
    """Boolean mask of the validation split, stable per key (not per position): adding faces moves nothing.

    Tiny pools still get one validation face (the one with the smallest hash)."""
    buckets = np.array([int(hashlib.sha1(k.encode()).hexdigest()[:8], 16) % 10_000 for k in keys])
    mask = buckets < int(fraction * 10_000)
    if len(keys) >= 2 and fraction > 0 and not mask.any():
        mask[int(buckets.argmin())] = True
    return mask


class Pixels:
    """A store's faces, uint8 (N,S,S,3): decoded into memory at `side` (antialiased, as the model's preprocessing
    resizes), or read from the HDF5 file at the store's side for each batch (the training step resizes them)."""

    def __init__(self, store: FaceStore, side: int, in_memory: bool):
        self.store, self.side = store, min(side, store.size)
        self.array = _decoded(store, self.side) if in_memory else None

    def take(self, indices: np.ndarray) -> np.ndarray:
        if self.array is not None:
            return self.array[indices]
        unique, inverse = np.unique(indices, return_inverse=True)  # h5py reads increasing, distinct rows
        return self.store.pixels(unique)[inverse]


def _decoded(store: FaceStore, side: int) -> np.ndarray:
    out = np.empty((len(store), side, side, 3), np.uint8)
    for start in range(0, len(store), PRELOAD_ROWS):
        block = store.pixels(slice(start, start + PRELOAD_ROWS))
        if side != store.size:
            x = augment.resize(augment.to_float(block), side)  # (B,3,side,side) in [0, 1]
            block = x.mul_(255).round_().byte().permute(0, 2, 3, 1).numpy()
        out[start : start + len(block)] = block
    return out


@dataclass
class Part:
    """The faces `indices` of one (store, cache) pair in one split, with what a batch needs of each."""

    pixels: Pixels
    cache: PosteriorCache
    indices: np.ndarray
    targets: np.ndarray  # each face's own label as a class index of the teacher's, -1 for none
    view_params: np.ndarray | None  # (N, V, 7) of the whole cache, or None without views
    view_logits: np.ndarray | None  # (N, V, C)


class FacePool(Dataset):
    """The faces of one split over several parts; `pool[list]` returns a whole batch (DataLoader's __getitems__).

    views: "cached" picks one of the cache's views per face, "fresh" draws new random views (the online teacher
    labels them in the training step), "identity" uses the clean faces."""

    def __init__(self, parts: list[Part], views: str, augment_cfg: augment.AugmentConfig):
        self.parts, self.views, self.augment = parts, views, augment_cfg
        self.ends = np.cumsum([len(p.indices) for p in parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, position: int) -> dict:
        batch = self.__getitems__([position])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, positions: list[int]) -> dict:
        """A batch: pixels uint8 (B,S,S,3), params (B,7), teacher_logits (B,C), target (B,), index (B,)."""
        positions = np.asarray(positions, np.int64)
        which = np.searchsorted(self.ends, positions, side="right")
        columns: dict[str, list] = {k: [] for k in ("pixels", "params", "teacher_logits", "target", "index")}
        order = []
        for p in np.unique(which):
            at = np.flatnonzero(which == p)
            part = self.parts[p]
            local = positions[at] - (self.ends[p - 1] if p else 0)
            faces = part.indices[local]
            params, logits = self._teaching(part, faces)
            values = (part.pixels.take(faces), params, logits, part.targets[faces], faces)
            for key, value in zip(columns, values, strict=True):
                columns[key].append(value)
            order.append(at)
        back = np.argsort(np.concatenate(order))  # the batch in the sampler's order
        return {k: torch.from_numpy(np.concatenate(v)[back]) for k, v in columns.items()}

    def _teaching(self, part: Part, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(params (n,7), teacher logits (n,C)) for the faces, by this pool's kind of view."""
        if self.views == "cached":
            k = torch.randint(part.view_params.shape[1], (len(faces),)).numpy()
            return part.view_params[faces, k], part.view_logits[faces, k].astype(np.float32)
        n, logits = len(faces), part.cache.logits[faces].astype(np.float32)
        if self.views == "fresh":
            rng = np.random.default_rng(int(torch.randint(2**62, ()).item()))  # seeded by Lightning, per worker
            return augment.sample_params(n, self.augment, rng), logits
        return np.tile(augment.IDENTITY, (n, 1)), logits

    def column(self, values_of) -> np.ndarray:
        """values_of(part) (one value per face of the part) for every face, in position order."""
        return np.concatenate([values_of(part) for part in self.parts]) if self.parts else np.zeros(0)


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


def _limited(parts: list[Part], n: int, gen: torch.Generator) -> list[Part]:
    """At most n faces drawn at random over all parts (not the leading ones), so every source stays sampled."""
    total = sum(len(p.indices) for p in parts)
    keep = np.sort(torch.randperm(total, generator=gen)[: min(n, total)].numpy())
    ends, out = np.cumsum([len(p.indices) for p in parts]), []
    for i, part in enumerate(parts):
        start = ends[i - 1] if i else 0
        mine = keep[(keep >= start) & (keep < ends[i])] - start
        out.append(Part(part.pixels, part.cache, part.indices[mine], part.targets, part.view_params, part.view_logits))
    return out


class DistillData(L.LightningDataModule):
    """Train and validation pools of (store, cache) pairs. `side`: the side the training step works at (faces
    held in memory are decoded at it); `in_memory`: decode every face once instead of reading the store per batch."""

    def __init__(
        self,
        sources: list[tuple[Path, Path]],
        batch_size: int = 64,
        val_fraction: float = 0.1,
        workers: int = 0,
        views: str = "cached",
        limit: int | None = None,
        balance: float = 0.0,
        side: int | None = None,
        in_memory: bool = False,
    ):
        super().__init__()
        self.pairs = open_sources(sources)
        self.batch_size, self.workers, self.balance, self.side = batch_size, workers, balance, side
        self.views = views if views != "cached" or all(c.views > 0 for _, c in self.pairs) else "identity"
        train_parts, val_parts = [], []
        for store, cache in self.pairs:
            pixels = Pixels(store, side or store.size, in_memory)
            targets = store_targets(store.labels, cache.classes)
            params, logits = cache.view_arrays() if self.views == "cached" else (None, None)
            val = held_out(store.keys, val_fraction)
            idx = np.arange(len(store))
            train_parts.append(Part(pixels, cache, idx[~val], targets, params, logits))
            val_parts.append(Part(pixels, cache, idx[val], targets, None, None))
        if limit:
            gen = torch.Generator().manual_seed(0)
            train_parts, val_parts = _limited(train_parts, limit, gen), _limited(val_parts, max(1, limit // 8), gen)
        aug = augment.AugmentConfig(**self.pairs[0][1].augment) if self.pairs[0][1].augment else augment.AugmentConfig()
        self.train_set, self.val_set = FacePool(train_parts, self.views, aug), FacePool(val_parts, "identity", aug)
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            total = sum(len(s) for s, _ in self.pairs)
            raise DistillError(f"{total} faces are too few to split into train and validation")

    def labelled_training_faces(self) -> int:
        """Training faces (after --limit) with a label of the teacher's classes (what the `ce` loss learns from)."""
        return int((self.train_set.column(lambda part: part.targets[part.indices]) >= 0).sum())

    @property
    def classes(self) -> list[str]:
        return self.pairs[0][1].classes

    @property
    def teacher(self) -> dict:
        return self.pairs[0][1].teacher

    def _loader(self, dataset: FacePool, sampler: Sampler | None, shuffle: bool) -> DataLoader:
        # a plain sampler and batch size (Lightning shards them over DDP ranks); the DataLoader hands each batch's
        # indices to FacePool.__getitems__ at once. Training drops a last, partial batch where full ones exist: a
        # batch of one face would stop BatchNorm ("expected more than 1 value per channel")
        ranks = self.trainer.world_size if self.trainer is not None else 1
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            drop_last=shuffle and len(dataset) > self.batch_size * ranks,
            collate_fn=_as_is,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
            pin_memory=on_gpu,  # page-locked batches: the copy to the card overlaps the step before
        )

    def teacher_classes(self, dataset: FacePool) -> np.ndarray:
        """The teacher's argmax on each clean face of `dataset`, in the dataset's order."""
        return dataset.column(lambda part: part.cache.logits[part.indices].argmax(1))

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
        return self._loader(self.train_set, self.train_sampler(), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, None, shuffle=False)


def _as_is(batch: dict) -> dict:
    """FacePool already returns a collated batch."""
    return batch
