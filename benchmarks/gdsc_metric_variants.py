#!/usr/bin/env python
"""The exploration behind ``metric.transductive`` (issue 12): variants of the whitened cosine on
GDSC's unseen types, on the splits and tasks of ``real_oneshot_gdsc.py`` (paper split + random
seeds 0-4, validation/test halves by ``--halves-seed``, ``--tasks`` N-way one-shot tasks of the test
half with ``--task-seed``), every variant scored on the same tasks as Pearson 1-NN.

Each variant maps (training lines + labels, validation lines + labels, test lines) to a similarity
matrix of the test lines. Leakage rules: only the training types' labels fit anything; the validation
labels only *select* among a declared grid (``select_kl``, ``diffusion_selected``); variants marked
TRANSDUCTIVE also use the expression (never the labels) of the unseen types' validation and test lines.
The variants that are not in the library are written here with numpy; the library's two
(``whitened``, ``diffusion``) call :func:`oncoshot.metric.fit_whitened_cosine`.

Usage::

    python benchmarks/gdsc_metric_variants.py --out results/benchmarks/gdsc_metric_variants.tsv
        [--variants whitened diffusion ...] [--real ../shared/real] [--tasks 2000] [--threads 1]

Prints per variant: accuracy (6/8/10-way) on the paper split and the mean of the random splits, the
gains over Pearson 1-NN, and the 10-way gain per random seed; writes one row per split × variant × N.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

from oncoshot.metric import (center_rows, fit_whitened_cosine, inverse_sqrt,  # noqa: E402
                             pooled_within_covariance)
from oncoshot.oneshot import make_tasks  # noqa: E402
from oncoshot.sources.gdsc import read_gdsc  # noqa: E402
from real_oneshot_gdsc import make_split  # noqa: E402

N_WAYS = (6, 8, 10)


def cos_sim(E, F=None):
    F = E if F is None else F
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    Fn = F / np.maximum(np.linalg.norm(F, axis=1, keepdims=True), 1e-12)
    return En @ Fn.T


def accuracy(S, labels, n_way, n_tasks, seed):
    t = make_tasks(labels, n_way, n_tasks, seed)
    return 100 * float((S[t.query[:, None], t.support].argmax(1) == t.true_pos).mean())


def whiten(Xtr, ytr, k=450, lam=0.3):
    """``(mu, transform)`` as in oncoshot.metric (numpy, float64)."""
    Xc = center_rows(Xtr)
    mu = Xc.mean(axis=0)
    _, sv, vt = np.linalg.svd(Xc - mu, full_matrices=False)
    P = vt[: min(k, int((sv > sv[0] * 1e-10).sum()))].T
    return mu, P @ inverse_sqrt(pooled_within_covariance((Xc - mu) @ P, ytr), lam)


def embed(X, mu, T):
    return (center_rows(X) - mu) @ T


# ---- variants: f(Xtr, ytr, Xva, yva, Xte, ctx) -> similarity of the test lines ---------------------
def pearson(Xtr, ytr, Xva, yva, Xte, ctx):
    return cos_sim(center_rows(Xte))


def spearman(Xtr, ytr, Xva, yva, Xte, ctx):
    return cos_sim(center_rows(np.apply_along_axis(rankdata, 1, Xte)))


def whitened(Xtr, ytr, Xva, yva, Xte, ctx):
    net, _ = fit_whitened_cosine(Xtr, ytr, X_cal=Xva, labels_cal=yva)
    with torch.no_grad():
        return cos_sim(net.embed(torch.as_tensor(Xte, dtype=torch.float32)).double().numpy())


def ranks_whitened(Xtr, ytr, Xva, yva, Xte, ctx):
    def r(A):
        R = np.apply_along_axis(rankdata, 1, A)
        return (R - R.mean(1, keepdims=True)) / R.std(1, keepdims=True)

    mu, T = whiten(r(Xtr), ytr)
    return cos_sim(embed(r(Xte), mu, T))


def gene_weight_f(Xtr, ytr, Xva, yva, Xte, ctx, alpha=0.5):
    """Genes weighted by (total / within-type variance)^alpha on the training types before the PCA."""
    Xc = center_rows(Xtr)
    R = Xc.copy()
    for t in np.unique(ytr):
        R[ytr == t] -= Xc[ytr == t].mean(axis=0)
    w = (Xc.var(axis=0) / (R ** 2).mean(axis=0)) ** alpha
    w /= w.mean()
    mu, T = whiten(Xc * w, ytr)
    return cos_sim((center_rows(Xte) * w - mu) @ T)


def fusion_pearson(Xtr, ytr, Xva, yva, Xte, ctx, a=0.7):
    z = lambda S: (S - S.mean()) / S.std()
    return a * z(whitened(Xtr, ytr, Xva, yva, Xte, ctx)) + (1 - a) * z(pearson(Xtr, ytr, Xva, yva, Xte, ctx))


def ensemble_k(Xtr, ytr, Xva, yva, Xte, ctx):
    return sum(cos_sim(embed(Xte, *whiten(Xtr, ytr, k))) for k in (200, 300, 450, 600))


def select_kl(Xtr, ytr, Xva, yva, Xte, ctx):
    """(components, shrinkage) chosen per split by the mean 6/8/10-way accuracy of 1,000 validation tasks."""
    best = None
    for k in (200, 300, 450, 600):
        for lam in (0.1, 0.3, 0.6):
            mu, T = whiten(Xtr, ytr, k, lam)
            v = np.mean([accuracy(cos_sim(embed(Xva, mu, T)), yva, n, 1000, 7) for n in N_WAYS])
            if best is None or v > best[0]:
                best = (v, mu, T)
    return cos_sim(embed(Xte, best[1], best[2]))


def second_order(Xtr, ytr, Xva, yva, Xte, ctx, w=0.5):
    """Plus the correlation of the lines' cosine profiles to the training lines."""
    mu, T = whiten(Xtr, ytr)
    E = embed(Xte, mu, T)
    return cos_sim(E) + w * cos_sim(center_rows(cos_sim(E, embed(Xtr, mu, T))))


def complement(Xtr, ytr, Xva, yva, Xte, ctx, cw=0.5, lam=0.3):
    """Whitening in the full gene space: the part outside the 450 training axes kept, scaled like the
    shrinkage target (times cw)."""
    Xc = center_rows(Xtr)
    mu = Xc.mean(axis=0)
    _, sv, vt = np.linalg.svd(Xc - mu, full_matrices=False)
    P = vt[: min(450, int((sv > sv[0] * 1e-10).sum()))].T
    R = Xc - mu
    for t in np.unique(ytr):
        R[ytr == t] -= R[ytr == t].mean(axis=0)
    tr = (R ** 2).sum() / len(R) / Xtr.shape[1]
    S = (1 - lam) * pooled_within_covariance((Xc - mu) @ P, ytr) + lam * tr * np.eye(P.shape[1])
    ev, V = np.linalg.eigh(S)
    Xe = center_rows(Xte) - mu
    return cos_sim(np.hstack([Xe @ P @ (V / np.sqrt(ev)) @ V.T, cw * (Xe - Xe @ P @ P.T) / np.sqrt(lam * tr)]))


def episodic(Xtr, ytr, Xva, yva, Xte, ctx, steps=400, lr=1e-3, tau=0.1, every=25):
    """A linear map L (init identity) after the whitening, trained by 10-way 1-shot prototype episodes
    (softmax over cosine / tau, 4 queries per type) on the training types; early-stopped on 1,000
    10-way tasks of the validation half."""
    import torch.nn.functional as F

    mu, T = whiten(Xtr, ytr)
    Zt = torch.tensor(embed(Xtr, mu, T), dtype=torch.float32)
    Zv = torch.tensor(embed(Xva, mu, T), dtype=torch.float32)
    L = torch.nn.Parameter(torch.eye(T.shape[1]))
    opt = torch.optim.Adam([L], lr=lr)
    types = np.unique(ytr)
    byt = [np.flatnonzero(ytr == t) for t in types]
    rng = np.random.default_rng(0)
    vt = make_tasks(yva, min(10, len(set(yva))), 1000, 7)

    def val():
        with torch.no_grad():
            E = F.normalize(Zv @ L, dim=1).numpy()
        return float(((E @ E.T)[vt.query[:, None], vt.support].argmax(1) == vt.true_pos).mean())

    best = (val(), L.detach().clone())
    for it in range(1, steps + 1):
        sup, qry, qlab = [], [], []
        for j, c in enumerate(rng.choice(len(types), min(10, len(types)), replace=False)):
            idx = rng.permutation(byt[c])
            sup.append(idx[0])
            qry += list(idx[1:5])
            qlab += [j] * len(idx[1:5])
        E = F.normalize(Zt @ L, dim=1)
        loss = F.cross_entropy(E[qry] @ E[sup].T / tau, torch.tensor(qlab))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % every == 0 and (v := val()) > best[0]:
            best = (v, L.detach().clone())
    return cos_sim(embed(Xte, mu, T) @ best[1].numpy())


def transductive_centring(Xtr, ytr, Xva, yva, Xte, ctx):
    """TRANSDUCTIVE: whitened embeddings centred on the mean of the unlabelled unseen lines."""
    mu, T = whiten(Xtr, ytr)
    E = embed(Xte, mu, T)
    return cos_sim(E - embed(np.vstack([Xva, Xte]), mu, T).mean(axis=0))


def diffusion(Xtr, ytr, Xva, yva, Xte, ctx, neighbours=10, beta=0.9, Xq=None):
    """TRANSDUCTIVE, the library's metric.transductive: diffusion (pool: validation + test lines)."""
    net, _ = fit_whitened_cosine(Xtr, ytr, X_cal=Xva, labels_cal=yva, transductive="diffusion",
                                 X_pool=np.vstack([Xva, Xte]), diffusion_neighbours=neighbours, diffusion_beta=beta)
    with torch.no_grad():
        return cos_sim(net.embed(torch.as_tensor(Xte if Xq is None else Xq, dtype=torch.float32)).double().numpy())


def diffusion_selected(Xtr, ytr, Xva, yva, Xte, ctx):
    """TRANSDUCTIVE: (neighbours, beta) in {5, 10, 20} × {0.8, 0.9, 0.95} chosen per split by the mean
    6/8/10-way accuracy of 1,000 tasks on the validation half."""
    best = None
    for k in (5, 10, 20):
        for b in (0.8, 0.9, 0.95):
            v = np.mean([accuracy(diffusion(Xtr, ytr, Xva, yva, Xte, ctx, k, b, Xq=Xva), yva, n, 1000, 7)
                         for n in N_WAYS])
            if best is None or v > best[0]:
                best = (v, k, b)
    ctx["note"] = f"selected: {best[1]} neighbours, beta {best[2]}"
    return diffusion(Xtr, ytr, Xva, yva, Xte, ctx, best[1], best[2])


VARIANTS = dict(pearson=pearson, spearman=spearman, whitened=whitened, ranks_whitened=ranks_whitened,
                gene_weight_f=gene_weight_f, fusion_pearson=fusion_pearson, ensemble_k=ensemble_k,
                select_kl=select_kl, second_order=second_order, complement=complement, episodic=episodic,
                transductive_centring=transductive_centring, diffusion=diffusion,
                diffusion_selected=diffusion_selected)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--real", default=str(REPO.parent / "shared" / "real"))
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--random-seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    ap.add_argument("--halves-seed", type=int, default=0)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--task-seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y, _ = read_gdsc(Path(args.real) / "gdsc_celllines")
    X = X.astype(np.float64)
    splits = [make_split(y, "paper", None, args.halves_seed)]
    splits += [make_split(y, f"random{s}", s, args.halves_seed) for s in args.random_seeds]
    variants = ["pearson"] + [v for v in args.variants if v != "pearson"]
    rows = []
    for name in variants:
        t0 = time.perf_counter()
        for sp in splits:
            ctx = {}
            S = VARIANTS[name](X[sp["train"]], y[sp["train"]], X[sp["val"]], y[sp["val"]], X[sp["test"]], ctx)
            for n in N_WAYS:
                rows.append(dict(variant=name, split=sp["name"], n_way=n, note=ctx.get("note", ""),
                                 accuracy=accuracy(S, y[sp["test"]], n, args.tasks, args.task_seed)))
        t = pd.DataFrame(rows)
        acc = t[t["variant"] == name].pivot_table(index="split", columns="n_way", values="accuracy")
        base = t[t["variant"] == "pearson"].pivot_table(index="split", columns="n_way", values="accuracy")
        rnd = [s["name"] for s in splits[1:]]
        gain = acc - base
        fmt = lambda v: " ".join(f"{x:5.1f}" for x in v)
        sgn = lambda v: " ".join(f"{x:+5.1f}" for x in v)
        print(f"{name:22s} paper {fmt(acc.loc['paper'])} | random mean {fmt(acc.loc[rnd].mean())} | gain paper "
              f"{sgn(gain.loc['paper'])} random {sgn(gain.loc[rnd].mean())} | 10-way gain per seed "
              f"{sgn(gain.loc[rnd, 10])} | {time.perf_counter() - t0:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, sep="\t", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
