"""OncoMark-style multi-task (N-MTL) hallmark model (SPEC §3.6).

Preprocessing (:class:`Preprocessor`)
-------------------------------------
SPEC: "per sample, rank genes (descending, average ties) → log2(rank) → standardise each gene with
statistics fitted on training data only; features = the 10,000 most variable genes of the training
data". Where the SPEC is silent this module decides, and applies the *same* steps to training and new
samples:

1. **Gene selection (fit only).** On the training matrix, every sample's genes are ranked over *all*
   training genes (``scipy.stats.rankdata(-x, method="average")``, rank 1 = highest value) and
   log2-transformed; the per-gene population variance (ddof 0) of these log2 ranks across the
   training samples is computed and the ``n_top`` (default 10,000, or all if fewer) genes with the
   largest variance are the model genes (ties in variance: earlier column first). The model genes
   keep the training matrix's column order. Variance of log2 ranks (not of raw counts) makes the
   choice independent of library size and unit.
2. **Features (training and new samples alike).** The matrix is reindexed to the model genes by
   symbol — a model gene missing from the sample is filled with 0 *before* ranking, as OncoMark's
   ``predict_hallmark_scores`` does (``reindex(columns=features, fill_value=0)``), and NaN values are
   set to 0 — then every sample is ranked **over the model genes only** (descending, average ties),
   log2-transformed, and standardised per gene: ``z = (log2 rank − mean) / sd`` with mean and
   population sd (ddof 0, as ``sklearn.preprocessing.StandardScaler``) fitted on the training
   samples' step-2 values; an sd of 0 is replaced by 1. Ranking over the model genes (not over
   whatever genes a new matrix happens to have) is what makes a new sample's features comparable to
   the training features whatever its gene universe.
3. **Units do not matter.** Ranks are invariant under any strictly increasing per-sample transform,
   so summed UMI counts, FPKM and log2(FPKM+1) of the same sample give identical features (the
   bulk branch's log2(FPKM+1) matrices can be scored directly).
4. **Duplicated symbols** in an input matrix: the column with the highest mean over the matrix's
   samples is kept (first one on a tie); the others are dropped and reported. Columns with an empty
   symbol are ignored.

``transform`` returns ``(Z, report)``; the report lists the model genes missing from the input
(filled with 0), the duplicated symbols dropped, the NaN count and the number of input genes that are
not model genes.

Model (:class:`HallmarkMTL`)
----------------------------
Shared ``Linear(G→64)`` + ReLU; per hallmark ``Linear(64→16)`` + ReLU → ``Linear(16→1)``. As in
OncoMark's Keras model (``Dense(..., kernel_initializer="he_uniform")`` for the shared and the
per-task hidden layer, Keras-default Glorot-uniform for the output layer, zero biases):
He/Kaiming-uniform (bound ``sqrt(6 / fan_in)``) for the two hidden layers, Xavier-uniform for the
output layer, zero biases. ``forward`` returns **logits** ``[B, H]`` (one per hallmark head); the
SPEC's sigmoid is applied by :meth:`HallmarkMTL.predict_proba` and, for training, inside
``BCEWithLogits`` (numerically stable; mathematically the same loss as sigmoid + BCE).

Loss (:func:`masked_bce`): each sample contributes only through its own hallmark's head (task mask),
``mean_i BCE(logit[i, task_i], y_i)`` — averaged over the samples of the batch. OncoMark's TF code
averages the masked ``[H, B]`` loss matrix over all ``H·B`` entries, i.e. the same loss divided by
``H``; Adam is invariant to a constant loss scale (up to its ``eps``), so the training is equivalent.

Training (:func:`train_mtl`): Adam (lr 1e-4), batch 256, samples reshuffled every epoch with a seeded
generator, ≤ 50 epochs. After each epoch the validation loss (same masked BCE over the whole
validation set) is compared with the best so far (strict ``<``): as OncoMark's ``train_model``, the
lr is multiplied by 0.5 (floor 1e-6) once 3 consecutive epochs have not improved (counter reset after
each reduction), and training stops once 6 consecutive epochs have not improved. The returned model
holds the weights of the best validation epoch (OncoMark's code keeps a reference to the live model
instead — a bug this module does not copy).

Evaluation
----------
* :func:`split_85_15` — 85/15 split stratified per hallmark × status (the 15 % drives the lr
  schedule and early stopping).
* :func:`cross_validate` — ``RepeatedStratifiedKFold`` (5 × 2) stratified per hallmark × status;
  in each fold the :class:`Preprocessor` is fitted on the fold's training part only (the 85 % and the
  15 % early-stopping part together; never on the fold's test part), the MTL model is trained with
  the 85/15 split of that training part, and two baselines are fitted on the same features and folds:
  ``logreg`` — one L2 logistic regression per hallmark (sklearn defaults, C = 1, lbfgs,
  ``max_iter`` 5000, BLAS limited to 1 thread) on that hallmark's training samples; ``stl_mlp`` —
  the same architecture with one head, trained per hallmark on that
  hallmark's samples with the same training routine and an 85/15 split stratified by status.
  Metrics per hallmark on the fold's test samples of that hallmark, probability of its own head:
  accuracy, precision, recall, F1 (threshold 0.5, ``zero_division=0``), AUROC, AUPRC
  (``average_precision_score``); AUROC / AUPRC are NaN when the test part has one class only.
  Note: folds are stratified, not grouped by patient, as in OncoMark — profiles of one patient can
  sit in train and test, so CV is optimistic; the held-out-study validation is the honest check.
* :func:`predict_hallmarks` — probabilities of all heads for any samples × genes matrix.
* :func:`compare_groups` — primary vs metastatic per hallmark: means, difference, Cliff's delta,
  two-sided Mann–Whitney U p, Benjamini–Hochberg q.

Model files (:func:`save_hallmark_model` / :func:`load_hallmark_model`) use the project's model file
format (:func:`oncoshot.experiments.save_model`, kind ``"hallmark_mtl"``): a dict of tensors and plain
types, read back with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import math
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.stats import mannwhitneyu, rankdata
from torch import nn

from .errors import InputError

__all__ = [
    "HALLMARKS",
    "MODEL_KIND",
    "METRICS",
    "log2_rank",
    "Preprocessor",
    "HallmarkMTL",
    "masked_bce",
    "encode_tasks",
    "TrainResult",
    "train_mtl",
    "split_85_15",
    "hallmark_metrics",
    "fit_hallmark_model",
    "evaluate_model",
    "CVResult",
    "cross_validate",
    "predict_hallmarks",
    "predict_anndata",
    "mean_by_group",
    "cliffs_delta",
    "compare_groups",
    "save_hallmark_model",
    "load_hallmark_model",
]

#: OncoMark's ten hallmarks, in the SPEC's order (the model's head order by default).
HALLMARKS: tuple[str, ...] = ("IA", "TPI", "GIM", "SPS", "AID", "ERI", "RCD", "EGS", "DCE", "AIM")
MODEL_KIND = "hallmark_mtl"
PREPROCESSOR_FORMAT = "oncoshot-hallmark-preprocessor-v1"
METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "auroc", "auprc")
_STATUS = {"positive": 1.0, "negative": 0.0, "1": 1.0, "0": 0.0, "true": 1.0, "false": 0.0}

Log = Callable[[str], None] | None


def _say(log: Log, msg: str) -> None:
    if log is not None:
        log(msg)


# ---------------------------------------------------------------------------------------------
# preprocessing
# ---------------------------------------------------------------------------------------------
def log2_rank(X) -> np.ndarray:
    """log2 of the per-row descending rank (rank 1 = highest value, ties get their average rank;
    ``scipy.stats.rankdata(-x, method="average")``) of a dense 2-D array. float64."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(None, "X", f"expected a 2-D matrix, got shape {X.shape}")
    if X.shape[1] == 0:
        return np.zeros_like(X)
    return np.log2(rankdata(-X, axis=1, method="average"))


def _as_matrix(X):
    """CSR (sparse input) or 2-D ndarray; AnnData / DataFrame are not accepted here (pass ``.X``)."""
    if sp.issparse(X):
        return sp.csr_matrix(X)
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputError(None, "X", f"expected a 2-D samples × genes matrix, got shape {X.shape}")
    return X


def _dense_rows(X, rows: slice, cols: np.ndarray | None = None) -> np.ndarray:
    block = X[rows]
    if cols is not None:
        block = block[:, cols]
    if sp.issparse(block):
        block = block.toarray()
    return np.asarray(block, dtype=np.float64)


def _column_means(X) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.asarray(X, dtype=np.float64), axis=0) if X.shape[0] else np.zeros(X.shape[1])


def _unique_columns(X, genes: Sequence[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Column indices to keep (one per non-empty symbol: the highest-mean column of duplicates),
    their symbols, and the sorted list of duplicated symbols."""
    genes = np.asarray([("" if g is None or (isinstance(g, float) and math.isnan(g)) else str(g))
                        for g in genes], dtype=object)
    if len(genes) != X.shape[1]:
        raise InputError(None, "genes", f"{len(genes)} gene names for a matrix with {X.shape[1]} columns")
    named = np.flatnonzero(genes != "")
    counts = pd.Series(genes[named]).value_counts()
    dups = sorted(counts.index[counts > 1].tolist())
    if not dups:
        return named, genes[named].tolist(), []
    means = _column_means(X)
    means = np.where(np.isnan(means), -np.inf, means)
    frame = pd.DataFrame({"col": named, "gene": genes[named], "mean": means[named]})
    # highest mean first, first column on a tie; then restore the column order
    frame = frame.sort_values(["mean", "col"], ascending=[False, True], kind="mergesort")
    frame = frame.drop_duplicates("gene", keep="first").sort_values("col")
    return frame["col"].to_numpy(), frame["gene"].tolist(), dups


class Preprocessor:
    """Rank → log2 → per-gene standardisation, fitted on training data only (module docstring).

    Attributes after :meth:`fit`: ``genes_`` (model genes, list of symbols), ``mean_``, ``sd_``
    (float64 arrays, one per model gene), ``variance_`` (selection variance of the model genes),
    ``n_fit_samples_``, ``n_fit_genes_``, ``fit_report_``.
    """

    def __init__(self, n_top: int = 10_000, chunk_size: int = 2048):
        if n_top < 1:
            raise InputError(None, "n_top", f"must be >= 1, got {n_top}")
        self.n_top = int(n_top)
        self.chunk_size = int(chunk_size)
        self.genes_: list[str] | None = None
        self.mean_: np.ndarray | None = None
        self.sd_: np.ndarray | None = None
        self.variance_: np.ndarray | None = None
        self.n_fit_samples_: int = 0
        self.n_fit_genes_: int = 0
        self.fit_report_: dict = {}

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, genes: Sequence[str]) -> "Preprocessor":
        X = _as_matrix(X)
        if X.shape[0] < 2:
            raise InputError(None, "X", f"need >= 2 training samples, got {X.shape[0]}")
        cols, names, dups = _unique_columns(X, genes)
        if not names:
            raise InputError(None, "genes", "no named genes")
        n, g = X.shape[0], len(cols)
        # 1. variance of log2 ranks over all training genes
        s1 = np.zeros(g)
        s2 = np.zeros(g)
        for start in range(0, n, self.chunk_size):
            block = np.nan_to_num(_dense_rows(X, slice(start, start + self.chunk_size), cols), nan=0.0)
            lr = log2_rank(block)
            s1 += lr.sum(axis=0)
            s2 += (lr * lr).sum(axis=0)
        mean_all = s1 / n
        var_all = np.maximum(s2 / n - mean_all**2, 0.0)
        k = min(self.n_top, g)
        top = np.sort(np.argsort(-var_all, kind="mergesort")[:k])
        self.genes_ = [names[i] for i in top]
        self.variance_ = var_all[top]
        self.mean_ = np.zeros(k)
        self.sd_ = np.ones(k)
        # 2. mean / sd of log2 ranks computed over the model genes
        L = self._log2_ranks(X, cols[top], np.ones(k, dtype=bool))
        self.mean_ = L.mean(axis=0)
        sd = L.std(axis=0)
        self.sd_ = np.where(sd > 1e-12, sd, 1.0)
        self.n_fit_samples_ = int(n)
        self.n_fit_genes_ = int(g)
        self.fit_report_ = {"n_samples": int(n), "n_input_genes": int(g), "n_model_genes": int(k),
                            "n_duplicate_symbols": len(dups), "duplicate_symbols": dups}
        return self

    def fit_transform(self, X, genes: Sequence[str]) -> tuple[np.ndarray, dict]:
        return self.fit(X, genes).transform(X, genes)

    # -- transforming ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.genes_ is None:
            raise InputError(None, "Preprocessor", "not fitted")

    def _log2_ranks(self, X, src: np.ndarray, present: np.ndarray) -> np.ndarray:
        """log2 ranks over the model genes; ``src[j]`` = input column of model gene j (where
        ``present[j]``), absent model genes are 0 before ranking."""
        n, k = X.shape[0], len(present)
        out = np.empty((n, k), dtype=np.float64)
        pres_idx = np.flatnonzero(present)
        for start in range(0, n, self.chunk_size):
            stop = min(start + self.chunk_size, n)
            block = np.zeros((stop - start, k))
            if len(pres_idx):
                block[:, pres_idx] = _dense_rows(X, slice(start, stop), src[pres_idx])
            out[start:stop] = log2_rank(np.nan_to_num(block, nan=0.0))
        return out

    def transform(self, X, genes: Sequence[str]) -> tuple[np.ndarray, dict]:
        """Features ``Z`` (float32, samples × model genes, in ``genes_`` order) and a report dict:
        ``n_samples``, ``n_model_genes``, ``n_missing`` / ``missing_genes`` (model genes absent from
        the input, filled with 0 before ranking), ``n_duplicate_symbols`` / ``duplicate_symbols``
        (kept: highest mean), ``n_nan_values`` (NaN values in the input matrix, set to 0), ``n_unused_input_genes``."""
        self._check_fitted()
        X = _as_matrix(X)
        cols, names, dups = _unique_columns(X, genes)
        pos = {g: c for g, c in zip(names, cols)}
        src = np.array([pos.get(g, -1) for g in self.genes_], dtype=np.int64)
        present = src >= 0
        n_nan = 0
        if X.shape[0] and present.any():
            if sp.issparse(X):
                n_nan = int(np.isnan(X.data).sum()) if X.data.dtype.kind == "f" else 0
            else:
                sub = X[:, src[present]]
                n_nan = int(np.isnan(sub).sum()) if np.asarray(sub).dtype.kind == "f" else 0
        L = self._log2_ranks(X, src, present)
        Z = ((L - self.mean_) / self.sd_).astype(np.float32)
        missing = [g for g, p in zip(self.genes_, present) if not p]
        report = {"n_samples": int(X.shape[0]), "n_model_genes": len(self.genes_),
                  "n_missing": len(missing), "missing_genes": missing,
                  "n_duplicate_symbols": len(dups), "duplicate_symbols": dups,
                  "n_nan_values": n_nan, "n_unused_input_genes": int(len(names) - present.sum())}
        return Z, report

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain lists / tensors only (loadable with ``torch.load(weights_only=True)``)."""
        self._check_fitted()
        return {"format": PREPROCESSOR_FORMAT, "n_top": self.n_top, "genes": list(self.genes_),
                "mean": torch.tensor(self.mean_, dtype=torch.float64),
                "sd": torch.tensor(self.sd_, dtype=torch.float64),
                "variance": torch.tensor(self.variance_, dtype=torch.float64),
                "n_fit_samples": int(self.n_fit_samples_), "n_fit_genes": int(self.n_fit_genes_)}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessor":
        if not isinstance(d, dict) or d.get("format") != PREPROCESSOR_FORMAT:
            raise InputError(None, "preprocessor", f"expected a {PREPROCESSOR_FORMAT!r} dict")
        pre = cls(n_top=int(d["n_top"]))
        pre.genes_ = [str(g) for g in d["genes"]]
        pre.mean_ = torch.as_tensor(d["mean"]).double().numpy().copy()
        pre.sd_ = torch.as_tensor(d["sd"]).double().numpy().copy()
        pre.variance_ = torch.as_tensor(d["variance"]).double().numpy().copy()
        pre.n_fit_samples_ = int(d["n_fit_samples"])
        pre.n_fit_genes_ = int(d["n_fit_genes"])
        if not (len(pre.genes_) == len(pre.mean_) == len(pre.sd_)):
            raise InputError(None, "preprocessor", "genes / mean / sd lengths differ")
        return pre


# ---------------------------------------------------------------------------------------------
# model and loss
# ---------------------------------------------------------------------------------------------
class HallmarkMTL(nn.Module):
    """Shared Linear(G→64)+ReLU; per hallmark Linear(64→16)+ReLU → Linear(16→1). ``forward``
    returns logits ``[B, H]`` in ``hallmarks`` order."""

    def __init__(self, n_genes: int, hallmarks: Sequence[str] = HALLMARKS, hidden: int = 64,
                 head_hidden: int = 16):
        super().__init__()
        self.hallmarks = [str(h) for h in hallmarks]
        if not self.hallmarks or len(set(self.hallmarks)) != len(self.hallmarks):
            raise InputError(None, "hallmarks", f"need distinct hallmark names, got {self.hallmarks}")
        self.n_genes, self.hidden, self.head_hidden = int(n_genes), int(hidden), int(head_hidden)
        self.shared = nn.Sequential(nn.Linear(self.n_genes, self.hidden), nn.ReLU())
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(self.hidden, self.head_hidden), nn.ReLU(), nn.Linear(self.head_hidden, 1))
            for _ in self.hallmarks)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-uniform (bound sqrt(6/fan_in)) hidden layers, Glorot-uniform output layers, zero
        biases — Keras ``he_uniform`` / default initialisers of OncoMark's model."""
        hidden_layers = [self.shared[0]] + [h[0] for h in self.heads]
        for lin in hidden_layers:
            nn.init.kaiming_uniform_(lin.weight, a=0.0, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
        for h in self.heads:
            nn.init.xavier_uniform_(h[2].weight)
            nn.init.zeros_(h[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.shared(x)
        return torch.cat([head(z) for head in self.heads], dim=1)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(x))


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each sample on its own task's head only, averaged over samples:
    ``mean_i BCEWithLogits(logits[i, task_index[i]], targets[i])``."""
    if logits.ndim != 2 or targets.ndim != 1 or task_index.ndim != 1 or len(targets) != len(logits) \
            or len(task_index) != len(logits):
        raise InputError(None, "masked_bce", f"shapes {tuple(logits.shape)}, {tuple(targets.shape)}, "
                                             f"{tuple(task_index.shape)}; expected [B, H], [B], [B]")
    own = logits.gather(1, task_index.long().view(-1, 1)).squeeze(1)
    return nn.functional.binary_cross_entropy_with_logits(own, targets.to(own.dtype), reduction="mean")


def encode_tasks(obs: pd.DataFrame, hallmarks: Sequence[str] = HALLMARKS,
                 hallmark_column: str = "hallmark", status_column: str = "status") -> tuple[np.ndarray, np.ndarray]:
    """``(task_index int64, y float32)`` from an obs table with hallmark codes and status
    (``positive`` / ``negative``, or 1 / 0). Unknown hallmarks or statuses are an InputError."""
    for col in (hallmark_column, status_column):
        if col not in obs.columns:
            raise InputError(None, col, f"obs has no {col!r} column")
    lookup = {h: i for i, h in enumerate(hallmarks)}
    hm = obs[hallmark_column].astype(str).to_numpy()
    bad = sorted(set(hm) - set(lookup))
    if bad:
        raise InputError(None, hallmark_column, f"unknown hallmark(s) {bad[:5]} (model has {list(hallmarks)})")
    st = obs[status_column].astype(str).str.lower().to_numpy()
    bad = sorted(set(st) - set(_STATUS))
    if bad:
        raise InputError(None, status_column, f"unknown status value(s) {bad[:5]}")
    return (np.array([lookup[h] for h in hm], dtype=np.int64),
            np.array([_STATUS[s] for s in st], dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
class TrainResult(NamedTuple):
    model: HallmarkMTL          #: on the training device, best-epoch weights loaded, eval mode
    best_state: dict            #: CPU copy of the best-epoch state_dict
    history: pd.DataFrame       #: epoch, train_loss, val_loss, lr, improved
    best_epoch: int             #: 1-based; 0 if no epoch ran
    stopped_early: bool


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _tensor(a, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


@torch.no_grad()
def _loss_on(model, Z: torch.Tensor, t: torch.Tensor, y: torch.Tensor, batch: int = 4096) -> float:
    total = 0.0
    for s in range(0, len(Z), batch):
        total += float(masked_bce(model(Z[s:s + batch]), y[s:s + batch], t[s:s + batch])) * len(Z[s:s + batch])
    return total / max(len(Z), 1)


def train_mtl(Z_train, hallmark_idx, y, Z_val=None, hallmark_idx_val=None, y_val=None, *,
              hallmarks: Sequence[str] = HALLMARKS, lr: float = 1e-4, batch_size: int = 256,
              max_epochs: int = 50, plateau_patience: int = 3, lr_factor: float = 0.5,
              min_lr: float = 1e-6, stop_patience: int = 6, seed: int = 0, device=None,
              log: Log = None) -> TrainResult:
    """Train :class:`HallmarkMTL` with the masked BCE (module docstring for the schedule).

    ``Z_*`` float features (samples × genes), ``hallmark_idx*`` int task index per sample into
    ``hallmarks``, ``y*`` 0/1 labels. Weights are initialised under ``torch.manual_seed(seed)``
    (inside ``torch.random.fork_rng``, so the global RNG is untouched) and batches are drawn from a
    ``torch.Generator`` seeded with ``seed``: the same seed gives the same model on CPU. Without a
    validation set (``Z_val=None``) the lr stays fixed, all ``max_epochs`` run and the last epoch is
    kept.
    """
    dev = _device(device)
    Z = _tensor(Z_train, torch.float32, dev)
    t = _tensor(hallmark_idx, torch.long, dev)
    yy = _tensor(y, torch.float32, dev)
    if not (len(Z) == len(t) == len(yy)) or len(Z) == 0:
        raise InputError(None, "train_mtl", f"{len(Z)} samples, {len(t)} task indices, {len(yy)} labels")
    if int(t.max()) >= len(hallmarks) or int(t.min()) < 0:
        raise InputError(None, "hallmark_idx", f"task index out of range 0..{len(hallmarks) - 1}")
    has_val = Z_val is not None and len(Z_val) > 0
    if has_val:
        Zv = _tensor(Z_val, torch.float32, dev)
        tv = _tensor(hallmark_idx_val, torch.long, dev)
        yv = _tensor(y_val, torch.float32, dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = HallmarkMTL(Z.shape[1], hallmarks)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    best_val, best_state, best_epoch = math.inf, None, 0
    bad, bad_lr, stopped = 0, 0, False
    rows = []
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(len(Z), generator=gen).to(dev)
        total = 0.0
        for s in range(0, len(Z), batch_size):
            idx = order[s:s + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = masked_bce(model(Z[idx]), yy[idx], t[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        train_loss = total / len(Z)
        model.eval()
        cur_lr = opt.param_groups[0]["lr"]
        if has_val:
            val_loss = _loss_on(model, Zv, tv, yv)
            improved = val_loss < best_val
        else:
            val_loss, improved = float("nan"), True
        rows.append((epoch, train_loss, val_loss, cur_lr, improved))
        _say(log, f"epoch {epoch}: train {train_loss:.4f} val {val_loss:.4f} lr {cur_lr:.2e}"
                  f"{' *' if improved else ''}")
        if improved:
            best_val, best_epoch, bad, bad_lr = val_loss, epoch, 0, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            continue
        bad += 1
        bad_lr += 1
        if bad_lr >= plateau_patience:
            for g in opt.param_groups:
                g["lr"] = max(g["lr"] * lr_factor, min_lr)
            bad_lr = 0
            _say(log, f"lr -> {opt.param_groups[0]['lr']:.2e}")
        if bad >= stop_patience:
            stopped = True
            _say(log, f"early stop after epoch {epoch} (best epoch {best_epoch})")
            break
    if best_state is None:  # max_epochs == 0
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    history = pd.DataFrame(rows, columns=["epoch", "train_loss", "val_loss", "lr", "improved"])
    return TrainResult(model, best_state, history, best_epoch, stopped)


# ---------------------------------------------------------------------------------------------
# splits and metrics
# ---------------------------------------------------------------------------------------------
def _strata(obs: pd.DataFrame, hallmark_column: str = "hallmark", status_column: str = "status") -> np.ndarray:
    return (obs[hallmark_column].astype(str) + "|" + obs[status_column].astype(str)).to_numpy()


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from .experiments import stratified_holdout

    return stratified_holdout(labels, fraction, seed)


def split_85_15(obs: pd.DataFrame, seed: int, fraction: float = 0.15, hallmark_column: str = "hallmark",
                status_column: str = "status") -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row positions of ``obs``: per hallmark × status stratum, a seeded
    permutation, ``round(fraction · n)`` rows to validation (at least 1 and at most n − 1 for strata
    with ≥ 2 rows; a 1-row stratum stays in training). Sorted positions."""
    return _stratified_split(_strata(obs, hallmark_column, status_column), fraction, seed)


def hallmark_metrics(prob, task_index, y, hallmarks: Sequence[str] = HALLMARKS,
                     threshold: float = 0.5) -> pd.DataFrame:
    """Per hallmark (own-head probabilities ``prob[i]`` of sample i): n, n_positive, accuracy,
    precision, recall, F1 (at ``threshold``), AUROC, AUPRC. Hallmarks without samples are omitted;
    AUROC / AUPRC are NaN with one class only."""
    from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, precision_score,
                                 recall_score, roc_auc_score)

    prob = np.asarray(prob, dtype=np.float64)
    task_index = np.asarray(task_index)
    y = np.asarray(y).astype(int)
    rows = []
    for j, h in enumerate(hallmarks):
        m = task_index == j
        if not m.any():
            continue
        p, t = prob[m], y[m]
        pred = (p >= threshold).astype(int)
        two = len(np.unique(t)) == 2
        rows.append({"hallmark": h, "n": int(m.sum()), "n_positive": int(t.sum()),
                     "accuracy": accuracy_score(t, pred),
                     "precision": precision_score(t, pred, zero_division=0),
                     "recall": recall_score(t, pred, zero_division=0),
                     "f1": f1_score(t, pred, zero_division=0),
                     "auroc": roc_auc_score(t, p) if two else np.nan,
                     "auprc": average_precision_score(t, p) if two else np.nan})
    return pd.DataFrame(rows, columns=["hallmark", "n", "n_positive", *METRICS])


@torch.no_grad()
def _probabilities(model: HallmarkMTL, Z, batch: int = 4096) -> np.ndarray:
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for s in range(0, len(Z), batch):
        out.append(model.predict_proba(_tensor(Z[s:s + batch], torch.float32, dev)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.hallmarks)), dtype=np.float32)


def _own_head(P: np.ndarray, task_index: np.ndarray) -> np.ndarray:
    return P[np.arange(len(P)), task_index]


def _as_dense_rows(X, idx: np.ndarray):
    return X[idx] if not sp.issparse(X) else sp.csr_matrix(X)[idx]


def fit_hallmark_model(X, obs: pd.DataFrame, genes: Sequence[str], *, hallmarks: Sequence[str] = HALLMARKS,
                       n_top: int = 10_000, seed: int = 0, val_fraction: float = 0.15, device=None,
                       log: Log = None, **train_kwargs) -> tuple[HallmarkMTL, Preprocessor, TrainResult, dict]:
    """Final model: preprocessor fitted on all of ``X`` (the training data), an 85/15 split
    (:func:`split_85_15`, ``seed``) for the lr schedule / early stopping, :func:`train_mtl`.
    Returns ``(model, preprocessor, train_result, info)``; ``info`` holds the split positions, the
    validation-part metrics and the preprocessing report."""
    X = _as_matrix(X)
    task, y = encode_tasks(obs, hallmarks)
    pre = Preprocessor(n_top=n_top)
    Z, report = pre.fit_transform(X, genes)
    tr, va = split_85_15(obs, seed, val_fraction)
    res = train_mtl(Z[tr], task[tr], y[tr], Z[va], task[va], y[va], hallmarks=hallmarks, seed=seed,
                    device=device, log=log, **train_kwargs)
    P = _probabilities(res.model, Z[va])
    info = {"train_index": tr, "val_index": va, "preprocess_report": report,
            "val_metrics": hallmark_metrics(_own_head(P, task[va]), task[va], y[va], hallmarks)}
    return res.model, pre, res, info


def evaluate_model(model: HallmarkMTL, preprocessor: Preprocessor, X, obs: pd.DataFrame,
                   genes: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Per hallmark metrics of labelled profiles (e.g. the held-out-study validation set) and the
    preprocessing report."""
    Z, report = preprocessor.transform(X, genes)
    task, y = encode_tasks(obs, model.hallmarks)
    P = _probabilities(model, Z)
    return hallmark_metrics(_own_head(P, task), task, y, model.hallmarks), report


# ---------------------------------------------------------------------------------------------
# cross-validation with baselines
# ---------------------------------------------------------------------------------------------
class CVResult(NamedTuple):
    folds: pd.DataFrame        #: model, repeat, fold, hallmark, n, n_positive, metrics
    summary: pd.DataFrame      #: model, hallmark (+ "macro"), n_folds, <metric>_mean, <metric>_sd
    predictions: pd.DataFrame  #: model, repeat, fold, sample, hallmark, y, prob (out-of-fold)
    histories: pd.DataFrame    #: MTL training history per fold (repeat, fold + train_mtl history)


def _fold_seed(seed: int, repeat: int, fold: int, extra: int = 0) -> int:
    return int(seed) * 1_000_003 + 1009 * repeat + 31 * fold + extra


def summarise_folds(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd (ddof 1, NaN ignored) over folds per model × hallmark, plus a ``macro`` row per
    model (per fold the mean over hallmarks, then mean ± sd over folds)."""
    macro = folds.groupby(["model", "repeat", "fold"], sort=False)[list(METRICS)].mean().reset_index()
    macro["hallmark"] = "macro"
    both = pd.concat([folds, macro], ignore_index=True)
    g = both.groupby(["model", "hallmark"], sort=False)
    out = g.size().rename("n_folds").reset_index()
    for m in METRICS:
        out[f"{m}_mean"] = g[m].mean().to_numpy()
        out[f"{m}_sd"] = g[m].std(ddof=1).to_numpy()
    return out


def cross_validate(X, obs: pd.DataFrame, genes: Sequence[str], *, n_splits: int = 5, n_repeats: int = 2,
                   seed: int = 0, hallmarks: Sequence[str] = HALLMARKS, n_top: int = 10_000,
                   baselines: Sequence[str] = ("logreg", "stl_mlp"), train_kwargs: dict | None = None,
                   logreg_kwargs: dict | None = None, device=None, log: Log = None) -> CVResult:
    """Repeated stratified k-fold CV of the MTL model and the baselines (module docstring)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold
    from threadpoolctl import threadpool_limits

    unknown = set(baselines) - {"logreg", "stl_mlp"}
    if unknown:
        raise InputError(None, "baselines", f"unknown baseline(s) {sorted(unknown)}")
    X = _as_matrix(X)
    sample_ids = obs.index.astype(str).to_numpy()
    obs = obs.reset_index(drop=True)
    task, y = encode_tasks(obs, hallmarks)
    strata = _strata(obs)
    train_kwargs = dict(train_kwargs or {})
    logreg_kwargs = {"max_iter": 5000, **(logreg_kwargs or {})}
    rskf = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    fold_rows, pred_rows, hist = [], [], []

    def record(model_name, r, f, test, prob):
        tab = hallmark_metrics(prob, task[test], y[test], hallmarks)
        tab.insert(0, "fold", f)
        tab.insert(0, "repeat", r)
        tab.insert(0, "model", model_name)
        fold_rows.append(tab)
        pred_rows.append(pd.DataFrame({"model": model_name, "repeat": r, "fold": f,
                                       "sample": sample_ids[test],
                                       "hallmark": np.asarray(hallmarks)[task[test]],
                                       "y": y[test], "prob": prob}))

    for k, (train, test) in enumerate(rskf.split(np.zeros(len(strata)), strata)):
        r, f = divmod(k, n_splits)
        pre = Preprocessor(n_top=n_top)
        Ztr, _ = pre.fit_transform(_as_dense_rows(X, train), genes)
        Zte, _ = pre.transform(_as_dense_rows(X, test), genes)
        sub_obs = obs.iloc[train]
        tr, va = split_85_15(sub_obs, _fold_seed(seed, r, f))
        s = _fold_seed(seed, r, f, 1)
        res = train_mtl(Ztr[tr], task[train][tr], y[train][tr], Ztr[va], task[train][va], y[train][va],
                        hallmarks=hallmarks, seed=s, device=device, **train_kwargs)
        h = res.history.copy()
        h.insert(0, "fold", f)
        h.insert(0, "repeat", r)
        hist.append(h)
        record("mtl", r, f, test, _own_head(_probabilities(res.model, Zte), task[test]))
        _say(log, f"repeat {r} fold {f}: MTL best epoch {res.best_epoch}")
        for base in baselines:
            prob = np.full(len(test), np.nan)
            for j, hm in enumerate(hallmarks):
                mtr = task[train] == j
                mte = task[test] == j
                if not mte.any() or not mtr.any() or len(np.unique(y[train][mtr])) < 2:
                    continue
                if base == "logreg":
                    with threadpool_limits(limits=1, user_api="blas"):  # small fits: threads only cost
                        clf = LogisticRegression(**logreg_kwargs).fit(Ztr[mtr], y[train][mtr].astype(int))
                    prob[mte] = clf.predict_proba(Zte[mte])[:, 1]
                else:
                    pos = np.flatnonzero(mtr)
                    st = sub_obs.iloc[pos]
                    a, b = split_85_15(st, _fold_seed(seed, r, f, 2 + j))
                    one = train_mtl(Ztr[pos[a]], np.zeros(len(a), np.int64), y[train][pos[a]],
                                    Ztr[pos[b]], np.zeros(len(b), np.int64), y[train][pos[b]],
                                    hallmarks=[hm], seed=_fold_seed(seed, r, f, 20 + j), device=device,
                                    **train_kwargs)
                    prob[mte] = _probabilities(one.model, Zte[mte])[:, 0]
            ok = ~np.isnan(prob)
            record(base, r, f, test[ok], prob[ok])
    folds = pd.concat(fold_rows, ignore_index=True)
    return CVResult(folds, summarise_folds(folds), pd.concat(pred_rows, ignore_index=True),
                    pd.concat(hist, ignore_index=True))


# ---------------------------------------------------------------------------------------------
# scoring new samples
# ---------------------------------------------------------------------------------------------
def predict_hallmarks(model: HallmarkMTL, preprocessor: Preprocessor, X, genes: Sequence[str],
                      samples: Sequence[str] | None = None, batch_size: int = 4096) -> pd.DataFrame:
    """Hallmark probabilities (samples × hallmarks, every head) of any samples × genes matrix whose
    columns are gene symbols. Units do not matter (per-sample ranks); model genes missing from the
    matrix are filled with 0 before ranking; duplicated symbols keep the highest-mean column. The
    preprocessing report (missing genes, duplicates, …) is in ``result.attrs["report"]``."""
    if list(preprocessor.genes_ or []) and model.n_genes != len(preprocessor.genes_):
        raise InputError(None, "model", f"model expects {model.n_genes} genes, preprocessor has "
                                        f"{len(preprocessor.genes_)}")
    Z, report = preprocessor.transform(X, genes)
    P = _probabilities(model, Z, batch_size)
    index = pd.Index([str(s) for s in samples], name="sample") if samples is not None else \
        pd.RangeIndex(len(P), name="sample")
    out = pd.DataFrame(P.astype(np.float64), index=index, columns=list(model.hallmarks))
    out.attrs["report"] = report
    return out


def predict_anndata(model: HallmarkMTL, preprocessor: Preprocessor, adata,
                    symbol_column: str | None = "symbol") -> pd.DataFrame:
    """:func:`predict_hallmarks` on an AnnData: genes from ``var[symbol_column]`` when that column
    exists (bulk branch: var index = Ensembl id), else ``var_names`` (single-cell branch)."""
    if symbol_column is not None and symbol_column in adata.var.columns:
        genes = adata.var[symbol_column].astype(object).where(adata.var[symbol_column].notna(), "").astype(str)
    else:
        genes = adata.var_names.astype(str)
    return predict_hallmarks(model, preprocessor, adata.X, list(genes), samples=list(adata.obs_names))


# ---------------------------------------------------------------------------------------------
# group summaries and comparisons
# ---------------------------------------------------------------------------------------------
def _aligned_groups(probabilities: pd.DataFrame, groups) -> pd.Series:
    if isinstance(groups, pd.Series) and groups.index.equals(probabilities.index):
        g = groups
    elif isinstance(groups, pd.Series) and set(probabilities.index) <= set(groups.index):
        g = groups.reindex(probabilities.index)
    else:
        g = pd.Series(np.asarray(groups, dtype=object), index=probabilities.index)
        if len(g) != len(probabilities):
            raise InputError(None, "groups", f"{len(g)} labels for {len(probabilities)} samples")
    return g


def mean_by_group(probabilities: pd.DataFrame, groups) -> tuple[pd.DataFrame, pd.Series]:
    """Mean probability per group (groups × hallmarks, groups sorted) and the group sizes."""
    g = _aligned_groups(probabilities, groups)
    ok = g.notna().to_numpy()
    p = probabilities[ok]
    gg = g[ok].astype(str)
    return p.groupby(gg.to_numpy()).mean().sort_index(), gg.value_counts().sort_index()


def cliffs_delta(b, a) -> float:
    """Cliff's delta of ``b`` over ``a``: P(b > a) − P(b < a) over all pairs (= rank-biserial
    correlation ``2 U_b / (n_a n_b) − 1``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([b, a]))
    u_b = ranks[: len(b)].sum() - len(b) * (len(b) + 1) / 2
    return float(2 * u_b / (len(a) * len(b)) - 1)


def compare_groups(probabilities: pd.DataFrame, groups, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Per hallmark, group b vs group a (default ``order = ("primary", "metastatic")`` when both
    labels occur, else the two labels sorted): n, mean and median per group, ``difference`` =
    mean_b − mean_a, ``cliffs_delta`` (b over a; > 0 means higher in b), the Mann–Whitney U of b
    (``scipy.stats.mannwhitneyu(b, a, alternative="two-sided")``, default method), its ``p`` and the
    Benjamini–Hochberg ``q`` across hallmarks."""
    from .markers import bh_adjust

    g = _aligned_groups(probabilities, groups)
    labels = sorted(pd.unique(g.dropna().astype(str)))
    if order is None:
        order = ("primary", "metastatic") if {"primary", "metastatic"} <= set(labels) else tuple(labels)
    order = tuple(str(o) for o in order)
    if len(order) != 2:
        raise InputError(None, "groups", f"need exactly two groups, got {list(order)}")
    gs = g.astype(object).where(g.notna(), None)
    ma = (gs.astype(str) == order[0]).to_numpy() & g.notna().to_numpy()
    mb = (gs.astype(str) == order[1]).to_numpy() & g.notna().to_numpy()
    if not ma.any() or not mb.any():
        raise InputError(None, "groups", f"group {order[0] if not ma.any() else order[1]!r} has no samples")
    rows = []
    for h in probabilities.columns:
        a = probabilities.loc[ma, h].to_numpy(np.float64)
        b = probabilities.loc[mb, h].to_numpy(np.float64)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if len(a) and len(b):
            res = mannwhitneyu(b, a, alternative="two-sided")
            u, p = float(res.statistic), float(res.pvalue)
        else:
            u, p = float("nan"), float("nan")
        rows.append({"hallmark": str(h), "group_a": order[0], "group_b": order[1], "n_a": len(a),
                     "n_b": len(b), "mean_a": a.mean() if len(a) else np.nan,
                     "mean_b": b.mean() if len(b) else np.nan,
                     "median_a": np.median(a) if len(a) else np.nan,
                     "median_b": np.median(b) if len(b) else np.nan,
                     "difference": (b.mean() - a.mean()) if len(a) and len(b) else np.nan,
                     "cliffs_delta": cliffs_delta(b, a), "U": u, "p": p})
    out = pd.DataFrame(rows)
    out["q"] = bh_adjust(out["p"].to_numpy())
    return out


# ---------------------------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------------------------
def save_hallmark_model(path: str | os.PathLike, model: HallmarkMTL, preprocessor: Preprocessor,
                        meta: dict | None = None) -> None:
    """Write model + preprocessor atomically with :func:`oncoshot.experiments.save_model` (kind
    ``"hallmark_mtl"``; ``classes`` = hallmark head order, ``genes`` = model genes). ``meta`` must
    hold plain types / tensors only (it is stored under ``"meta"``)."""
    from .experiments import save_model

    if len(preprocessor.genes_ or []) != model.n_genes:
        raise InputError(path, "model", "model and preprocessor gene counts differ")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_model(path, kind=MODEL_KIND, state_dict=state, genes=preprocessor.genes_,
               classes=model.hallmarks, hidden=model.hidden, head_hidden=model.head_hidden,
               preprocessor=preprocessor.to_dict(), meta=dict(meta or {}))


def load_hallmark_model(path: str | os.PathLike, device=None) -> tuple[HallmarkMTL, Preprocessor, dict]:
    """Read a file written by :func:`save_hallmark_model` (``torch.load(weights_only=True)``):
    ``(model in eval mode, preprocessor, meta)``."""
    from .experiments import load_model

    obj = load_model(path, kind=MODEL_KIND)
    pre = Preprocessor.from_dict(obj["preprocessor"])
    model = HallmarkMTL(len(obj["genes"]), obj["classes"], hidden=int(obj["hidden"]),
                        head_hidden=int(obj["head_hidden"]))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, "state_dict", f"does not fit the model ({exc})") from exc
    if pre.genes_ != list(obj["genes"]):
        raise InputError(path, "genes", "model genes and preprocessor genes differ")
    model.to(_device(device) if device is not None else torch.device("cpu")).eval()
    return model, pre, dict(obj.get("meta", {}))
