"""Marker extraction (SPEC §2.4): guided backpropagation, same-type pairs, gene scores, forward
selection, Gaussian-NB primary/metastatic, enrichment, overlap and the marker figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.special import comb
from scipy.stats import hypergeom, mannwhitneyu
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from statsmodels.stats.multitest import multipletests
from torch import nn

from oncoshot.errors import InputError
from oncoshot.marker_plots import (forward_selection_plot, gnb_plot, heatmap_matrix, marker_heatmap, tsne_perplexity,
                                   tsne_plot)
from oncoshot.markers import (_triu_unrank, best_k, bh_adjust, enrichment, forward_selection, gene_scores,
                              guided_relu, guided_saliency, k_grid, marker_overlap, primary_vs_metastatic,
                              same_type_pairs)
from oncoshot.models import SiameseNet
from oncoshot.oneshot import accuracy_with_wilson, correct, make_tasks, nn_euclidean
from oncoshot.pairs import PairSampler
from oncoshot.plots import save_figure

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------
# guided backpropagation on hand-computed networks
# ------------------------------------------------------------------------------------------------
class TwoLayer(nn.Module):
    """y = w3 · relu(W2 relu(W1 x)) — the first ReLU functional, the second an nn.ReLU module."""

    def __init__(self, W1, W2, w3):
        super().__init__()
        self.l1 = nn.Linear(W1.shape[1], W1.shape[0], bias=False)
        self.l2 = nn.Linear(W2.shape[1], W2.shape[0], bias=False)
        self.l3 = nn.Linear(len(w3), 1, bias=False)
        self.act2 = nn.ReLU()
        self.double()
        with torch.no_grad():
            self.l1.weight.copy_(torch.as_tensor(W1, dtype=torch.float64))
            self.l2.weight.copy_(torch.as_tensor(W2, dtype=torch.float64))
            self.l3.weight.copy_(torch.as_tensor(w3, dtype=torch.float64).reshape(1, -1))

    def forward(self, x):
        return self.l3(self.act2(self.l2(F.relu(self.l1(x))))).squeeze(-1)


def _grad(model, x, guided: bool):
    x = torch.as_tensor(x, dtype=torch.float64).clone().requires_grad_(True)
    if guided:
        with guided_relu():
            y = model(x)
    else:
        y = model(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


def test_guided_backprop_hand_computed():
    # x = (1, 2); W1 x = (-1, 4, 1) → a1 = (0, 4, 1)
    # W2 a1 = (0 - 4 + 2, 0 + 4 - 1) = (-2, 3) → a2 = (0, 3); y = 2·0 + 3·3 = 9
    # backward: dy/da2 = (2, 3); through ReLU2 (input (-2, 3)): guided and plain both (0, 3)
    #   dy/da1 = W2ᵀ (0, 3) = (-3, 3, -3)
    #   ReLU1 (input (-1, 4, 1)): plain (0, 3, -3); guided keeps only positive grads: (0, 3, 0)
    #   dy/dx plain  = W1ᵀ (0, 3, -3) = (2·3 + (-1)(-3), 1·3 + 1·(-3)) = (9, 0)
    #   dy/dx guided = W1ᵀ (0, 3, 0)  = (6, 3)
    W1 = np.array([[1.0, -1.0], [2.0, 1.0], [-1.0, 1.0]])
    W2 = np.array([[1.0, -1.0, 2.0], [-1.0, 1.0, -1.0]])
    w3 = np.array([2.0, 3.0])
    net = TwoLayer(W1, W2, w3)
    x = np.array([[1.0, 2.0]])
    y_plain, g_plain = _grad(net, x, guided=False)
    y_guided, g_guided = _grad(net, x, guided=True)
    assert y_plain.item() == 9.0 and y_guided.item() == 9.0  # forward values unchanged
    np.testing.assert_array_equal(g_plain.numpy(), [[9.0, 0.0]])
    np.testing.assert_array_equal(g_guided.numpy(), [[6.0, 3.0]])
    # nothing patched globally: plain backprop after the context is plain again
    np.testing.assert_array_equal(_grad(net, x, guided=False)[1].numpy(), [[9.0, 0.0]])


def _numpy_guided(W1, W2, w3, x, guided):
    h1 = W1 @ x
    h2 = W2 @ np.maximum(h1, 0)
    rect = (lambda g, h: np.maximum(g, 0) * (h > 0)) if guided else (lambda g, h: g * (h > 0))
    g_a1 = W2.T @ rect(w3, h2)
    return W1.T @ rect(g_a1, h1)


def test_guided_backprop_matches_numpy_reference_random_nets():
    rng = np.random.default_rng(1)
    differ = 0
    for _ in range(5):
        W1, W2, w3 = rng.normal(size=(12, 7)), rng.normal(size=(9, 12)), rng.normal(size=9)
        net = TwoLayer(W1, W2, w3)
        X = rng.normal(size=(6, 7))
        _, g = _grad(net, X, guided=True)
        _, gp = _grad(net, X, guided=False)
        for i in range(len(X)):
            np.testing.assert_allclose(g[i].numpy(), _numpy_guided(W1, W2, w3, X[i], True), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(gp[i].numpy(), _numpy_guided(W1, W2, w3, X[i], False), rtol=1e-12, atol=1e-12)
        differ += int(not np.allclose(g.numpy(), gp.numpy()))
    assert differ == 5


def test_guided_relu_catches_every_relu_spelling():
    x = torch.tensor([-1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    up = torch.tensor([5.0, -4.0, 6.0], dtype=torch.float64)  # upstream gradient
    for f in (F.relu, torch.relu, lambda t: t.relu(), nn.ReLU(), nn.ReLU(inplace=True),
              lambda t: F.relu(t * 1.0, inplace=True), lambda t: torch.relu_(t * 1.0)):
        with guided_relu():
            y = f(x)
        np.testing.assert_array_equal(y.detach().numpy(), [0.0, 2.0, 3.0])
        (g,) = torch.autograd.grad((y * up).sum(), x)
        np.testing.assert_array_equal(g.numpy(), [0.0, 0.0, 6.0])  # plain would be (0, -4, 6)


# ------------------------------------------------------------------------------------------------
# guided saliency of Siamese pairs
# ------------------------------------------------------------------------------------------------
class ToySiamese(nn.Module):
    """Tower e = relu(W1 x) (functional); head: Linear(d) → nn.ReLU → Dropout → Linear; d = (ea − eb)²."""

    def __init__(self, W1, W2, b2, w3, b3):
        super().__init__()
        self.W1 = nn.Parameter(torch.as_tensor(W1, dtype=torch.float64))
        self.head = nn.Sequential(nn.Linear(W2.shape[1], W2.shape[0]), nn.ReLU(), nn.Dropout(0.5), nn.Linear(len(w3), 1))
        self.double()
        with torch.no_grad():
            self.head[0].weight.copy_(torch.as_tensor(W2))
            self.head[0].bias.copy_(torch.as_tensor(b2))
            self.head[3].weight.copy_(torch.as_tensor(w3).reshape(1, -1))
            self.head[3].bias.fill_(b3)

    def logits(self, xa, xb):
        xa, xb = xa.double(), xb.double()
        ea, eb = F.relu(xa @ self.W1.T), F.relu(xb @ self.W1.T)
        return self.head((ea - eb) ** 2).squeeze(-1)


def _numpy_pair_guided(W1, W2, b2, w3, b3, xa, xb, output):
    ha, hb = W1 @ xa, W1 @ xb
    ea, eb = np.maximum(ha, 0), np.maximum(hb, 0)
    d = (ea - eb) ** 2
    h = W2 @ d + b2
    z = w3 @ np.maximum(h, 0) + b3
    dz = 1.0
    if output == "prob":
        p = 1 / (1 + np.exp(-z))
        dz = p * (1 - p)
    g_h = np.maximum(dz * w3, 0) * (h > 0)  # guided ReLU of the head
    g_d = W2.T @ g_h
    g_ea, g_eb = 2 * (ea - eb) * g_d, -2 * (ea - eb) * g_d
    w0 = W1.T @ (np.maximum(g_ea, 0) * (ha > 0))  # guided ReLU of the tower
    w1 = W1.T @ (np.maximum(g_eb, 0) * (hb > 0))
    return w0, w1


@pytest.mark.parametrize("output", ["prob", "logit"])
def test_guided_saliency_matches_numpy_toy_siamese(output):
    rng = np.random.default_rng(2)
    W1, W2, b2, w3 = rng.normal(size=(6, 5)), rng.normal(size=(4, 6)), rng.normal(size=4) * 0.1, rng.normal(size=4)
    model = ToySiamese(W1, W2, b2, w3, 0.3)
    model.train()  # guided_saliency must switch dropout off and restore the flag
    xa, xb = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    w0, w1 = guided_saliency(model, xa, xb, batch_size=3, output=output)
    assert model.training
    assert w0.shape == w1.shape == (7, 5)
    for i in range(7):
        r0, r1 = _numpy_pair_guided(W1, W2, b2, w3, 0.3, xa[i], xb[i], output)
        np.testing.assert_allclose(w0[i], r0, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w1[i], r1, rtol=1e-5, atol=1e-6)


def test_guided_saliency_real_siamese():
    torch.manual_seed(0)
    G = 160
    model = SiameseNet(G)
    rng = np.random.default_rng(3)
    xa = rng.normal(1.0, 1.0, size=(10, G)).astype(np.float32)
    xb = (xa + rng.normal(0, 0.5, size=(10, G))).astype(np.float32)
    w0, w1 = guided_saliency(model, xa, xb, batch_size=4)
    p0, p1 = guided_saliency(model, xa, xb, batch_size=10, guided=False)
    assert w0.shape == w1.shape == (10, G) and w0.dtype == np.float32
    assert np.isfinite(w0).all() and np.isfinite(w1).all()
    assert np.abs(w0).sum() > 0 and np.abs(w1).sum() > 0
    assert not np.allclose(w0, p0) and not np.allclose(w1, p1)
    # plain gradients agree with autograd on the untouched model
    ta = torch.as_tensor(xa).requires_grad_(True)
    tb = torch.as_tensor(xb).requires_grad_(True)
    model.eval()
    ga, gb = torch.autograd.grad(model(ta, tb).sum(), (ta, tb))
    np.testing.assert_allclose(p0, ga.numpy(), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(p1, gb.numpy(), rtol=1e-5, atol=1e-9)
    # d sigmoid(z)/dx = p(1 - p) dz/dx, pair by pair
    l0, _ = guided_saliency(model, xa, xb, output="logit")
    with torch.no_grad():
        p = model(torch.as_tensor(xa), torch.as_tensor(xb)).numpy().astype(np.float64)
    np.testing.assert_allclose(w0, l0 * (p * (1 - p))[:, None], rtol=1e-4, atol=1e-10)
    # the pair is symmetric: swapping the two inputs swaps w0 and w1
    s0, s1 = guided_saliency(model, xb, xa)
    np.testing.assert_allclose(s0, w1, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(s1, w0, rtol=1e-5, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# same-type pairs
# ------------------------------------------------------------------------------------------------
def test_triu_unrank_exact():
    for n in range(2, 40):
        i, j = _triu_unrank(np.arange(n * (n - 1) // 2), n)
        ti, tj = np.triu_indices(n, 1)
        np.testing.assert_array_equal(i, ti)
        np.testing.assert_array_equal(j, tj)
    n = 200_003  # large n: exact at the boundaries of the rows
    total = n * (n - 1) // 2
    k = np.array([0, 1, n - 2, n - 1, total - 3, total - 2, total - 1])
    i, j = _triu_unrank(k, n)
    np.testing.assert_array_equal(i, [0, 0, 0, 1, n - 3, n - 3, n - 2])
    np.testing.assert_array_equal(j, [1, 2, n - 1, 2, n - 2, n - 1, n - 1])


def test_same_type_pairs():
    sizes = {"a": 2, "b": 3, "c": 1, "d": 120}
    labels = np.random.default_rng(0).permutation(np.concatenate([[k] * n for k, n in sizes.items()]))
    ia, ib = same_type_pairs(labels, max_pairs_per_type=50, seed=1)
    assert ia.dtype == ib.dtype == np.int64
    assert (labels[ia] == labels[ib]).all() and (ia < ib).all()
    assert len(set(zip(ia.tolist(), ib.tolist()))) == len(ia)  # no duplicate pair
    counts = pd.Series(labels[ia]).value_counts().to_dict()
    assert counts == {"a": 1, "b": 3, "d": 50}  # all pairs when fewer than the cap; "c" has none
    for t in ("a", "b"):  # all pairs of the small types
        members = np.flatnonzero(labels == t)
        want = {(int(members[x]), int(members[y])) for x, y in zip(*np.triu_indices(len(members), 1))}
        assert {(x, y) for x, y in zip(ia.tolist(), ib.tolist()) if labels[x] == t} == want
    ja, jb = same_type_pairs(labels, max_pairs_per_type=50, seed=1)
    np.testing.assert_array_equal(ia, ja)
    np.testing.assert_array_equal(ib, jb)
    ka, _ = same_type_pairs(labels, max_pairs_per_type=50, seed=2)
    assert not np.array_equal(ia, ka)
    # the sample is spread over the type (not the first pairs of the triangle)
    d = np.flatnonzero(labels == "d")
    used = np.unique(np.concatenate([ia[labels[ia] == "d"], ib[labels[ib] == "d"]]))
    assert len(used) > 40 and used.max() > d[100]
    # default cap 3000
    big = np.repeat(["x", "y"], [100, 10])
    xa, _ = same_type_pairs(big, seed=0)
    assert pd.Series(big[xa]).value_counts().to_dict() == {"x": 3000, "y": 45}
    with pytest.raises(InputError):
        same_type_pairs(labels, max_pairs_per_type=0)


# ------------------------------------------------------------------------------------------------
# gene scores
# ------------------------------------------------------------------------------------------------
def test_gene_scores_is_mean_of_pair_average():
    torch.manual_seed(1)
    G = 155
    model = SiameseNet(G)
    rng = np.random.default_rng(4)
    y = np.repeat(["p", "q", "r"], [5, 6, 2])
    X = rng.normal(2.0, 1.0, size=(len(y), G)).astype(np.float32)
    genes = [f"g{i}" for i in range(G)]
    df = gene_scores(model, pd.DataFrame(X, columns=genes), y, max_pairs_per_type=7, seed=3, batch_size=4)
    ia, ib = same_type_pairs(y, 7, 3)
    w0, w1 = guided_saliency(model, X[ia], X[ib], batch_size=64)
    want = ((w0.astype(np.float64) + w1) / 2).mean(0)
    want_abs = ((np.abs(w0.astype(np.float64)) + np.abs(w1)) / 2).mean(0)
    got = df.set_index("gene").loc[genes]
    np.testing.assert_allclose(got["score"].to_numpy(), want, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(got["mean_abs"].to_numpy(), want_abs, rtol=1e-5, atol=1e-12)
    assert list(df.columns) == ["gene", "score", "mean_abs", "rank"]
    assert (np.diff(df["score"].to_numpy()) <= 0).all()
    np.testing.assert_array_equal(df["rank"], np.arange(1, G + 1))
    assert (df["mean_abs"] >= df["score"].abs() - 1e-12).all()
    assert df.attrs["n_pairs"] == len(ia) == 7 + 7 + 1
    assert df.attrs["pairs_per_type"] == {"p": 7, "q": 7, "r": 1}
    by_abs = gene_scores(model, X, y, max_pairs_per_type=7, seed=3, rank_by="mean_abs")
    assert (np.diff(by_abs["mean_abs"].to_numpy()) <= 0).all()
    assert np.issubdtype(by_abs["gene"].dtype, np.integer)  # positions when X has no gene names
    with pytest.raises(InputError):
        gene_scores(model, X, y[:-1])
    # saliency="plain": the same means of ordinary (unguided) gradients
    plain = gene_scores(model, X, y, max_pairs_per_type=7, seed=3, genes=genes, saliency="plain")
    p0, p1 = guided_saliency(model, X[ia], X[ib], batch_size=64, guided=False)
    np.testing.assert_allclose(plain.set_index("gene").loc[genes, "score"].to_numpy(),
                               ((p0.astype(np.float64) + p1) / 2).mean(0), rtol=1e-5, atol=1e-12)
    assert plain.attrs["saliency"] == "plain" and df.attrs["saliency"] == "guided"
    assert not np.allclose(p0, w0)  # guidance changes the gradients of this network
    with pytest.raises(InputError, match="saliency"):
        gene_scores(model, X, y, saliency="smoothgrad")


def test_planted_markers_are_recovered():
    """A briefly trained Siamese on 8 types where only 20 of 200 genes carry the type: planted
    markers are enriched well above chance in the top ranks (chance: 2 of the top 20)."""
    rng = np.random.default_rng(0)
    G, n_types, per, P = 200, 8, 30, 20
    planted = rng.choice(G, P, replace=False)
    y = np.repeat(np.arange(n_types), per)
    means = np.zeros((n_types, G))
    means[:, planted] = rng.normal(0, 2.0, (n_types, P))
    X = (means[y] + rng.normal(0, 1, (len(y), G))).astype(np.float32)
    torch.manual_seed(0)
    model = SiameseNet(G)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = PairSampler(torch.as_tensor(X), y, seed=0)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(100):
        xa, xb, t = sampler.sample_tensors(64)
        loss = loss_fn(model.logits(xa, xb), t.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2
    df = gene_scores(model, X, y, max_pairs_per_type=100, seed=0)
    genes = df["gene"].to_numpy()
    is_planted = np.isin(genes, planted)
    top_abs = genes[np.argsort(-df["mean_abs"].to_numpy(), kind="stable")[:P]]
    # mean |w|: top 20 hold >= 7 planted markers (hypergeometric P(X >= 7) ≈ 1e-3 by chance)
    assert np.isin(top_abs, planted).sum() >= 7
    auc = lambda v: mannwhitneyu(v[is_planted], v[~is_planted]).statistic / (P * (G - P))  # noqa: E731
    assert auc(df["mean_abs"].to_numpy()) > 0.8
    # signed SPEC score: markers sit at both ends (signs follow the conv weights), so weaker, but
    # the top 40 still hold about twice the chance count (4)
    assert np.isin(genes[:40], planted).sum() >= 7
    assert auc(np.abs(df["score"].to_numpy())) > 0.6


# ------------------------------------------------------------------------------------------------
# forward selection
# ------------------------------------------------------------------------------------------------
def _typed_data(n_types=8, per=12, G=57, seed=5, signal=0.8):
    rng = np.random.default_rng(seed)
    y = np.repeat([f"T{i}" for i in range(n_types)], per)
    centres = rng.normal(0, signal, size=(n_types, G))
    X = centres[np.repeat(np.arange(n_types), per)] + rng.normal(0, 1, size=(len(y), G))
    return X, y


def test_k_grid():
    np.testing.assert_array_equal(k_grid(57), [10, 20, 30, 40, 50, 57])
    np.testing.assert_array_equal(k_grid(60), [10, 20, 30, 40, 50, 60])
    np.testing.assert_array_equal(k_grid(1000, 10, 25), [10, 20, 25])
    np.testing.assert_array_equal(k_grid(7), [7])
    np.testing.assert_array_equal(k_grid(100, 10, 500), np.arange(10, 101, 10))


def test_forward_selection_same_tasks_and_grid():
    X, y = _typed_data()
    genes = [f"g{i}" for i in range(X.shape[1])]
    ranking = list(np.random.default_rng(6).permutation(genes))
    table = forward_selection(pd.DataFrame(X, columns=genes), y, ranking, step=10, n_way=6, n_tasks=500, seed=7)
    np.testing.assert_array_equal(table["k"], [10, 20, 30, 40, 50, 57])
    tasks = make_tasks(y, 6, 500, 7)
    pos = [genes.index(g) for g in ranking]
    for k in (10, 30, 57):
        acc, lo, hi = accuracy_with_wilson(correct(nn_euclidean(X[:, pos[:k]], tasks), tasks))
        row = table[table["k"] == k].iloc[0]
        assert row["accuracy"] == acc and row["ci_low"] == lo and row["ci_high"] == hi
    all_acc = accuracy_with_wilson(correct(nn_euclidean(X, tasks), tasks))[0]
    assert (table["all_genes_accuracy"] == all_acc).all() and table.attrs["all_genes_accuracy"] == all_acc
    assert table.loc[table["k"] == 57, "accuracy"].item() == all_acc  # top-57 of 57 = all genes
    assert (table["n_tasks"] == 500).all()
    # positions, a gene_scores-like table and max_k
    t2 = forward_selection(X, y, pos, step=10, max_k=25, n_way=6, n_tasks=500, seed=7)
    np.testing.assert_array_equal(t2["k"], [10, 20, 25])
    np.testing.assert_array_equal(t2["accuracy"].to_numpy()[:2], table["accuracy"].to_numpy()[:2])
    t3 = forward_selection(pd.DataFrame(X, columns=genes), y, pd.DataFrame({"gene": ranking}), n_tasks=500, seed=7)
    pd.testing.assert_frame_equal(t3, table)
    with pytest.raises(InputError):
        forward_selection(pd.DataFrame(X, columns=genes), y, ["nope"] + ranking[1:], n_tasks=10)


def test_forward_selection_tasks_keep_patients_apart():
    """With ``groups``, forward selection scores the patient-disjoint tasks of ``make_tasks``: twins
    (a near-copy of a sample under another id) inflate the accuracy without them, not with them."""
    X, y = _typed_data()
    rng = np.random.default_rng(3)
    Xt = np.vstack([X, X + rng.normal(0, 0.01, X.shape)])  # every sample has a near-identical twin
    yt = np.concatenate([y, y])
    patients = np.concatenate([np.arange(len(y)), np.arange(len(y))]).astype(str)
    with_groups = forward_selection(Xt, yt, np.arange(X.shape[1]), step=10, n_way=6, n_tasks=500, seed=7,
                                    groups=patients)
    tasks = make_tasks(yt, 6, 500, 7, groups=patients)
    assert np.all(patients[tasks.support] != patients[tasks.query][:, None])
    acc = accuracy_with_wilson(correct(nn_euclidean(Xt[:, :10], tasks), tasks))[0]
    assert with_groups.loc[with_groups["k"] == 10, "accuracy"].item() == acc
    leaky = forward_selection(Xt, yt, np.arange(X.shape[1]), step=10, n_way=6, n_tasks=500, seed=7)
    assert leaky["all_genes_accuracy"].iloc[0] > with_groups["all_genes_accuracy"].iloc[0]


def test_forward_selection_informative_genes_first():
    rng = np.random.default_rng(8)
    n_types, per = 8, 10
    y = np.repeat(np.arange(n_types), per)
    X = rng.normal(size=(len(y), 80))
    X[:, :10] += rng.normal(0, 3, size=(n_types, 10))[y]  # the first 10 genes carry the type
    table = forward_selection(X, y, np.arange(80), n_tasks=1000, seed=0)
    assert best_k(table) == 10
    assert table["accuracy"].iloc[0] > table["all_genes_accuracy"].iloc[0]


def test_best_k_ties_smallest():
    t = pd.DataFrame({"k": [10, 20, 30, 40], "accuracy": [0.5, 0.8, 0.8, 0.7]})
    assert best_k(t) == 20
    assert best_k(t.iloc[::-1]) == 20
    with pytest.raises(InputError):
        best_k(t.iloc[:0])


# ------------------------------------------------------------------------------------------------
# primary vs metastatic (GNB)
# ------------------------------------------------------------------------------------------------
def test_gnb_accuracy_is_held_out():
    rng = np.random.default_rng(9)
    n, G = 40, 100
    X = rng.normal(size=(n, G))
    met = rng.permutation(np.repeat([False, True], n // 2))  # labels unrelated to X
    leak = np.mean(GaussianNB().fit(X, met).predict(X) == met)
    assert leak == 1.0  # scoring on the training samples would look perfect
    table = primary_vs_metastatic(X, met, np.arange(G), ks=[10, 50, 100], n_folds=5, seed=0)
    assert table["accuracy"].max() < 0.75  # held out: chance
    # exactly the stratified-fold computation
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, met))
    for k in (10, 100):
        accs = [np.mean(GaussianNB().fit(X[tr][:, :k], met[tr]).predict(X[te][:, :k]) == met[te]) for tr, te in folds]
        row = table[table["k"] == k].iloc[0]
        assert row["accuracy"] == pytest.approx(np.mean(accs))
        assert row["sd"] == pytest.approx(np.std(accs, ddof=1))
    assert (table["majority_baseline"] == 0.5).all() and (table["n_folds"] == 5).all()


def test_gnb_finds_signal_and_default_ks():
    rng = np.random.default_rng(10)
    n = 60
    met = np.repeat([False, True], [36, 24])
    X = pd.DataFrame(rng.normal(size=(n, 100)), columns=[f"g{i}" for i in range(100)])
    X.iloc[:, 5] += 3.0 * met  # g5 separates primary from metastatic
    ranking = ["g5"] + [f"g{i}" for i in range(100) if i != 5]
    table = primary_vs_metastatic(X, met, ranking, seed=1)
    np.testing.assert_array_equal(table["k"], np.arange(10, 101, 10))
    assert table["accuracy"].iloc[0] > 0.85
    assert best_k(table) == 10 or table["accuracy"].max() - table["accuracy"].iloc[0] < 0.05
    with pytest.raises(InputError):
        primary_vs_metastatic(X, np.r_[True, True, np.zeros(n - 2, bool)], ranking, n_folds=5)


# ------------------------------------------------------------------------------------------------
# enrichment and overlap
# ------------------------------------------------------------------------------------------------
def test_enrichment_worked_example():
    universe = [f"G{i}" for i in range(100)]
    markers = [f"G{i}" for i in range(10)]  # n = 10
    sets = {
        "A": [f"G{i}" for i in range(5)] + [f"G{i}" for i in range(50, 65)] + ["NOT_IN_UNIVERSE"],  # K=20, x=5
        "B": [f"G{i}" for i in range(20, 40)],  # K=20, x=0
        "C": ["G9", "G99"],  # K=2, x=1
        "D": ["X1", "X2"],  # K=0
    }
    df = enrichment(markers, universe, sets).set_index("gene_set")
    a = df.loc["A"]
    assert (a["N"], a["n"], a["set_size"], a["overlap"]) == (100, 10, 20, 5)
    assert a["expected"] == pytest.approx(2.0) and a["fold"] == pytest.approx(2.5)
    # hand: P(X >= 5) = Σ_{x=5}^{10} C(20, x) C(80, 10 − x) / C(100, 10)
    hand = sum(comb(20, x, exact=True) * comb(80, 10 - x, exact=True) for x in range(5, 11)) / comb(100, 10, exact=True)
    assert a["p_value"] == pytest.approx(hand, rel=1e-9)
    assert a["p_value"] == pytest.approx(hypergeom.sf(4, 100, 20, 10), rel=1e-12)
    assert a["overlap_genes"] == "G0;G1;G2;G3;G4"
    assert df.loc["B", "p_value"] == pytest.approx(1.0) and df.loc["B", "overlap"] == 0
    assert df.loc["C", "p_value"] == pytest.approx(hypergeom.sf(0, 100, 2, 10))
    assert df.loc["D", "set_size"] == 0 and df.loc["D", "p_value"] == 1.0 and math.isnan(df.loc["D", "fold"])
    q = multipletests(df["p_value"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(df["q_value"].to_numpy(), q, rtol=1e-12)
    ordered = enrichment(markers, universe, sets)
    assert (np.diff(ordered["p_value"].to_numpy()) >= 0).all()
    with pytest.warns(UserWarning):
        enrichment(markers + ["OUTSIDE"], universe, sets)


def test_bh_matches_statsmodels():
    rng = np.random.default_rng(11)
    for m in (1, 2, 10, 57):
        p = rng.random(m) ** 3
        p[: m // 3] = p[0]  # ties
        np.testing.assert_allclose(bh_adjust(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12, atol=0)
    p = np.array([0.01, np.nan, 0.04, 0.03])
    q = bh_adjust(p)
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="fdr_bh")[1])


def test_marker_overlap():
    o = marker_overlap(["A", "B", "C", "C"], ["C", "D", "B", "E"])
    assert (o["n_a"], o["n_b"], o["n_intersection"], o["n_union"]) == (3, 4, 2, 5)
    assert o["jaccard"] == pytest.approx(2 / 5)
    assert o["intersection"] == ["B", "C"] and o["only_a"] == ["A"] and o["only_b"] == ["D", "E"]
    assert math.isnan(marker_overlap([], [])["jaccard"])


# ------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------
def _check_saved(png, svg):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()[:2000]


def test_heatmap_matrix_zscore_and_clustered_order():
    rng = np.random.default_rng(12)
    # types A, B share one profile; C, D another
    prof = {"A": np.r_[5, 5, 0, 0, 1.0], "B": np.r_[5, 4.8, 0, 0, 1.0], "C": np.r_[0, 0, 5, 5, 1.0],
            "D": np.r_[0, 0.2, 5, 4.9, 1.0]}
    labels = np.repeat(["C", "A", "D", "B"], 6)
    X = np.stack([prof[t] for t in labels]) + rng.normal(0, 0.05, size=(len(labels), 5)) * np.r_[1, 1, 1, 1, 0]
    z, link = heatmap_matrix(pd.DataFrame(X, columns=list("vwxyz")), labels, cluster_genes=False)
    assert list(z.index) == list("vwxyz") and sorted(z.columns) == list("ABCD")
    np.testing.assert_allclose(z.loc[list("vwxy")].mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.loc[list("vwxy")].std(axis=1, ddof=0), 1, atol=1e-12)
    assert (z.loc["z"] == 0).all()  # constant across types
    order = list(z.columns)
    assert abs(order.index("A") - order.index("B")) == 1 and abs(order.index("C") - order.index("D")) == 1
    assert link.shape == (3, 4)


def test_marker_figures_write_png_and_svg(tmp_path):
    X, y = _typed_data(n_types=5, per=10, G=30, signal=2.0)
    genes = [f"GENE{i}" for i in range(30)]
    status = np.where(np.arange(len(y)) % 3 == 0, "metastatic", "primary")
    assert tsne_perplexity(50) == pytest.approx(49 / 3) and tsne_perplexity(1000) == 30.0
    fig, coords = tsne_plot(X, y, "t-SNE on markers", seed=0)
    assert coords.shape == (50, 2)
    save_figure(fig, tmp_path / "tsne.png", tmp_path / "tsne.svg")
    fig2, coords2 = tsne_plot(X, y, "primary + metastatic", style=status, style_title="site", seed=0)
    np.testing.assert_allclose(coords, coords2)  # seeded
    save_figure(fig2, tmp_path / "tsne_pm.png", tmp_path / "tsne_pm.svg")
    save_figure(marker_heatmap(pd.DataFrame(X, columns=genes), y, "markers"), tmp_path / "heat.png",
                tmp_path / "heat.svg")
    table = forward_selection(X, y, np.arange(30), n_way=4, n_tasks=200, seed=0)
    save_figure(forward_selection_plot(table, "forward selection", best=best_k(table)), tmp_path / "fs.png",
                tmp_path / "fs.svg")
    gnb = primary_vs_metastatic(X, status == "metastatic", np.arange(30), seed=0)
    save_figure(gnb_plot(gnb, "GNB", chosen=best_k(gnb)), tmp_path / "gnb.png", tmp_path / "gnb.svg")
    for name in ("tsne", "tsne_pm", "heat", "fs", "gnb"):
        _check_saved(tmp_path / f"{name}.png", tmp_path / f"{name}.svg")
    assert "GENE" in (tmp_path / "heat.svg").read_text()  # gene labels drawn
