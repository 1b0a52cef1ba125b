"""Whitened cosine: a metric learned on the training types for one-shot typing of unseen types.

Why (issue 12, README "One-shot methods"): on real unseen types the Siamese head, trained on the
distance vector of a few training types, loses to correlation 1-NN — its tower keeps the type
information, the head does not transfer. What does transfer from the training types is *how
samples of one type vary*: culture, proliferation, stromal content and batch move samples of every
type along shared directions. Whitening by the pooled within-type covariance of the training
types shrinks those nuisance directions and leaves type differences, including the differences
of types never seen (a Mahalanobis metric learned on the training types; the same idea as
within-class covariance normalisation in speaker verification and Fisher's discriminant, without
its projection onto the training types' between-type subspace, which does not transfer).

The embedding of a sample ``x`` (one row of genes) is::

    z = ((x - mean(x)) - mu) @ P @ W

``mean(x)``: the sample's own mean over genes (the centring of Pearson correlation); ``mu``: the
mean training sample; ``P``: the first ``n_components`` principal axes of the centred training
samples; ``W = S_w^{-1/2}`` with ``S_w`` the pooled within-type covariance of the training
samples in that basis, shrunk towards ``trace(S_w)/k · I`` by ``shrinkage`` (Ledoit–Wolf-style
shrinkage keeps the inverse stable with few samples per type). Pairs are scored by the cosine of
their embeddings; ``a·cos + b`` with ``(a, b)`` a logistic calibration of same/different-type
pairs gives the same-type probability that the prediction job reports. The calibration is
monotone (``a > 0`` is enforced), so it never changes a task's ranking.

:class:`WhitenedCosineNet` has the Siamese network's scoring interface (``embed``,
``head_logits``, ``head_from_embeddings``, ``out_features``), so the one-shot evaluation and the
prediction job score it with the same code as the Siamese net.

**Transductive option** (``transductive="diffusion"``, config ``metric.transductive``; off by
default, and always reported as transductive beside the plain metric): the unseen types' samples
cluster, and a single support is a noisy summary of its type. Given a *pool* of unlabelled samples
(the experiment's validation and test samples, expression only, never their labels) the metric
compares samples by how they sit in the pool's neighbourhood graph instead of by their own
embeddings alone — the diffusion of manifold ranking (Zhou et al., "Ranking on data manifolds",
NIPS 2003), of diffusion re-ranking in retrieval (Iscen et al., CVPR 2017) and of transductive
few-shot label propagation (Liu et al., TPN, ICLR 2019). With ``u_j`` the pool's whitened embeddings, centred on the pool's mean and
scaled to unit length:

* the pool graph ``A``: each pool sample's ``neighbours`` nearest other pool samples by cosine,
  weight ``max(cos, 0)``, symmetrised ``(A + Aᵀ)/2``; degrees ``d = A·1``;
* the diffusion operator ``F = (I − β·D^{-1/2} A D^{-1/2})^{-1}`` (``β = diffusion_beta`` < 1);
* any sample ``x`` (pool member or not): ``a(x)`` its ``neighbours`` nearest pool samples by cosine
  (itself included when it is in the pool), weights ``max(cos, 0) / sqrt(Σa(x) · d_j)``; its embedding
  is the diffusion profile ``f(x) = a(x) F`` (one coordinate per pool sample).

Pairs are then scored by the cosine of their profiles, calibrated as above, with the same
interface (:class:`DiffusedWhitenedCosineNet`); the profile of a sample needs only the stored pool
(its embeddings, degrees and ``F``), so new samples are embedded one at a time as before.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .errors import InputError


def center_rows(X: np.ndarray) -> np.ndarray:
    """Each sample (row) minus its own mean over genes, in float64."""
    X = np.asarray(X, dtype=np.float64)
    return X - X.mean(axis=1, keepdims=True)


def pooled_within_covariance(Z: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Pooled within-type covariance ``Σ_t Σ_{i∈t} (z_i - m_t)(z_i - m_t)ᵀ / n`` (biased, each
    sample weighted equally; a type with one sample contributes nothing)."""
    Z = np.asarray(Z, dtype=np.float64)
    labels = np.asarray(labels)
    R = np.empty_like(Z)
    for t in np.unique(labels):
        idx = labels == t
        R[idx] = Z[idx] - Z[idx].mean(axis=0)
    return R.T @ R / len(Z)


def inverse_sqrt(S: np.ndarray, shrinkage: float) -> np.ndarray:
    """``S'^{-1/2}`` (symmetric) of ``S' = (1 - shrinkage)·S + shrinkage·trace(S)/k·I``."""
    k = S.shape[0]
    S = (1.0 - shrinkage) * S + shrinkage * np.trace(S) / k * np.eye(k)
    ev, E = np.linalg.eigh((S + S.T) / 2)
    if ev.min() <= 0:
        raise InputError(None, "metric.shrinkage",
                         f"within-type covariance is singular (smallest eigenvalue {ev.min():.3g}); "
                         "use a shrinkage > 0 or fewer components")
    return (E / np.sqrt(ev)) @ E.T


def fit_logistic_1d(x: np.ndarray, t: np.ndarray, *, balanced: bool = True, iterations: int = 100,
                    ridge: float = 1e-6) -> tuple[float, float]:
    """Maximum-likelihood ``(a, b)`` of ``P(t = 1 | x) = σ(a·x + b)`` by Newton's method
    (class-balanced weights by default: same-type pairs are rare)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if t.min() == t.max():
        raise InputError(None, "pairs", "calibration needs both same-type and different-type pairs")
    w = np.ones_like(t)
    if balanced:
        w = np.where(t == 1, 0.5 / t.mean(), 0.5 / (1 - t.mean()))
    A = np.stack([x, np.ones_like(x)], axis=1)
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(A @ beta)))
        g = A.T @ (w * (p - t)) + ridge * beta
        H = (A * (w * p * (1 - p))[:, None]).T @ A + ridge * np.eye(2)
        step = np.linalg.solve(H, g)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def pair_cosines(E: np.ndarray, labels: Sequence[str], groups: Sequence[str] | None = None,
                 max_pairs: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and same-type indicators of sample pairs (``i < j``; pairs within one group —
    patient — left out; at most ``max_pairs``, a seeded random subset)."""
    E = np.asarray(E, dtype=np.float64)
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(E), k=1)
    if groups is not None:
        groups = np.asarray(groups)
        keep = groups[i] != groups[j]
        i, j = i[keep], j[keep]
    if len(i) > max_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(len(i), max_pairs, replace=False))
        i, j = i[pick], j[pick]
    return (En[i] * En[j]).sum(axis=1), (labels[i] == labels[j]).astype(np.float64)


class WhitenedCosineNet(nn.Module):
    """The fitted metric as a module with the Siamese scoring interface (module docstring)."""

    def __init__(self, n_genes: int, n_components: int):
        super().__init__()
        self.n_genes = int(n_genes)
        self.register_buffer("mu", torch.zeros(self.n_genes))
        self.register_buffer("transform", torch.zeros(self.n_genes, int(n_components)))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("bias", torch.zeros(()))

    @property
    def out_features(self) -> int:
        return int(self.transform.shape[1])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Whitened embeddings ``[B, n_components]`` (float32 in, float32 out)."""
        x = x.to(self.transform.dtype)
        x = x - x.mean(dim=1, keepdim=True)
        return (x - self.mu) @ self.transform

    def head_logits(self, ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
        """``scale · cos(ea, eb) + bias`` ``[B]`` (a zero vector has cosine 0 with everything)."""
        na = torch.linalg.vector_norm(ea, dim=-1).clamp_min(1e-12)
        nb = torch.linalg.vector_norm(eb, dim=-1).clamp_min(1e-12)
        cos = (ea * eb).sum(-1) / (na * nb)
        return self.scale * cos + self.bias

    def head_from_embeddings(self, ea: torch.Tensor, eb: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        z = self.head_logits(ea, eb)
        return z if logits else torch.sigmoid(z)

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """P(same type) ``[B]``."""
        return self.head_from_embeddings(self.embed(xa), self.embed(xb))


TRANSDUCTIVE = ("none", "diffusion")


def knn_affinities(C: np.ndarray, n_neighbours: int) -> np.ndarray:
    """Row ``i``: ``max(C[i, j], 0)`` for the ``n_neighbours`` largest ``C[i, j]`` of the row, 0 elsewhere
    (exclude a sample from its own neighbours by setting its own entry to ``-inf``)."""
    C = np.asarray(C, dtype=np.float64)
    idx = np.argsort(-C, axis=1, kind="stable")[:, :n_neighbours]
    A = np.zeros_like(C)
    np.put_along_axis(A, idx, np.take_along_axis(C, idx, axis=1).clip(min=0.0), axis=1)
    return A


def diffusion_pool(U: np.ndarray, n_neighbours: int,
                   beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pool of the transductive option (module docstring) from the pool's embeddings ``U [m, k]``:
    ``(center [k], unit-length centred embeddings [m, k], degrees [m], F [m, m])``."""
    U = np.asarray(U, dtype=np.float64)
    center = U.mean(axis=0)
    Un = U - center
    Un /= np.maximum(np.linalg.norm(Un, axis=1, keepdims=True), 1e-12)
    C = Un @ Un.T
    np.fill_diagonal(C, -np.inf)
    A = knn_affinities(C, n_neighbours)
    A = (A + A.T) / 2
    d = A.sum(axis=1)
    if d.min() <= 0:
        raise InputError(None, "metric.diffusion", f"{int((d <= 0).sum())} pool sample(s) have no neighbour with a "
                         "positive cosine: use more neighbours")
    An = A / np.sqrt(np.outer(d, d))
    F = np.linalg.inv(np.eye(len(U)) - beta * An)
    return center, Un, d, F


class DiffusedWhitenedCosineNet(WhitenedCosineNet):
    """The transductive option: whitened embeddings turned into diffusion profiles over a stored
    pool of unlabelled samples (module docstring); scored like :class:`WhitenedCosineNet`."""

    def __init__(self, n_genes: int, n_components: int, n_pool: int, n_neighbours: int):
        super().__init__(n_genes, n_components)
        k, m = int(n_components), int(n_pool)
        self.register_buffer("pool_center", torch.zeros(k))
        self.register_buffer("pool", torch.zeros(m, k))
        self.register_buffer("pool_degree", torch.ones(m))
        self.register_buffer("profile", torch.zeros(m, m))
        self.register_buffer("n_neighbours", torch.tensor(int(n_neighbours), dtype=torch.long))

    @property
    def out_features(self) -> int:
        return int(self.profile.shape[1])

    def whitened(self, x: torch.Tensor) -> torch.Tensor:
        """The plain whitened embeddings ``[B, n_components]``."""
        return super().embed(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Diffusion profiles ``[B, n_pool]`` (float32; a sample with no positive cosine to the pool: 0)."""
        e = self.whitened(x) - self.pool_center
        e = e / torch.linalg.vector_norm(e, dim=1, keepdim=True).clamp_min(1e-12)
        c = e @ self.pool.T
        k = min(int(self.n_neighbours), c.shape[1])
        val, idx = torch.topk(c, k, dim=1)
        a = torch.zeros_like(c).scatter_(1, idx, val.clamp_min(0.0))
        dx = a.sum(dim=1, keepdim=True)
        a = a / torch.sqrt(dx * self.pool_degree).clamp_min(1e-12)
        return a @ self.profile


def fit_whitened_cosine(X: np.ndarray, labels: Sequence[str], *, n_components: int = 450,
                        shrinkage: float = 0.3, X_cal: np.ndarray | None = None,
                        labels_cal: Sequence[str] | None = None, groups_cal: Sequence[str] | None = None,
                        transductive: str = "none", X_pool: np.ndarray | None = None,
                        diffusion_neighbours: int = 10, diffusion_beta: float = 0.9,
                        seed: int = 0, log: Callable[[str], None] | None = None) -> tuple[WhitenedCosineNet, dict]:
    """Fit the metric on training samples ``X [n, G]`` of types ``labels``; calibrate the
    same-type probability on ``X_cal`` / ``labels_cal`` (e.g. the validation samples of the unseen
    types; default: the training samples themselves). With ``transductive="diffusion"`` the
    unlabelled samples ``X_pool`` (expression only) become the diffusion pool (module docstring)
    and the module is a :class:`DiffusedWhitenedCosineNet`. Returns the module and a summary dict."""
    X = np.asarray(X)
    labels = np.asarray(labels).astype(str)
    n, G = X.shape
    types, counts = np.unique(labels, return_counts=True)
    if len(types) < 2:
        raise InputError(None, "labels", f"the metric needs at least 2 training types, got {len(types)}")
    if not 0.0 <= shrinkage <= 1.0:
        raise InputError(None, "metric.shrinkage", f"must be in [0, 1], got {shrinkage}")
    if n_components < 1:
        raise InputError(None, "metric.n_components", f"must be >= 1, got {n_components}")
    if transductive not in TRANSDUCTIVE:
        raise InputError(None, "metric.transductive", f"must be one of {list(TRANSDUCTIVE)}, got {transductive!r}")
    if transductive == "diffusion":
        if not 0.0 <= diffusion_beta < 1.0:
            raise InputError(None, "metric.diffusion.beta", f"must be in [0, 1), got {diffusion_beta}")
        if diffusion_neighbours < 1:
            raise InputError(None, "metric.diffusion.neighbours", f"must be >= 1, got {diffusion_neighbours}")
        if X_pool is None or len(X_pool) <= diffusion_neighbours:
            raise InputError(None, "metric.transductive", "diffusion needs a pool of more than "
                             f"{diffusion_neighbours} unlabelled samples, got {0 if X_pool is None else len(X_pool)}")
    Xc = center_rows(X)
    mu = Xc.mean(axis=0)
    _, sv, vt = np.linalg.svd(Xc - mu, full_matrices=False)
    rank = int((sv > sv[0] * 1e-10).sum()) if len(sv) else 0
    k = min(int(n_components), rank)
    if log and k < n_components:
        log(f"metric: {n_components} components requested, {k} available ({n} training samples, rank {rank})")
    P = vt[:k].T
    Z = (Xc - mu) @ P
    Sw = pooled_within_covariance(Z, labels)
    W = inverse_sqrt(Sw, shrinkage)
    T = P @ W
    pool_note = {}
    if transductive == "diffusion":
        Xp = center_rows(np.asarray(X_pool))
        center, Un, d, F = diffusion_pool((Xp - mu) @ T, int(diffusion_neighbours), float(diffusion_beta))
        net = DiffusedWhitenedCosineNet(G, k, len(Xp), int(diffusion_neighbours))
        for name, value in (("pool_center", center), ("pool", Un), ("pool_degree", d), ("profile", F)):
            getattr(net, name).copy_(torch.as_tensor(value, dtype=torch.float32))
        pool_note = dict(n_pool=len(Xp), diffusion_neighbours=int(diffusion_neighbours),
                         diffusion_beta=float(diffusion_beta))
    else:
        net = WhitenedCosineNet(G, k)
    net.mu.copy_(torch.as_tensor(mu, dtype=torch.float32))
    net.transform.copy_(torch.as_tensor(T, dtype=torch.float32))
    if X_cal is None:
        X_cal, labels_cal, groups_cal, where = X, labels, None, "training samples"
    else:
        where = "calibration samples"
    with torch.no_grad():
        E = net.embed(torch.as_tensor(np.asarray(X_cal), dtype=torch.float32)).double().numpy()
    cos, same = pair_cosines(E, np.asarray(labels_cal).astype(str), groups_cal, seed=seed)
    a, b = fit_logistic_1d(cos, same)
    if a <= 0:
        raise InputError(None, "metric", f"calibration on the {where} gives a non-positive slope ({a:.3g}): "
                         "same-type pairs are not more similar than different-type pairs")
    net.scale.fill_(a)
    net.bias.fill_(b)
    summary = dict(n_training_samples=n, n_training_types=len(types), n_genes=G, n_components=k,
                   shrinkage=float(shrinkage), transductive=transductive, **pool_note, calibration=where,
                   n_calibration_pairs=int(len(cos)),
                   n_same_type_pairs=int(same.sum()), scale=a, bias=b,
                   explained_variance=float((sv[:k] ** 2).sum() / max((sv ** 2).sum(), 1e-300)))
    if log:
        log(f"metric: {n} samples of {len(types)} types, {G} genes → {k} components "
            f"({100 * summary['explained_variance']:.1f} % of the variance), shrinkage {shrinkage}"
            + (f", transductive diffusion over {len(X_pool)} unlabelled pool samples ({diffusion_neighbours} "
               f"neighbours, beta {diffusion_beta})" if transductive == "diffusion" else "") + "; "
            f"calibration on {len(cos)} {where} pairs: logit = {a:.3f}·cos + {b:.3f}")
    return net.eval(), summary


def load_state(state: dict, n_genes: int) -> WhitenedCosineNet:
    """A :class:`WhitenedCosineNet` (or, with a diffusion pool in the dict,
    :class:`DiffusedWhitenedCosineNet`) from its state dict (shapes read from the dict)."""
    if "profile" in state:
        net = DiffusedWhitenedCosineNet(n_genes, int(state["transform"].shape[1]), int(state["profile"].shape[0]),
                                        int(state["n_neighbours"]))
    else:
        net = WhitenedCosineNet(n_genes, int(state["transform"].shape[1]))
    net.load_state_dict(state)
    return net.eval()
