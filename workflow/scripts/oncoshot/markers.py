"""Marker-gene extraction from a trained CancerSiamese (SPEC §2.4).

Pipeline
--------
1. :func:`same_type_pairs` — up to ``max_pairs_per_type`` (3,000) distinct same-type pairs per
   training type.
2. :func:`guided_saliency` / :func:`gene_scores` — guided-backpropagation gradients ``w0``, ``w1``
   of the network output w.r.t. the two inputs of each pair; ``w = (w0 + w1) / 2``; the gene score
   is the mean of ``w`` over all pairs; genes ranked by decreasing score.
3. :func:`forward_selection` — stepwise greedy forward selection in steps of 10 genes: 1-NN
   (Euclidean) 6-way one-shot accuracy on the test types with the top-k genes, on the *same* tasks
   for every k; :func:`best_k` picks the marker set size.
4. :func:`primary_vs_metastatic` — Gaussian Naive Bayes, primary vs metastatic, on the top-k
   markers, accuracy on held-out stratified folds only.
5. :func:`enrichment` (hypergeometric + Benjamini–Hochberg) and :func:`marker_overlap`.

Guided backpropagation (Springenberg et al. 2015)
-------------------------------------------------
Every ReLU's backward pass lets a gradient through only where it is positive *and* the ReLU's
forward input was positive: ``grad_in = max(grad_out, 0) * [x > 0]`` (plain backprop:
``grad_out * [x > 0]``). Every other operation (the tower's sigmoid conv, max-pooling, the
distance layer, the output sigmoid) backpropagates normally; dropout is off (eval mode).

Implementation: :class:`guided_relu` is a ``torch.overrides.TorchFunctionMode`` that, *while it is
active*, replaces every ReLU call — ``torch.nn.functional.relu`` (which ``nn.ReLU`` modules call),
``torch.relu``, ``Tensor.relu`` and their in-place forms — by :class:`GuidedReLUFunction`, a custom
autograd function with the same forward value. Nothing in the model class or in ``torch`` is
patched, so it works for the tower's functional ``F.relu`` and for the head's ``nn.ReLU`` module
alike, and it is scoped to the ``with`` block (and to the current thread). In-place ReLUs are
computed out of place inside the block (the forward values are the same).

Output differentiated *(our choice, following the paper)*: by default the model *output*, i.e. the
sigmoid probability P(same) — the paper backpropagates "from the model's output". The sigmoid's
derivative ``p (1 − p)`` is positive, so it changes no sign; it only weights each pair (confident
pairs weigh less). ``output="logit"`` differentiates the pre-sigmoid logit instead. The gradients
are *signed* (SPEC: "the gene score is the mean of w"); :func:`gene_scores` also reports the mean
absolute value ``(|w0| + |w1|) / 2`` as an extra column ``mean_abs`` (not used for the ranking
unless ``rank_by="mean_abs"``).

Caveat (measured on the demo, whose planted markers are known; ``benchmarks/marker_recall.py``):
the tower's first layer is a convolution of kernel 50 and stride 50, so every gene shares its
input weights with the genes at the same offset in the other windows; a gene's gradient is set
largely by those shared weights, not by the gene. Guided backpropagation from P(same) on same-type
pairs then keeps mostly the paths that make a pair *more* similar, and the signed mean cancels
between the two towers. On the demo the SPEC ranking (guided, signed ``score``) puts only ~30 of
the 300 planted marker genes in its top 100 (chance 23.4; ROC AUC ≈ 0.52), while the magnitude
of the *plain* gradient (``saliency="plain"``, ``rank_by="mean_abs"``) puts ~70 there (AUC ≈ 0.75).
keras-vis' ``visualize_saliency`` (the usual Keras tool at the time of the paper) takes absolute
gradients by default; the paper does not say which it used. The default follows SPEC (guided,
signed); both alternatives are one config key away (``markers.saliency``, ``markers.rank_by``).
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .errors import InputError
from .oneshot import accuracy_with_wilson, correct, make_tasks, nn_euclidean
from .pairs import encode_labels

OUTPUTS = ("prob", "logit")
RANK_BY = ("score", "mean_abs")
SALIENCY = ("guided", "plain")


# ------------------------------------------------------------------------------------------------
# guided backpropagation
# ------------------------------------------------------------------------------------------------
class GuidedReLUFunction(torch.autograd.Function):
    """ReLU whose backward is ``max(grad, 0) * [x > 0]`` (guided backpropagation)."""

    @staticmethod
    def forward(ctx, x):  # noqa: D102
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        (x,) = ctx.saved_tensors
        return grad_out.clamp(min=0) * (x > 0).to(grad_out.dtype)


_RELU_FUNCS = {F.relu, torch.relu, torch.Tensor.relu}
_RELU_INPLACE_FUNCS = {torch.relu_, torch.Tensor.relu_}
if hasattr(F, "relu_"):
    _RELU_INPLACE_FUNCS.add(F.relu_)


class guided_relu(TorchFunctionMode):
    """Context manager: inside it every ReLU call (``F.relu``, ``nn.ReLU``, ``torch.relu``,
    ``Tensor.relu`` and in-place forms) uses :class:`GuidedReLUFunction`. Forward values are
    unchanged; only the backward pass through ReLUs is guided. Nothing is patched globally."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELU_FUNCS or func in _RELU_INPLACE_FUNCS:
            x = args[0] if args else kwargs["input"]
            return GuidedReLUFunction.apply(x)
        return func(*args, **kwargs)


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _pair_output(model, xa: torch.Tensor, xb: torch.Tensor, output: str) -> torch.Tensor:
    z = model.logits(xa, xb)
    return torch.sigmoid(z) if output == "prob" else z


def _iter_saliency(model, Xa: torch.Tensor, Xb: torch.Tensor, batch_size: int, output: str, guided: bool):
    """Yield ``(w0, w1)`` device tensors batch by batch (model must already be in eval mode)."""
    for s in range(0, Xa.shape[0], batch_size):
        xa = Xa[s:s + batch_size].detach().clone().requires_grad_(True)
        xb = Xb[s:s + batch_size].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            if guided:
                with guided_relu():
                    y = _pair_output(model, xa, xb, output)
            else:
                y = _pair_output(model, xa, xb, output)
            # each pair's output depends only on its own inputs (eval mode, no batch statistics),
            # so the gradient of the sum is the per-pair gradient
            w0, w1 = torch.autograd.grad(y.sum(), (xa, xb))
        yield w0, w1


class _eval_restore:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        return False


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise InputError(None, "output", f"output must be one of {OUTPUTS}, got {output!r}")


def guided_saliency(model, xa, xb, batch_size: int = 256, *, output: str = "prob", guided: bool = True,
                    device=None) -> tuple[np.ndarray, np.ndarray]:
    """Guided-backpropagation gradients of each pair's output w.r.t. its two inputs.

    ``model``: a :class:`~oncoshot.models.SiameseNet` (anything with ``logits(xa, xb) -> [B]``).
    ``xa``, ``xb``: ``[B, G]`` arrays/tensors (pair i = ``(xa[i], xb[i])``).
    ``output``: ``"prob"`` (default; d sigmoid(logit), the paper's "model output") or ``"logit"``.
    ``guided=False`` gives plain gradients (for comparison).

    Runs in eval mode (dropout off; the training flag is restored afterwards), ``batch_size``
    pairs at a time on ``device`` (default: the model's device). Returns ``(w0, w1)``, float32
    numpy arrays ``[B, G]``.
    """
    _check_output(output)
    dev = torch.device(device) if device is not None else _model_device(model)
    Xa = torch.as_tensor(np.asarray(xa) if not isinstance(xa, torch.Tensor) else xa, dtype=torch.float32).to(dev)
    Xb = torch.as_tensor(np.asarray(xb) if not isinstance(xb, torch.Tensor) else xb, dtype=torch.float32).to(dev)
    if Xa.shape != Xb.shape or Xa.dim() != 2:
        raise InputError(None, "xa/xb", f"pair inputs must both be [B, G] of the same shape, got "
                                        f"{tuple(Xa.shape)} and {tuple(Xb.shape)}")
    if int(batch_size) < 1:
        raise InputError(None, "batch_size", f"must be >= 1, got {batch_size}")
    w0s, w1s = [], []
    with _eval_restore(model):
        for w0, w1 in _iter_saliency(model, Xa, Xb, int(batch_size), output, guided):
            w0s.append(w0.float().cpu())
            w1s.append(w1.float().cpu())
    if not w0s:
        G = Xa.shape[1]
        return np.zeros((0, G), np.float32), np.zeros((0, G), np.float32)
    return torch.cat(w0s).numpy(), torch.cat(w1s).numpy()


# ------------------------------------------------------------------------------------------------
# same-type pairs
# ------------------------------------------------------------------------------------------------
def _triu_unrank(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Map linear indices ``k`` of the strict upper triangle of an ``n × n`` matrix (row-major, as
    ``np.triu_indices(n, 1)``) to ``(i, j)`` with ``i < j``; exact in integer arithmetic."""
    k = np.asarray(k, dtype=np.int64)
    # number of pairs whose first index is < i
    start = lambda i: i * (2 * n - i - 1) // 2  # noqa: E731
    disc = (2.0 * n - 1.0) ** 2 - 8.0 * k.astype(np.float64)
    i = np.floor(((2.0 * n - 1.0) - np.sqrt(np.maximum(disc, 0.0))) / 2.0).astype(np.int64)
    i = np.clip(i, 0, n - 2)
    for _ in range(3):  # fix float rounding (at most one step either way in practice)
        i = np.where(start(i) > k, i - 1, i)
        i = np.where((i + 1 <= n - 2) & (start(i + 1) <= k), i + 1, i)
    j = k - start(i) + i + 1
    return i, j


def same_type_pairs(labels, max_pairs_per_type: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of *distinct* samples of the same type: per type, all its ``n (n − 1) / 2`` unordered
    pairs if there are at most ``max_pairs_per_type``, else a uniform sample of that many pairs
    without replacement (seeded numpy PCG64; types visited in sorted label order). Types with one
    sample give none.

    Returns ``(ia, ib)``: int64 sample indices (positions in ``labels``) with ``ia < ib``, grouped
    by type (sorted label order) and, within a type, in row-major order of the pair index.
    """
    max_pairs_per_type = int(max_pairs_per_type)
    if max_pairs_per_type < 1:
        raise InputError(None, "max_pairs_per_type", f"must be >= 1, got {max_pairs_per_type}")
    codes, classes = encode_labels(labels)
    rng = np.random.default_rng(seed)
    order = np.argsort(codes, kind="stable")  # members of each type in increasing sample index
    counts = np.bincount(codes, minlength=len(classes))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    ia, ib = [], []
    for c in range(len(classes)):
        n = int(counts[c])
        if n < 2:
            continue
        total = n * (n - 1) // 2
        if total <= max_pairs_per_type:
            k = np.arange(total, dtype=np.int64)
        else:
            k = np.sort(rng.choice(total, size=max_pairs_per_type, replace=False).astype(np.int64))
        i, j = _triu_unrank(k, n)
        members = order[starts[c]:starts[c] + n]
        ia.append(members[i])
        ib.append(members[j])
    if not ia:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ia).astype(np.int64), np.concatenate(ib).astype(np.int64)


# ------------------------------------------------------------------------------------------------
# gene scores
# ------------------------------------------------------------------------------------------------
def _matrix_and_genes(X, genes=None) -> tuple[np.ndarray | torch.Tensor, np.ndarray]:
    if isinstance(X, pd.DataFrame):
        g = np.asarray(X.columns) if genes is None else np.asarray(genes)
        M = X.to_numpy()
    else:
        M = X if isinstance(X, torch.Tensor) else np.asarray(X)
        g = np.arange(M.shape[1]) if genes is None else np.asarray(genes)
    if M.ndim != 2:
        raise InputError(None, "X", f"expression matrix must be samples × genes (2-D), got shape {tuple(M.shape)}")
    if len(g) != M.shape[1]:
        raise InputError(None, "genes", f"{len(g)} gene names for {M.shape[1]} columns")
    return M, g


def gene_scores(model, X, labels, max_pairs_per_type: int = 3000, seed: int = 0, batch_size: int = 256,
                device=None, *, genes=None, output: str = "prob", rank_by: str = "score",
                saliency: str = "guided") -> pd.DataFrame:
    """Guided-backpropagation gene scores of a Siamese model on same-type pairs (SPEC §2.4).

    ``X``: samples × genes (DataFrame — its columns name the genes — or array/tensor; ``genes``
    names the columns of an array, default their positions). ``labels``: per-sample types.
    Pairs: :func:`same_type_pairs` (``max_pairs_per_type``, ``seed``). For every pair,
    ``w = (w0 + w1) / 2`` (guided gradients of the ``output``; see :func:`guided_saliency`);
    ``score`` = mean of ``w`` over all pairs (all types pooled, every pair weighs the same);
    ``mean_abs`` = mean of ``(|w0| + |w1|) / 2`` *(extra, not used for ranking)*.
    ``saliency``: ``"guided"`` (SPEC §2.4, default) or ``"plain"`` (ordinary gradients, for the
    comparison in the module notes). Sums are
    accumulated in float64 on ``device`` (default: the model's device; if given, the model is moved
    there), so memory stays ``O(batch_size × G)``.

    Returns a DataFrame with columns ``gene, score, mean_abs, rank`` (rank 1 = best), sorted by
    decreasing ``rank_by`` (default ``"score"``, as SPEC §2.4; ``"mean_abs"`` is offered as an
    alternative, see the module notes) — ties keep the original gene order; ``attrs``:
    ``n_pairs``, ``pairs_per_type`` (dict), ``output``, ``seed``, ``rank_by``, ``saliency``.
    """
    _check_output(output)
    if rank_by not in RANK_BY:
        raise InputError(None, "rank_by", f"must be one of {RANK_BY}, got {rank_by!r}")
    if saliency not in SALIENCY:
        raise InputError(None, "saliency", f"must be one of {SALIENCY}, got {saliency!r}")
    M, g = _matrix_and_genes(X, genes)
    labels_arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if len(labels_arr) != M.shape[0]:
        raise InputError(None, "labels", f"X has {M.shape[0]} rows but labels has {len(labels_arr)} entries")
    if int(batch_size) < 1:
        raise InputError(None, "batch_size", f"must be >= 1, got {batch_size}")
    ia, ib = same_type_pairs(labels_arr, max_pairs_per_type, seed)
    if len(ia) == 0:
        raise InputError(None, "labels", "no type has >= 2 samples: no same-type pairs to score")
    if device is not None:
        model.to(device)
    dev = _model_device(model)
    Xt = torch.as_tensor(M, dtype=torch.float32).to(dev)
    G = Xt.shape[1]
    s_sum = torch.zeros(G, dtype=torch.float64, device=dev)
    a_sum = torch.zeros(G, dtype=torch.float64, device=dev)
    ia_t = torch.as_tensor(ia, device=dev)
    ib_t = torch.as_tensor(ib, device=dev)
    bs = int(batch_size)
    with _eval_restore(model):
        for s in range(0, len(ia), bs):
            xa, xb = Xt[ia_t[s:s + bs]], Xt[ib_t[s:s + bs]]
            for w0, w1 in _iter_saliency(model, xa, xb, bs, output, saliency == "guided"):
                w0, w1 = w0.double(), w1.double()
                s_sum += ((w0 + w1) * 0.5).sum(0)
                a_sum += ((w0.abs() + w1.abs()) * 0.5).sum(0)
    n = len(ia)
    score = (s_sum / n).cpu().numpy()
    mean_abs = (a_sum / n).cpu().numpy()
    order = np.argsort(-(score if rank_by == "score" else mean_abs), kind="stable")
    df = pd.DataFrame({"gene": g[order], "score": score[order], "mean_abs": mean_abs[order],
                       "rank": np.arange(1, G + 1)})
    codes, classes = encode_labels(labels_arr[ia])
    df.attrs.update({"n_pairs": int(n), "output": output, "seed": int(seed), "rank_by": rank_by,
                     "saliency": saliency,
                     "pairs_per_type": {str(c): int(k) for c, k in zip(classes, np.bincount(codes))}})
    return df


# ------------------------------------------------------------------------------------------------
# forward selection (1-NN one-shot accuracy on the top-k genes)
# ------------------------------------------------------------------------------------------------
def _ranking_positions(ranking, genes: np.ndarray) -> np.ndarray:
    """Column positions of ``ranking`` (a :func:`gene_scores` table, gene names or positions)."""
    if isinstance(ranking, pd.DataFrame):
        if "gene" not in ranking.columns:
            raise InputError(None, "ranking", "a ranking table needs a 'gene' column")
        ranking = ranking["gene"].to_numpy()
    r = np.asarray(ranking)
    if r.ndim != 1 or len(r) == 0:
        raise InputError(None, "ranking", "ranking must be a non-empty 1-D list of genes")
    if len(np.unique(r)) != len(r):
        raise InputError(None, "ranking", "ranking contains duplicate genes")
    names_are_positions = np.issubdtype(genes.dtype, np.integer) and np.array_equal(genes, np.arange(len(genes)))
    if np.issubdtype(r.dtype, np.integer) and (names_are_positions or not np.isin(r, genes).all()):
        pos = r.astype(np.int64)
        if pos.min() < 0 or pos.max() >= len(genes):
            raise InputError(None, "ranking", f"gene positions out of range [0, {len(genes)})")
        return pos
    index = pd.Index(genes)
    if not index.is_unique:
        raise InputError(None, "genes", "gene names are not unique")
    pos = index.get_indexer(r)
    if (pos < 0).any():
        missing = [str(x) for x in r[pos < 0][:10]]
        raise InputError(None, "ranking", f"genes not among the columns of X: {missing}")
    return pos.astype(np.int64)


def k_grid(n: int, step: int = 10, max_k: int | None = None) -> np.ndarray:
    """``step, 2·step, …`` up to ``max_k`` (default ``n``), with ``max_k`` itself appended when it is
    not a multiple of ``step``; strictly increasing; every k ≤ ``n``."""
    step = int(step)
    if step < 1:
        raise InputError(None, "step", f"must be >= 1, got {step}")
    max_k = n if max_k is None else min(int(max_k), n)
    if max_k < 1:
        raise InputError(None, "max_k", f"must be >= 1, got {max_k}")
    grid = np.arange(step, max_k + 1, step, dtype=np.int64)
    if len(grid) == 0 or grid[-1] != max_k:
        grid = np.append(grid, max_k)
    return grid


def forward_selection(X_test, y_test, ranking, step: int = 10, max_k: int | None = None, n_way: int = 6,
                      n_tasks: int = 20000, seed: int = 0, *, genes=None, device=None,
                      max_elems: int = 1 << 23, groups=None) -> pd.DataFrame:
    """Stepwise greedy forward selection (SPEC §2.4): 1-NN (Euclidean) ``n_way`` one-shot accuracy
    on ``X_test`` using the top-k genes of ``ranking``, for k in :func:`k_grid` (``step``, 2·step, …,
    ``max_k``; default ``max_k`` = every ranked gene, and the last k is ``max_k`` even when it is
    not a multiple of ``step``).

    Every k is scored on the *same* tasks, ``make_tasks(y_test, n_way, n_tasks, seed, groups=groups)``
    (``groups``: the patient of each sample, so that no task pairs two samples of one patient), and so is
    the all-genes 1-NN (:func:`~oncoshot.oneshot.nn_euclidean` on every column of ``X_test``).
    ``ranking``: a :func:`gene_scores` table, gene names (columns of a DataFrame ``X_test`` or
    ``genes``) or column positions. Distances over the top k genes are running sums of the squared
    differences in ranked order (float64), so the whole grid costs one pass over the genes.

    Returns a DataFrame with one row per k: ``k, accuracy, ci_low, ci_high`` (Wilson 95 %),
    ``n_tasks``, and the all-genes result on the same tasks repeated on every row
    (``all_genes_accuracy, all_genes_ci_low, all_genes_ci_high``, also in ``attrs`` with
    ``n_genes``, ``n_way``, ``seed``).
    """
    M, g = _matrix_and_genes(X_test, genes)
    y = np.asarray(y_test)
    if len(y) != M.shape[0]:
        raise InputError(None, "y_test", f"X_test has {M.shape[0]} rows but y_test has {len(y)} labels")
    pos = _ranking_positions(ranking, g)
    grid = k_grid(len(pos), step, max_k)
    tasks = make_tasks(y, n_way, n_tasks, seed, groups=groups)
    Xall = torch.as_tensor(np.asarray(M) if not isinstance(M, torch.Tensor) else M)
    if device is not None:
        Xall = Xall.to(device)
    Xall = Xall.to(torch.float64)
    K = int(grid[-1])
    Xr = Xall[:, torch.as_tensor(pos[:K], device=Xall.device)]
    support = torch.as_tensor(np.asarray(tasks.support), device=Xall.device)
    query = torch.as_tensor(np.asarray(tasks.query), device=Xall.device)
    T, N = support.shape
    cols = torch.as_tensor(grid - 1, device=Xall.device)
    true_pos = torch.as_tensor(np.asarray(tasks.true_pos), device=Xall.device)
    hits = np.zeros((T, len(grid)), dtype=bool)
    per = max(1, int(max_elems) // max(1, N * K))
    for s in range(0, T, per):
        q = Xr[query[s:s + per]].unsqueeze(1)
        sup = Xr[support[s:s + per]]
        d2 = ((sup - q) ** 2).cumsum(-1).index_select(-1, cols)  # [Tc, N, len(grid)]
        # as nn_euclidean: score = −sqrt(d²), argmax (first position on ties)
        pred = torch.argmax(-torch.sqrt(d2), dim=1)  # [Tc, len(grid)]
        hits[s:s + per] = (pred == true_pos[s:s + per, None]).cpu().numpy()
    rows = []
    for j, k in enumerate(grid):
        acc, lo, hi = accuracy_with_wilson(hits[:, j])
        rows.append((int(k), acc, lo, hi, int(T)))
    table = pd.DataFrame(rows, columns=["k", "accuracy", "ci_low", "ci_high", "n_tasks"])
    all_acc, all_lo, all_hi = accuracy_with_wilson(correct(nn_euclidean(Xall, tasks), tasks))
    table["all_genes_accuracy"] = all_acc
    table["all_genes_ci_low"] = all_lo
    table["all_genes_ci_high"] = all_hi
    table.attrs.update({"n_genes": int(M.shape[1]), "n_way": int(n_way), "seed": int(seed),
                        "all_genes_accuracy": all_acc, "all_genes_ci_low": all_lo, "all_genes_ci_high": all_hi})
    return table


def best_k(table: pd.DataFrame, column: str = "accuracy") -> int:
    """The k with the highest ``column`` (accuracies are exact fractions, so equal counts tie
    exactly); ties → the smallest k."""
    if len(table) == 0:
        raise InputError(None, "table", "empty table: no k to choose")
    vals = table[column].to_numpy(dtype=np.float64)
    if np.isnan(vals).all():
        raise InputError(None, column, "every accuracy is NaN")
    best = np.nanmax(vals)
    return int(table["k"].to_numpy()[vals == best].min())


# ------------------------------------------------------------------------------------------------
# primary vs metastatic (Gaussian Naive Bayes on held-out folds)
# ------------------------------------------------------------------------------------------------
def primary_vs_metastatic(X, is_metastatic, ranking, ks: Sequence[int] | None = None, n_folds: int = 5,
                          seed: int = 0, *, genes=None) -> pd.DataFrame:
    """Gaussian Naive Bayes (scikit-learn defaults) telling primary from metastatic samples on the
    top-k genes of ``ranking``, for each k in ``ks`` (default ``k_grid(len(ranking), 10)``: 10, 20,
    …, len(ranking) — the caller passes the marker list, e.g. the top 100).

    Accuracy is measured on held-out folds only: ``StratifiedKFold(n_folds, shuffle=True,
    random_state=seed)``; the same folds for every k; each fold's model is fitted on the other
    folds. Returns a DataFrame ``k, accuracy`` (mean over folds), ``sd`` (over folds, ddof=1),
    ``pooled_accuracy`` (all held-out predictions together), ``majority_baseline`` (share of the
    larger class), ``n_folds``. Choose with :func:`best_k` (ties → smallest k).
    """
    from sklearn.model_selection import StratifiedKFold
    from sklearn.naive_bayes import GaussianNB

    M, g = _matrix_and_genes(X, genes)
    M = np.asarray(M.detach().cpu().numpy() if isinstance(M, torch.Tensor) else M, dtype=np.float64)
    y = np.asarray(is_metastatic).astype(bool)
    if len(y) != M.shape[0]:
        raise InputError(None, "is_metastatic", f"X has {M.shape[0]} rows but is_metastatic has {len(y)} entries")
    pos = _ranking_positions(ranking, g)
    ks = k_grid(len(pos), 10) if ks is None else np.asarray(list(ks), dtype=np.int64)
    if len(ks) == 0 or ks.min() < 1 or ks.max() > len(pos):
        raise InputError(None, "ks", f"every k must lie in [1, {len(pos)}] (the ranking's length)")
    n_folds = int(n_folds)
    n_min = int(min(y.sum(), (~y).sum()))
    if n_folds < 2 or n_min < n_folds:
        raise InputError(None, "n_folds", f"{n_folds} stratified folds need >= 2 folds and at least {n_folds} "
                                          f"samples per class; the smaller class has {n_min}")
    folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(M, y))
    rows = []
    for k in ks:
        Xk = M[:, pos[:int(k)]]
        accs, pred = [], np.zeros(len(y), bool)
        for train, test in folds:
            clf = GaussianNB().fit(Xk[train], y[train])
            p = clf.predict(Xk[test])
            pred[test] = p
            accs.append(float(np.mean(p == y[test])))
        rows.append((int(k), float(np.mean(accs)), float(np.std(accs, ddof=1)), float(np.mean(pred == y))))
    table = pd.DataFrame(rows, columns=["k", "accuracy", "sd", "pooled_accuracy"])
    table["majority_baseline"] = max(y.mean(), 1 - y.mean())
    table["n_folds"] = n_folds
    table.attrs.update({"seed": int(seed), "n_folds": n_folds})
    return table


# ------------------------------------------------------------------------------------------------
# enrichment and overlap
# ------------------------------------------------------------------------------------------------
def bh_adjust(p) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values), as ``statsmodels``
    ``multipletests(method="fdr_bh")``: ``q_(i) = min_{j >= i} m p_(j) / j``, capped at 1.
    NaN p-values stay NaN and do not count in ``m``."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    pv = p[ok]
    m = len(pv)
    if m == 0:
        return q
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def _unique(seq: Iterable) -> list:
    return list(dict.fromkeys(str(x) for x in seq))


def enrichment(marker_genes, universe, gene_sets: dict) -> pd.DataFrame:
    """Over-representation of ``marker_genes`` in each gene set (hypergeometric test against
    ``universe``; Benjamini–Hochberg across the sets). All as gene symbols (strings; duplicates
    ignored). Markers and sets are restricted to the universe (markers outside it are dropped with
    a warning).

    Per set: ``N`` universe size, ``n`` markers in the universe, ``set_size`` K = |set ∩ universe|,
    ``overlap`` x = |markers ∩ set|, ``expected`` = n K / N, ``fold`` = x / expected (NaN when
    expected is 0), ``p_value`` = P(X ≥ x) = ``hypergeom.sf(x − 1, N, K, n)``, ``q_value`` (BH),
    ``overlap_genes`` (';'-joined, in marker order). Rows sorted by p-value (ties: input order).
    """
    from scipy.stats import hypergeom

    uni = _unique(universe)
    if not uni:
        raise InputError(None, "universe", "the gene universe is empty")
    uni_set = set(uni)
    markers_all = _unique(marker_genes)
    markers = [m for m in markers_all if m in uni_set]
    if len(markers) < len(markers_all):
        warnings.warn(f"enrichment: {len(markers_all) - len(markers)} marker genes are not in the universe and "
                      "were dropped", stacklevel=2)
    N, n = len(uni), len(markers)
    rows = []
    for name, members in gene_sets.items():
        s = set(_unique(members)) & uni_set
        hits = [m for m in markers if m in s]
        K, x = len(s), len(hits)
        expected = n * K / N
        p = float(hypergeom.sf(x - 1, N, K, n))
        rows.append({"gene_set": str(name), "N": N, "n": n, "set_size": K, "overlap": x,
                     "expected": expected, "fold": x / expected if expected > 0 else math.nan,
                     "p_value": min(max(p, 0.0), 1.0), "overlap_genes": ";".join(hits)})
    cols = ["gene_set", "N", "n", "set_size", "overlap", "expected", "fold", "p_value", "q_value", "overlap_genes"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    df["q_value"] = bh_adjust(df["p_value"].to_numpy())
    return df.sort_values("p_value", kind="mergesort").reset_index(drop=True)[cols]


def marker_overlap(list_a, list_b) -> dict:
    """Overlap of two marker lists (as strings; duplicates ignored): ``n_a``, ``n_b``,
    ``n_intersection``, ``n_union``, ``jaccard`` (NaN if both are empty), ``intersection``
    (in ``list_a`` order), ``only_a``, ``only_b``."""
    a, b = _unique(list_a), _unique(list_b)
    sa, sb = set(a), set(b)
    inter = [x for x in a if x in sb]
    n_union = len(sa | sb)
    return {"n_a": len(a), "n_b": len(b), "n_intersection": len(inter), "n_union": n_union,
            "jaccard": len(inter) / n_union if n_union else math.nan, "intersection": inter,
            "only_a": [x for x in a if x not in sb], "only_b": [x for x in b if x not in sa]}
