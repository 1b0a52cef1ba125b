"""Balanced pair sampling for Siamese training (SPEC §2.2), vectorised and on the device.

The reference Keras code filled only as many pairs per batch as there were training classes and
left the rest as zero vectors; here every batch is full: exactly ``batch/2`` same-type pairs
followed by ``batch/2`` different-type pairs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .errors import InputError


def encode_labels(labels: Sequence | np.ndarray | torch.Tensor, classes: Sequence | np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (int64) of ``labels`` and the class array (sorted unique labels, or ``classes``).

    With ``classes`` given, a label that is not among them raises ``ValueError`` naming it.
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InputError(None, None, f"labels must be one-dimensional, got shape {arr.shape}")
    if classes is None:
        classes_arr, codes = np.unique(arr, return_inverse=True)
        return codes.astype(np.int64).reshape(-1), classes_arr
    classes_arr = np.asarray(classes)
    if len(np.unique(classes_arr)) != len(classes_arr):
        raise InputError(None, None, "classes contain duplicates")
    order = np.argsort(classes_arr, kind="stable")
    sorted_cls = classes_arr[order]
    pos = np.searchsorted(sorted_cls, arr)
    pos = np.clip(pos, 0, len(sorted_cls) - 1)
    bad = sorted_cls[pos] != arr if len(arr) else np.zeros(0, bool)
    if np.any(bad):
        unknown = sorted(set(arr[bad].tolist()))
        raise InputError(None, None, f"labels not among the known classes: {unknown[:10]}")
    return order[pos].astype(np.int64), classes_arr


class PairSampler:
    """Draw balanced pair batches of sample indices, entirely with torch ops on ``device``.

    Parameters
    ----------
    X : samples × genes matrix (numpy or tensor). Kept on ``device`` as float32 (``self.X``) so
        ``sample_tensors`` can gather the pairs without leaving the device.
    labels : per-sample labels (any hashable dtype numpy can sort: str or int).
    generator : a ``torch.Generator`` on ``device`` (its state is advanced by sampling), or
    seed : an int used to seed a fresh generator (ignored when ``generator`` is given).
    device : where the data and the draws live (default: X's device for a tensor, else CPU).

    Sampling rules: a same-type pair picks a type uniformly among the types with >= 2 samples,
    then two *distinct* samples of it uniformly; a different-type pair picks a type uniformly
    among all types, a second type uniformly among the others, and one sample of each uniformly.
    """

    def __init__(self, X, labels, generator: torch.Generator | None = None, seed: int | None = None,
                 device: str | torch.device | None = None):
        if device is None:
            device = X.device if isinstance(X, torch.Tensor) else torch.device("cpu")
        self.device = torch.device(device)
        self.X = torch.as_tensor(X, dtype=torch.float32).to(self.device) if X is not None else None
        codes, self.classes = encode_labels(labels)
        n = len(codes)
        if self.X is not None and self.X.shape[0] != n:
            raise InputError(None, None, f"X has {self.X.shape[0]} rows but labels has {n} entries")
        n_types = len(self.classes)
        if n_types < 2:
            raise InputError(None, None, f"pair sampling needs at least 2 types, got {n_types}")
        counts = np.bincount(codes, minlength=n_types)
        if not np.any(counts >= 2):
            raise InputError(None, None, "pair sampling needs at least one type with >= 2 samples; every type has 1")
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        dev = self.device
        self.n_types = n_types
        self.codes = torch.as_tensor(codes, device=dev)
        self._order = torch.as_tensor(order, dtype=torch.long, device=dev)
        self._starts = torch.as_tensor(starts, dtype=torch.long, device=dev)
        self._counts = torch.as_tensor(counts, dtype=torch.long, device=dev)
        self._eligible = torch.as_tensor(np.flatnonzero(counts >= 2), dtype=torch.long, device=dev)
        self.excluded_from_same = [self.classes[i] for i in np.flatnonzero(counts < 2)]
        if generator is None:
            generator = torch.Generator(device=dev)
            generator.manual_seed(0 if seed is None else int(seed))
        self.generator = generator

    # -- state (for checkpoints) -------------------------------------------------------------
    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    # -- draws ----------------------------------------------------------------------------------
    def _uniform_below(self, n: torch.Tensor) -> torch.Tensor:
        """One uniform integer in [0, n_i) per entry of the long tensor ``n`` (all n_i >= 1)."""
        u = torch.rand(n.shape, generator=self.generator, device=self.device, dtype=torch.float64)
        return torch.minimum((u * n).long(), n - 1)

    def _sample_in_type(self, t: torch.Tensor, within: torch.Tensor) -> torch.Tensor:
        return self._order[self._starts[t] + within]

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(xa_idx, xb_idx, target)``: long, long, float32 tensors of length ``batch_size`` on the
        device; rows ``[:batch/2]`` are same-type pairs (target 1), rows ``[batch/2:]`` different-type
        pairs (target 0)."""
        batch_size = int(batch_size)
        if batch_size < 2 or batch_size % 2:
            raise InputError(None, None, f"batch_size must be an even number >= 2, got {batch_size}")
        h = batch_size // 2
        g, dev = self.generator, self.device
        # same-type pairs: two distinct samples of one type
        ts = self._eligible[torch.randint(len(self._eligible), (h,), generator=g, device=dev)]
        cnt = self._counts[ts]
        i1 = self._uniform_below(cnt)
        r = self._uniform_below(cnt - 1)
        i2 = r + (r >= i1).long()
        # different-type pairs: t2 uniform among the types other than t1
        t1 = torch.randint(self.n_types, (h,), generator=g, device=dev)
        t2 = (t1 + 1 + torch.randint(self.n_types - 1, (h,), generator=g, device=dev)) % self.n_types
        j1 = self._uniform_below(self._counts[t1])
        j2 = self._uniform_below(self._counts[t2])
        xa = torch.cat([self._sample_in_type(ts, i1), self._sample_in_type(t1, j1)])
        xb = torch.cat([self._sample_in_type(ts, i2), self._sample_in_type(t2, j2)])
        target = torch.cat([torch.ones(h, device=dev), torch.zeros(h, device=dev)])
        return xa, xb, target

    def sample_tensors(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(xa, xb, target)`` with the expression rows gathered from ``self.X`` on the device."""
        if self.X is None:
            raise InputError(None, None, "PairSampler was built without X")
        ia, ib, target = self.sample(batch_size)
        return self.X[ia], self.X[ib], target
