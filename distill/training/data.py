"""LightningDataModule over a face store and its posterior cache; HDF5 files open lazily in each worker."""

from __future__ import annotations

import hashlib

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from distill.augment import IDENTITY
from distill.cache import PosteriorCache
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
    """uint8 pixels, the view parameters and the teacher logits of that exact view."""

    def __init__(self, store: FaceStore, cache: PosteriorCache, indices: np.ndarray, use_views: bool):
        self.store, self.cache, self.indices, self.use_views = store, cache, indices, use_views

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict:
        i = int(self.indices[j])
        if self.use_views:
            k = int(torch.randint(self.cache.views, ()).item())
            params, logits = self.cache.view(i, k)
        else:
            params, logits = IDENTITY, self.cache.logits[i]
        return {
            "pixels": torch.from_numpy(self.store.pixels(i)),
            "params": torch.from_numpy(np.asarray(params)),
            "teacher_logits": torch.from_numpy(np.asarray(logits, np.float32)),
            "index": i,
        }


class DistillData(L.LightningDataModule):
    def __init__(
        self,
        store_path,
        cache_path,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        workers: int = 2,
        use_views: bool = True,
        limit: int | None = None,
    ):
        super().__init__()
        self.store = FaceStore(store_path)
        self.cache = PosteriorCache(cache_path)
        self.cache.check_store(self.store)
        self.batch_size, self.workers = batch_size, workers
        self.use_views = use_views and self.cache.views > 0
        val = held_out(self.store.keys, val_fraction)
        idx = np.arange(len(self.store))
        self.train_idx, self.val_idx = idx[~val], idx[val]
        if limit:
            self.train_idx, self.val_idx = self.train_idx[:limit], self.val_idx[: max(1, limit // 8)]
        if len(self.train_idx) == 0 or len(self.val_idx) == 0:
            raise DistillError(f"{len(self.store)} faces are too few to split into train and validation")

    @property
    def classes(self) -> list[str]:
        return self.cache.classes

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(CachedFaces(self.store, self.cache, self.train_idx, self.use_views), True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(CachedFaces(self.store, self.cache, self.val_idx, False), False)
