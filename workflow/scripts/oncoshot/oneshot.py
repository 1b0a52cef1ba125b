"""N-way one-shot tasks, their scoring and the 1-NN baselines (SPEC §2.3).

A task set is generated once (:func:`make_tasks`) and scored by every method, so the same seed
gives the same tasks for the Siamese net and for the baselines. Every scorer returns a score
matrix ``[n_tasks, N]`` in which *higher means more similar* (Siamese logits, minus the Euclidean
distance, the Pearson correlation, the cosine similarity); :func:`predict` takes the argmax (the
first position wins a tie), :func:`correct` compares it with the true position, and
:func:`accuracy_with_wilson` turns the hits into an accuracy with a Wilson interval.

The Siamese scores are *logits*: P(same) = sigmoid(logit) is monotone in the logit, so the argmax is
the same, but ranking logits avoids the float32 sigmoid saturating at exactly 1.0 and creating
spurious ties.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch

from .errors import InputError
from .pairs import encode_labels


class OneShotTasks(NamedTuple):
    """``support[t, k]``: sample index (row of X) of the k-th support of task t; ``query[t]``: the
    query's sample index; ``true_pos[t]``: the position k whose support has the query's type.
    Unpacks as ``support, query, true_pos``; the types of the supports are ``labels[support]``."""

    support: np.ndarray  # int64 [T, N]
    query: np.ndarray  # int64 [T]
    true_pos: np.ndarray  # int64 [T]

    @property
    def n_way(self) -> int:
        return int(self.support.shape[1])

    def __len__(self) -> int:  # number of tasks
        return int(self.query.shape[0])


def make_tasks(labels, n_way: int, n_tasks: int, seed: int, groups=None) -> OneShotTasks:
    """``n_tasks`` N-way one-shot tasks on the samples whose labels are ``labels``.

    Each task: ``n_way`` distinct types drawn uniformly (without replacement) among the usable
    types, one support sample per type drawn uniformly, the query type drawn uniformly among the N,
    the query drawn uniformly among the samples of its type other than its support.

    ``groups`` (optional, one per sample, e.g. the patient): the query is drawn uniformly among the
    samples of its type *outside its support's group*, so it never shares a group with any support
    of the task (a group must hold one type only: a group with samples of two types is an error).
    Supports are still drawn uniformly over samples. A type is then usable when it has samples of
    >= 2 groups; without ``groups`` every sample is its own group (exactly the tasks drawn before
    ``groups`` existed) and a type is usable with >= 2 samples.

    Fully vectorised; deterministic for a seed (numpy PCG64). Types that are not usable are left
    out with a warning naming them; fewer than ``n_way`` usable types is an error.

    Returns :class:`OneShotTasks` (unpacks as ``support, query, true_pos``).
    """
    n_way, n_tasks = int(n_way), int(n_tasks)
    if n_way < 2:
        raise InputError(None, None, f"n_way must be >= 2, got {n_way}")
    if n_tasks < 0:
        raise InputError(None, None, f"n_tasks must be >= 0, got {n_tasks}")
    codes, classes = encode_labels(labels)
    n = len(codes)
    if groups is None:
        gcodes = np.arange(n, dtype=np.int64)
        gfirst = gcodes
    else:
        garr = np.asarray(groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else groups)
        if garr.ndim != 1 or len(garr) != n:
            raise InputError(None, "groups", f"expected one group per sample ({n}), got shape {garr.shape}")
        _, first, gcodes = np.unique(garr.astype(str), return_index=True, return_inverse=True)
        gcodes = gcodes.astype(np.int64).reshape(-1)
        gfirst = first[gcodes]  # order groups by first appearance: one group per sample = no groups
        n_groups = int(gcodes.max()) + 1 if n else 0
        types_per_group = np.zeros(n_groups, dtype=np.int64)
        pairs = np.unique(np.stack([gcodes, codes]), axis=1) if n else np.zeros((2, 0), np.int64)
        np.add.at(types_per_group, pairs[0], 1)
        mixed = np.flatnonzero(types_per_group > 1)
        if len(mixed):
            g = mixed[0]
            name = garr[np.flatnonzero(gcodes == g)[0]]
            kinds = sorted({str(classes[c]) for c in codes[gcodes == g]})
            raise InputError(None, "groups", f"{len(mixed)} group(s) hold samples of several types, e.g. "
                             f"{str(name)!r}: {kinds}; a group (patient) must have one type")
    counts = np.bincount(codes, minlength=len(classes))
    # samples sorted by (type, group's first appearance, index): each group is a contiguous block
    # inside its type's block
    order = np.lexsort((np.arange(n), gfirst, codes))
    g_sorted = gcodes[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    # per sorted position: where its group's block starts (within the type) and the block's size
    new_block = np.ones(n, dtype=bool)
    if n:
        new_block[1:] = (g_sorted[1:] != g_sorted[:-1]) | (codes[order][1:] != codes[order][:-1])
    block_id = np.cumsum(new_block) - 1
    block_start = np.flatnonzero(new_block)
    block_size = np.diff(np.append(block_start, n))
    pos_block_start = block_start[block_id]
    pos_block_size = block_size[block_id]
    n_groups_per_type = np.bincount(codes[order][new_block], minlength=len(classes)) if n else np.zeros(len(classes), np.int64)
    usable = np.flatnonzero(n_groups_per_type >= 2)
    what = "samples" if groups is None else "groups (patients)"
    if len(usable) < len(classes):
        small = [str(classes[i]) for i in np.flatnonzero(n_groups_per_type < 2)]
        warnings.warn(f"one-shot tasks: types with < 2 {what} left out: {small}", stacklevel=2)
    if len(usable) < n_way:
        raise InputError(None, None,
            f"{n_way}-way tasks need {n_way} types with >= 2 {what}; only {len(usable)} "
            f"({[str(classes[i]) for i in usable]})"
        )
    rng = np.random.default_rng(seed)
    # N distinct types per task: the first N of a random permutation of the usable types
    perm = np.argsort(rng.random((n_tasks, len(usable))), axis=1)[:, :n_way]
    types = usable[perm]  # [T, N]
    cnt = counts[types]
    within = np.minimum((rng.random((n_tasks, n_way)) * cnt).astype(np.int64), cnt - 1)
    support = order[starts[types] + within]
    true_pos = rng.integers(0, n_way, size=n_tasks)
    rows = np.arange(n_tasks)
    qt = types[rows, true_pos]
    qcnt = counts[qt]
    s_pos = starts[qt] + within[rows, true_pos]  # sorted position of the query type's support
    gs = pos_block_start[s_pos] - starts[qt]  # its group's block, within the type
    gsz = pos_block_size[s_pos]
    n_cand = qcnt - gsz  # samples of the type outside the support's group (>= 1: usable types)
    r = np.minimum((rng.random(n_tasks) * n_cand).astype(np.int64), n_cand - 1)
    q_within = r + (r >= gs) * gsz
    query = order[starts[qt] + q_within]
    return OneShotTasks(support.astype(np.int64), query.astype(np.int64), true_pos.astype(np.int64))


# ------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------
def predict(scores) -> np.ndarray:
    """Predicted position per task: argmax of the scores (first position on ties)."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    return np.argmax(np.asarray(scores), axis=1)


def correct(scores, tasks: OneShotTasks) -> np.ndarray:
    """Boolean ``[T]``: whether the predicted support has the query's type."""
    return predict(scores) == np.asarray(tasks.true_pos)


def accuracy_with_wilson(correct, z: float = 1.96) -> tuple[float, float, float]:
    """(accuracy, low, high) of a boolean/0-1 array with the Wilson score interval at ``z``
    (the same formula as ``statsmodels`` ``proportion_confint(method="wilson")``, which uses
    ``z = norm.isf(alpha/2)``; clipped to [0, 1])."""
    c = np.asarray(correct, dtype=np.float64).reshape(-1)
    n = c.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p = float(c.sum()) / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    return p, min(max(center - half, 0.0), 1.0), min(max(center + half, 0.0), 1.0)


# ------------------------------------------------------------------------------------------------
# Siamese scoring
# ------------------------------------------------------------------------------------------------
def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):  # a metric module has buffers only
        return tensor.device
    return torch.device("cpu")


class _eval_mode:
    """Context: model.eval() + no_grad, restoring the previous training flag afterwards."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        self.ng = torch.no_grad()
        self.ng.__enter__()

    def __exit__(self, *exc):
        self.ng.__exit__(*exc)
        self.model.train(self.was_training)
        return False


def embed_samples(model, X, batch_size: int = 1024) -> torch.Tensor:
    """Tower embeddings ``[n_samples, out_features]`` (float32, on the model's device) of every row of
    ``X``, computed once in eval mode in batches."""
    dev = _model_device(model)
    X = torch.as_tensor(X, dtype=torch.float32)
    out = []
    with _eval_mode(model):
        for s in range(0, X.shape[0], batch_size):
            out.append(model.embed(X[s:s + batch_size].to(dev)).float())
    if not out:
        return torch.zeros((0, model.out_features), device=dev)
    return torch.cat(out)


def score_tasks_from_embeddings(model, emb: torch.Tensor, tasks: OneShotTasks, batch: int = 65536) -> np.ndarray:
    """Siamese logits ``[T, N]`` (float32 numpy) of every (query, support) pair of every task, from
    the cached embeddings ``emb`` (:func:`embed_samples`), ``batch`` pairs at a time."""
    dev = emb.device
    support = torch.as_tensor(np.asarray(tasks.support), device=dev)
    query = torch.as_tensor(np.asarray(tasks.query), device=dev)
    T, N = support.shape
    per = max(1, int(batch) // N)
    out = []
    with _eval_mode(model):
        for s in range(0, T, per):
            sup = support[s:s + per]
            q = query[s:s + per]
            eb = emb[sup.reshape(-1)]
            ea = emb[q].repeat_interleave(N, dim=0)
            out.append(model.head_logits(ea, eb).float().reshape(-1, N).cpu())
    if not out:
        return np.zeros((0, N), np.float32)
    return torch.cat(out).numpy()


def score_tasks(model, X, tasks: OneShotTasks, batch: int = 65536, embed_batch: int = 1024) -> np.ndarray:
    """Embed every sample of ``X`` once, then :func:`score_tasks_from_embeddings`."""
    return score_tasks_from_embeddings(model, embed_samples(model, X, embed_batch), tasks, batch)


def score_tasks_per_task(model, X, tasks: OneShotTasks) -> np.ndarray:
    """Reference (slow) scoring: the whole network on the N (query, support) pairs of each task."""
    dev = _model_device(model)
    X = torch.as_tensor(X, dtype=torch.float32)
    T, N = np.asarray(tasks.support).shape
    out = np.zeros((T, N), np.float32)
    with _eval_mode(model):
        for t in range(T):
            xb = X[torch.as_tensor(tasks.support[t])].to(dev)
            xa = X[int(tasks.query[t])].to(dev).unsqueeze(0).expand(N, -1)
            out[t] = model.logits(xa, xb).float().cpu().numpy()
    return out


# ------------------------------------------------------------------------------------------------
# 1-NN baselines
# ------------------------------------------------------------------------------------------------
def _pair_reduce(X, tasks: OneShotTasks, fn, device=None, max_elems: int = 1 << 25) -> np.ndarray:
    """Apply ``fn(q[Tc,1,G], s[Tc,N,G]) -> [Tc,N]`` over task chunks in float64."""
    X = torch.as_tensor(X)
    if device is not None:
        X = X.to(device)
    X = X.to(torch.float64)
    support = torch.as_tensor(np.asarray(tasks.support), device=X.device)
    query = torch.as_tensor(np.asarray(tasks.query), device=X.device)
    T, N = support.shape
    G = X.shape[1]
    per = max(1, max_elems // max(1, N * G))
    out = []
    for s in range(0, T, per):
        q = X[query[s:s + per]].unsqueeze(1)
        sup = X[support[s:s + per]]
        out.append(fn(q, sup).cpu())
    if not out:
        return np.zeros((0, N), np.float64)
    return torch.cat(out).numpy()


def nn_euclidean(X, tasks: OneShotTasks, device=None) -> np.ndarray:
    """Scores ``[T, N]`` = −(true Euclidean distance) between query and each support, computed from
    the differences in float64 (not the reference code's ``sqrt(a² − b²)``)."""
    return _pair_reduce(X, tasks, lambda q, s: -torch.sqrt(((s - q) ** 2).sum(-1)), device)


def _standardise_rows(X, device=None) -> torch.Tensor:
    X = torch.as_tensor(X)
    if device is not None:
        X = X.to(device)
    X = X.to(torch.float64)
    Z = X - X.mean(dim=1, keepdim=True)
    norm = torch.linalg.vector_norm(Z, dim=1, keepdim=True)
    return torch.where(norm > 0, Z / torch.where(norm > 0, norm, 1.0), torch.zeros_like(Z))


def nn_pearson(X, tasks: OneShotTasks, device=None) -> np.ndarray:
    """Scores ``[T, N]`` = Pearson correlation between query and each support (a constant sample
    gets correlation 0 with everything)."""
    return _pair_reduce(_standardise_rows(X, device), tasks, lambda q, s: (q * s).sum(-1))


def nn_cosine(emb, tasks: OneShotTasks, device=None) -> np.ndarray:
    """Scores ``[T, N]`` = cosine similarity of embeddings (e.g. tower features); zero vectors get 0."""
    E = torch.as_tensor(emb)
    if device is not None:
        E = E.to(device)
    E = E.to(torch.float64)
    norm = torch.linalg.vector_norm(E, dim=1, keepdim=True)
    E = torch.where(norm > 0, E / torch.where(norm > 0, norm, 1.0), torch.zeros_like(E))
    return _pair_reduce(E, tasks, lambda q, s: (q * s).sum(-1))
