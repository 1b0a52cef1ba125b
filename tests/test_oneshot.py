"""Pair sampling (SPEC §2.2) and N-way one-shot tasks, scoring and baselines (SPEC §2.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from oncoshot.models import SiameseNet
from oncoshot.oneshot import (OneShotTasks, accuracy_with_wilson, correct, embed_samples, make_tasks, nn_cosine,
                              nn_euclidean, nn_pearson, predict, score_tasks, score_tasks_from_embeddings,
                              score_tasks_per_task)
from oncoshot.pairs import PairSampler, encode_labels

torch.set_num_threads(1)


def _labels(sizes: dict) -> np.ndarray:
    y = np.concatenate([[k] * n for k, n in sizes.items()])
    return np.random.default_rng(0).permutation(y)


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------
def test_encode_labels():
    codes, classes = encode_labels(["b", "a", "c", "a"])
    assert classes.tolist() == ["a", "b", "c"] and codes.tolist() == [1, 0, 2, 0]
    codes, classes = encode_labels(["c", "a"], classes=["c", "b", "a"])
    assert codes.tolist() == [0, 2]
    with pytest.raises(ValueError, match="zz"):
        encode_labels(["a", "zz"], classes=["a", "b"])


# ------------------------------------------------------------------------------------------------
# pair sampler
# ------------------------------------------------------------------------------------------------
SIZES = {"A": 40, "B": 3, "C": 2, "D": 120, "E": 1, "F": 15}


def test_pair_batches_full_balanced_and_correct():
    y = _labels(SIZES)
    X = torch.arange(len(y), dtype=torch.float32)[:, None].repeat(1, 4)
    s = PairSampler(X, y, seed=3)
    assert s.excluded_from_same == ["E"]
    same_types, diff_types_a, diff_types_b, used = [], [], [], set()
    for _ in range(200):
        ia, ib, t = s.sample(128)
        assert ia.shape == ib.shape == t.shape == (128,)
        assert ia.dtype == ib.dtype == torch.long and t.dtype == torch.float32
        assert t.sum().item() == 64 and torch.equal(t[:64], torch.ones(64)) and torch.equal(t[64:], torch.zeros(64))
        ia, ib = ia.numpy(), ib.numpy()
        assert np.all((ia >= 0) & (ia < len(y)) & (ib >= 0) & (ib < len(y)))
        # same-type pairs: same type, two distinct samples
        assert np.all(y[ia[:64]] == y[ib[:64]])
        assert np.all(ia[:64] != ib[:64])
        # different-type pairs: never the same type
        assert np.all(y[ia[64:]] != y[ib[64:]])
        same_types.append(y[ia[:64]])
        diff_types_a.append(y[ia[64:]])
        diff_types_b.append(y[ib[64:]])
        used.update(ia.tolist())
        used.update(ib.tolist())
    same_types = np.concatenate(same_types)
    # every type with >= 2 samples is drawn for same-type pairs, never the singleton
    assert set(same_types) == {"A", "B", "C", "D", "F"}
    # every type (singleton included) appears on both sides of different-type pairs
    assert set(np.concatenate(diff_types_a)) == set(SIZES) == set(np.concatenate(diff_types_b))
    # types are drawn uniformly, not in proportion to their size
    freq = np.array([np.mean(same_types == k) for k in "ABCDF"])
    np.testing.assert_allclose(freq, 0.2, atol=0.02)
    freq_d = np.array([np.mean(np.concatenate(diff_types_a) == k) for k in SIZES])
    np.testing.assert_allclose(freq_d, 1 / 6, atol=0.02)
    # every sample gets drawn
    assert used == set(range(len(y)))
    # sample_tensors gathers the rows on the device
    xa, xb, t = s.sample_tensors(8)
    assert xa.shape == (8, 4) and xa.device == X.device
    assert torch.all(xa[:4, 0] != xb[:4, 0])


def test_pair_sampler_samples_uniform_within_type():
    y = np.array(["A"] * 5 + ["B"] * 3)
    s = PairSampler(None, y, seed=1)
    ia, ib, _ = s.sample(20000)
    same = np.concatenate([ia[:10000].numpy(), ib[:10000].numpy()])
    a = same[y[same] == "A"]
    np.testing.assert_allclose(np.bincount(a, minlength=5)[:5] / len(a), 0.2, atol=0.02)
    # ordered pairs of distinct samples: each of the 5*4 ordered pairs of A about equally likely
    pa = ia[:10000].numpy(), ib[:10000].numpy()
    mask = y[pa[0]] == "A"
    codes = pa[0][mask] * 5 + pa[1][mask]
    counts = np.bincount(codes, minlength=25).reshape(5, 5)
    assert np.all(np.diag(counts) == 0)
    off = counts[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(off / off.sum(), 1 / 20, atol=0.01)


def test_pair_sampler_determinism_and_errors():
    y = _labels(SIZES)
    a = PairSampler(None, y, seed=11).sample(64)
    b = PairSampler(None, y, seed=11).sample(64)
    c = PairSampler(None, y, seed=12).sample(64)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])
    # generator state round trip
    s = PairSampler(None, y, seed=5)
    st = s.get_state()
    first = s.sample(32)
    s.set_state(st)
    assert all(torch.equal(u, v) for u, v in zip(first, s.sample(32)))
    with pytest.raises(ValueError, match="even"):
        s.sample(63)
    with pytest.raises(ValueError, match="even"):
        s.sample(0)
    with pytest.raises(ValueError, match=">= 2 samples"):
        PairSampler(None, ["a", "b", "c"], seed=0)
    with pytest.raises(ValueError, match="at least 2 types"):
        PairSampler(None, ["a", "a", "a"], seed=0)
    with pytest.raises(ValueError, match="rows"):
        PairSampler(np.zeros((3, 2)), ["a", "a", "b", "b"], seed=0)


# ------------------------------------------------------------------------------------------------
# tasks
# ------------------------------------------------------------------------------------------------
TASK_SIZES = {"t0": 12, "t1": 2, "t2": 30, "t3": 7, "t4": 5, "t5": 9, "t6": 3, "t7": 20}


@pytest.mark.parametrize("n_way", [2, 6, 8])
def test_tasks_valid(n_way):
    y = _labels(TASK_SIZES)
    tasks = make_tasks(y, n_way, 3000, seed=7)
    support, query, true_pos = tasks  # unpacks as a triple
    assert isinstance(tasks, OneShotTasks) and tasks.n_way == n_way and len(tasks) == 3000
    assert support.shape == (3000, n_way) and query.shape == (3000,) and true_pos.shape == (3000,)
    assert support.dtype == query.dtype == true_pos.dtype == np.int64
    st = y[support]
    # N distinct types per task
    assert all(len(set(row)) == n_way for row in st)
    rows = np.arange(3000)
    # the query's type is the type of the support at true_pos, and only that one
    assert np.all(st[rows, true_pos] == y[query])
    assert np.all((st == y[query][:, None]).sum(1) == 1)
    # the query is never its own support
    assert np.all(support[rows, true_pos] != query)
    # every type and position is used; the true position is uniform
    assert set(st.ravel()) == set(TASK_SIZES)
    np.testing.assert_allclose(np.bincount(true_pos, minlength=n_way) / 3000, 1 / n_way, atol=0.04)
    # types are drawn uniformly, whatever their size
    np.testing.assert_allclose([np.mean(y[query] == k) for k in TASK_SIZES], 1 / 8, atol=0.03)


def test_tasks_deterministic_and_checked():
    y = _labels(TASK_SIZES)
    a, b, c = make_tasks(y, 6, 500, 1), make_tasks(y, 6, 500, 1), make_tasks(y, 6, 500, 2)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a.support, c.support)
    with pytest.raises(ValueError, match="9-way tasks need 9 types"):
        make_tasks(y, 9, 10, 0)
    # a singleton type is left out (with a warning) and never used
    y2 = np.concatenate([y, ["lonely"]])
    with pytest.warns(UserWarning, match="lonely"):
        t = make_tasks(y2, 8, 300, 0)
    assert "lonely" not in set(y2[t.support].ravel())
    with pytest.warns(UserWarning), pytest.raises(ValueError):
        make_tasks(np.array(["a", "a", "b", "c"]), 2, 5, 0)
    # integer labels work too
    t = make_tasks(np.repeat(np.arange(5), 3), 5, 50, 0)
    assert t.support.shape == (50, 5)


def _twins(seed=0):
    """Types with patients of 1–3 samples (vials / libraries), shuffled; a type with one patient
    (3 samples) and a type with one single-sample patient."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for t, n_patients in {"a": 12, "b": 3, "c": 7, "d": 5, "e": 20, "f": 2, "g": 9}.items():
        for p in range(n_patients):
            k = int(rng.integers(1, 4))
            labels += [t] * k
            groups += [f"{t}-p{p}"] * k
    labels += ["one_patient"] * 3 + ["one_sample"]
    groups += ["solo"] * 3 + ["single"]
    order = rng.permutation(len(labels))
    return np.array(labels)[order], np.array(groups)[order]


@pytest.mark.parametrize("n_way", [2, 5, 7])
def test_tasks_with_groups_never_pair_a_patient(n_way):
    y, g = _twins()
    with pytest.warns(UserWarning, match=r"< 2 groups \(patients\) left out: \['one_patient', 'one_sample'\]"):
        tasks = make_tasks(y, n_way, 5000, seed=3, groups=g)
    rows = np.arange(len(tasks))
    st = y[tasks.support]
    assert all(len(set(r)) == n_way for r in st)
    assert np.all(st[rows, tasks.true_pos] == y[tasks.query])
    # the query's patient is none of the supports' patients (checked against every support)
    assert np.all(g[tasks.support] != g[tasks.query][:, None])
    assert not {"one_patient", "one_sample"} & set(st.ravel())
    # every other-patient sample of the type is a possible query, uniformly: compare counts per
    # (support, query) pair with the independent expectation 1 / (#samples of the type outside
    # the support's patient)
    sup = tasks.support[rows, tasks.true_pos]
    pairs = {}
    for s_, q_ in zip(sup, tasks.query):
        pairs.setdefault(s_, []).append(q_)
    for s_, qs in pairs.items():
        cand = np.flatnonzero((y == y[s_]) & (g != g[s_]))
        assert set(qs) <= set(cand)
    big = max(pairs, key=lambda k: len(pairs[k]))
    cand = np.flatnonzero((y == y[big]) & (g != g[big]))
    counts = np.array([pairs[big].count(c) for c in cand])
    assert counts.sum() == len(pairs[big]) and counts.min() >= 0
    assert np.abs(counts / counts.sum() - 1 / len(cand)).max() < 0.6 / len(cand) + 0.05


def test_tasks_groups_leak_without_them_and_match_old_tasks():
    y, g = _twins(1)
    with pytest.warns(UserWarning):
        plain = make_tasks(y, 5, 3000, seed=4)
    # without groups, twins do pair up (the leak the groups prevent)
    assert (g[plain.support[np.arange(3000), plain.true_pos]] == g[plain.query]).any()
    # one group per sample = no groups: the very same tasks
    with pytest.warns(UserWarning):
        same = make_tasks(y, 5, 3000, seed=4, groups=np.arange(len(y)))
    assert all(np.array_equal(a, b) for a, b in zip(plain, same))
    with pytest.warns(UserWarning):
        a, b = make_tasks(y, 5, 500, 9, groups=g), make_tasks(y, 5, 500, 9, groups=list(g))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_tasks_groups_checked():
    y, g = _twins(2)
    bad = g.copy()
    bad[np.flatnonzero(y == "a")[0]] = g[np.flatnonzero(y == "c")[0]]
    with pytest.raises(ValueError, match="groups.*several types"):
        make_tasks(y, 3, 10, 0, groups=bad)
    with pytest.raises(ValueError, match="one group per sample"):
        make_tasks(y, 3, 10, 0, groups=g[:-1])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"8-way tasks need 8 types with >= 2 groups"):
        make_tasks(y, 8, 10, 0, groups=g)


def test_tasks_with_groups_are_fast():
    import time

    rng = np.random.default_rng(0)
    n = 20000
    y = rng.integers(0, 30, n)
    g = np.array([f"{t}-{p}" for t, p in zip(y, rng.integers(0, 300, n))])
    t0 = time.perf_counter()
    tasks = make_tasks(y, 10, 20000, seed=1, groups=g)
    elapsed = time.perf_counter() - t0
    assert np.all(g[tasks.support] != g[tasks.query][:, None])
    assert elapsed < 5.0, elapsed  # 0.06 s measured (0.03 s without groups), 20,000 10-way tasks, 20,000 samples


# ------------------------------------------------------------------------------------------------
# baselines
# ------------------------------------------------------------------------------------------------
def _data(n_per=6, n_types=8, G=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_types, G))
    y = np.repeat(np.arange(n_types), n_per)
    X = (centres[y] + rng.normal(0, 1.5, (len(y), G)) + 5).astype(np.float32)
    return X, y


def _brute(X, tasks, metric):
    out = np.zeros(tasks.support.shape)
    for t in range(len(tasks)):
        out[t] = cdist(X[[tasks.query[t]]].astype(np.float64), X[tasks.support[t]].astype(np.float64), metric)[0]
    return out


def test_nn_euclidean_equals_cdist():
    X, y = _data()
    tasks = make_tasks(y, 6, 400, 3)
    scores = nn_euclidean(X, tasks)
    ref = _brute(X, tasks, "euclidean")
    np.testing.assert_allclose(-scores, ref, rtol=1e-10)
    np.testing.assert_array_equal(predict(scores), np.argmin(ref, axis=1))
    # works on tensors and in small chunks as well
    np.testing.assert_allclose(nn_euclidean(torch.as_tensor(X), tasks), scores, rtol=1e-12)


def test_nn_pearson_and_cosine_equal_cdist():
    X, y = _data(seed=1)
    tasks = make_tasks(y, 8, 400, 4)
    scores = nn_pearson(X, tasks)
    ref = _brute(X, tasks, "correlation")  # 1 - r
    np.testing.assert_allclose(1 - scores, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(predict(scores), np.argmin(ref, axis=1))
    emb = np.random.default_rng(2).random((len(y), 64)).astype(np.float32)
    cs = nn_cosine(emb, tasks)
    np.testing.assert_allclose(1 - cs, _brute(emb, tasks, "cosine"), rtol=1e-9, atol=1e-12)
    # a constant sample has correlation 0 with everything (no NaN)
    X2 = X.copy()
    X2[tasks.query[0]] = 3.0
    assert np.all(nn_pearson(X2, tasks)[0] == 0)


def test_baselines_are_good_on_separable_data():
    X, y = _data(n_per=10)
    tasks = make_tasks(y, 6, 500, 0)
    assert correct(nn_euclidean(X, tasks), tasks).mean() > 0.9


# ------------------------------------------------------------------------------------------------
# Siamese scoring
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("distance", ["sq", "l1", "chi2"])
def test_batched_scoring_equals_per_task(distance):
    X, y = _data(n_per=5, G=400, seed=5)
    torch.manual_seed(0)
    model = SiameseNet(400, distance=distance)
    model.train()  # scoring must switch dropout off by itself and restore the mode
    tasks = make_tasks(y, 6, 120, 9)
    emb = embed_samples(model, X, batch_size=7)
    assert emb.shape == (len(y), model.out_features)
    fast = score_tasks_from_embeddings(model, emb, tasks, batch=50)  # chunks not a multiple of N
    slow = score_tasks_per_task(model, X, tasks)
    assert model.training
    assert fast.shape == slow.shape == (120, 6)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch.sigmoid(torch.as_tensor(fast)).numpy(),
                               torch.sigmoid(torch.as_tensor(slow)).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(predict(fast), predict(slow))
    np.testing.assert_array_equal(correct(fast, tasks), correct(slow, tasks))
    np.testing.assert_allclose(score_tasks(model, X, tasks), fast, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Wilson interval
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (1, 3), (17892, 20000), (513, 1000), (5, 7)])
def test_wilson_equals_statsmodels(k, n):
    hits = np.zeros(n, bool)
    hits[:k] = True
    acc, low, high = accuracy_with_wilson(hits, z=norm.isf(0.025))
    sl, sh = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert acc == pytest.approx(k / n)
    assert low == pytest.approx(sl, abs=1e-12) and high == pytest.approx(sh, abs=1e-12)
    # the default z = 1.96 is within 1e-5 of it
    _, l2, h2 = accuracy_with_wilson(hits)
    assert abs(l2 - sl) < 1e-5 and abs(h2 - sh) < 1e-5
    # 99 %
    _, l3, h3 = accuracy_with_wilson(hits.astype(int), z=norm.isf(0.005))
    s3 = proportion_confint(k, n, alpha=0.01, method="wilson")
    assert (l3, h3) == pytest.approx(s3, abs=1e-12)
