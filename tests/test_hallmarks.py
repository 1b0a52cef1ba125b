"""oncoshot.hallmarks: Otsu labels (SPEC §3.4) and synthetic bulk profiles (SPEC §3.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from skimage.filters import threshold_otsu

from oncoshot.errors import InputError
from oncoshot.hallmarks import (
    combine_profiles,
    label_cells,
    otsu_halves,
    otsu_thresholds,
    pooled_validation_bulk,
    synthetic_bulk,
)

# ---------------------------------------------------------------------------------------------
# Otsu
# ---------------------------------------------------------------------------------------------


def test_otsu_halves_even_odd_and_nan():
    lower, upper = otsu_halves([5, 1, 4, 2, 3, 6])
    assert lower.tolist() == [1, 2, 3] and upper.tolist() == [4, 5, 6]
    lower, upper = otsu_halves([5, 1, 4, 2, 3])  # odd: the median 3 is in both halves
    assert lower.tolist() == [1, 2, 3] and upper.tolist() == [3, 4, 5]
    lower, upper = otsu_halves([np.nan, 2.0, 1.0, 3.0])  # NaN ignored: n = 3
    assert lower.tolist() == [1.0, 2.0] and upper.tolist() == [2.0, 3.0]


@pytest.mark.parametrize("n", [2, 7, 100, 1001])
def test_otsu_thresholds_equal_skimage_on_halves(n):
    rng = np.random.default_rng(n)
    scores = np.concatenate([rng.beta(2, 8, n // 2), rng.beta(8, 2, n - n // 2)])
    rng.shuffle(scores)
    s = np.sort(scores)
    low, high = otsu_thresholds(scores)
    assert low == threshold_otsu(s[: (n + 1) // 2])
    assert high == threshold_otsu(s[n // 2 :])
    assert low <= np.median(scores) <= high


def test_otsu_thresholds_degenerate():
    assert otsu_thresholds([0.3]) == (0.3, 0.3)
    assert otsu_thresholds([0.2, 0.2, 0.2, 0.2]) == (0.2, 0.2)
    low, high = otsu_thresholds([])
    assert np.isnan(low) and np.isnan(high)


def test_label_cells_hand_example():
    # tissue T1: 6 cells, halves [0.1, 0.2, 0.3] and [0.7, 0.8, 0.9]
    # Otsu of 3 distinct values picks a bin centre: check against skimage and by hand
    idx = [f"c{i}" for i in range(9)]
    scores = pd.DataFrame(
        {
            "IA": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.5, 0.5, 0.5],
            "TPI": [0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.1, 0.6, 0.9],
        },
        index=idx,
    )
    tissue = pd.Series(["T1"] * 6 + ["T2"] * 3, index=idx).iloc[::-1]  # aligned by cell name
    labels, thresholds = label_cells(scores, tissue)
    low = threshold_otsu(np.array([0.1, 0.2, 0.3]))
    high = threshold_otsu(np.array([0.7, 0.8, 0.9]))
    assert 0.1 < low < 0.3 and 0.7 < high < 0.9
    expected_ia = [0.0 if v < low else 1.0 if v > high else np.nan for v in scores["IA"][:6]]
    np.testing.assert_array_equal(labels["IA"].to_numpy()[:6], expected_ia)
    # by hand: with 256 bins Otsu splits 3 equidistant values after the first bin centre,
    # low = 0.1 + 0.2/512 and high = 0.7 + 0.2/512
    assert low == pytest.approx(0.1 + 0.2 / 512) and high == pytest.approx(0.7 + 0.2 / 512)
    np.testing.assert_array_equal(labels["IA"].to_numpy()[:6], [0, np.nan, np.nan, np.nan, 1, 1])
    np.testing.assert_array_equal(labels["TPI"].to_numpy()[:6], [1, 1, np.nan, np.nan, np.nan, 0])
    # T2 IA: constant scores -> thresholds equal the value -> nothing labelled
    assert labels["IA"].iloc[6:].isna().all()
    # T2 TPI: [0.1, 0.6, 0.9]: halves [0.1, 0.6] and [0.6, 0.9]
    t2 = thresholds.set_index(["tissue", "hallmark"]).loc[("T2", "TPI")]
    assert t2["low"] == threshold_otsu(np.array([0.1, 0.6]))
    assert t2["high"] == threshold_otsu(np.array([0.6, 0.9]))
    assert labels.loc["c6", "TPI"] == 0.0 and labels.loc["c8", "TPI"] == 1.0
    assert np.isnan(labels.loc["c7", "TPI"])
    row = thresholds.set_index(["tissue", "hallmark"]).loc[("T1", "IA")]
    assert (row["n_cells"], row["n_pos"], row["n_neg"]) == (6, expected_ia.count(1.0), expected_ia.count(0.0))
    assert row["n_pos"] + row["n_neg"] + row["n_unlabelled"] == 6
    assert list(thresholds.columns) == ["tissue", "hallmark", "n_cells", "low", "high", "n_pos", "n_neg", "n_unlabelled"]


def test_label_cells_thresholds_are_per_tissue():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    scores = pd.DataFrame({"IA": np.concatenate([a, a + 10])}, index=[f"c{i}" for i in range(400)])
    labels, thr = label_cells(scores, ["X"] * 200 + ["Y"] * 200)
    np.testing.assert_array_equal(labels["IA"].to_numpy()[:200], labels["IA"].to_numpy()[200:])
    assert thr["high"].iloc[1] == pytest.approx(thr["high"].iloc[0] + 10)
    with pytest.raises(InputError, match="without a tissue"):
        label_cells(scores, pd.Series(["X"], index=["c0"]))


# ---------------------------------------------------------------------------------------------
# synthetic bulk
# ---------------------------------------------------------------------------------------------


def bulk_example(seed=0):
    rng = np.random.default_rng(seed)
    groups = [("A", "s1", 530), ("A", "s2", 260), ("B", "s1", 415)]  # "s1" in two studies
    obs = pd.concat(
        [
            pd.DataFrame({"study": st, "sample": sa, "tissue": "Lung" if st == "A" else "Skin"},
                         index=[f"{st}_{sa}_{i}" for i in range(n)])
            for st, sa, n in groups
        ]
    )
    n = len(obs)
    counts = sp.random(n, 60, density=0.2, format="csr", random_state=seed,
                       data_rvs=lambda k: rng.integers(1, 20, k)).astype(np.float32)
    labels = pd.DataFrame(
        rng.choice([1.0, 0.0, np.nan], size=(n, 3), p=[0.45, 0.35, 0.2]),
        index=obs.index, columns=["IA", "TPI", "GIM"],
    )
    return counts, obs, labels


def test_synthetic_bulk_profiles():
    counts, obs, labels = bulk_example()
    cpb = 50
    profiles, members = synthetic_bulk(counts, obs, labels, cells_per_bulk=cpb, seed=3)
    pos = {c: i for i, c in enumerate(obs.index)}
    dense = counts.toarray()
    assert (profiles.obs["n_cells"] == cpb).all()
    assert members.groupby("profile").size().eq(cpb).all()
    # each profile = sum of its member cells; members share study, sample, status
    for name, cells in members.groupby("profile")["cell"]:
        rows = [pos[c] for c in cells]
        np.testing.assert_array_equal(profiles[name].X.toarray().ravel(), dense[rows].sum(axis=0))
        meta = profiles.obs.loc[name]
        sub = obs.loc[list(cells)]
        assert (sub["study"] == meta["study"]).all() and (sub["sample"] == meta["sample"]).all()
        assert (sub["tissue"] == meta["tissue"]).all()
        want = 1.0 if meta["status"] == "positive" else 0.0
        assert (labels.loc[list(cells), meta["hallmark"]] == want).all()
    # never twice within a hallmark; counts: full groups only, leftovers dropped
    assert not members.duplicated(["hallmark", "cell"]).any()
    for (study, sample), sub in obs.groupby(["study", "sample"]):
        for hallmark in labels.columns:
            for status, value in (("positive", 1.0), ("negative", 0.0)):
                n_q = int((labels.loc[sub.index, hallmark] == value).sum())
                made = profiles.obs.query(
                    "study == @study and sample == @sample and hallmark == @hallmark and status == @status"
                )
                assert len(made) == n_q // cpb
    # a cell may be used by several hallmarks
    assert members.groupby("cell")["hallmark"].nunique().max() > 1
    assert set(profiles.obs["tissue"]) == {"Lung", "Skin"}
    assert list(profiles.var_names) == [str(i) for i in range(60)]


def test_synthetic_bulk_deterministic_by_seed_and_independent_of_other_groups():
    counts, obs, labels = bulk_example()
    p1, m1 = synthetic_bulk(counts, obs, labels, cells_per_bulk=40, seed=7)
    p2, m2 = synthetic_bulk(counts, obs, labels, cells_per_bulk=40, seed=7)
    pd.testing.assert_frame_equal(m1, m2)
    assert (p1.X != p2.X).nnz == 0
    p3, m3 = synthetic_bulk(counts, obs, labels, cells_per_bulk=40, seed=8)
    assert not m1["cell"].equals(m3["cell"])
    # dropping study B does not change the profiles of study A
    keep = (obs["study"] == "A").to_numpy()
    p4, m4 = synthetic_bulk(counts[keep], obs[keep], labels[keep], cells_per_bulk=40, seed=7)
    pd.testing.assert_frame_equal(m4, m1[m1["profile"].str.startswith("A|")].reset_index(drop=True))


def test_synthetic_bulk_group_sizes_exact_and_small_groups():
    counts, obs, labels = bulk_example()
    profiles, members = synthetic_bulk(counts, obs, labels, cells_per_bulk=1000)
    assert profiles.n_obs == 0 and len(members) == 0 and profiles.n_vars == 60
    profiles, members = synthetic_bulk(counts, obs, labels, cells_per_bulk=1)
    n_labelled = int(labels.notna().to_numpy().sum())
    assert profiles.n_obs == n_labelled == len(members)
    with pytest.raises(InputError, match="cells_per_bulk"):
        synthetic_bulk(counts, obs, labels, cells_per_bulk=0)
    with pytest.raises(InputError, match="missing column"):
        synthetic_bulk(counts, obs.drop(columns="tissue"), labels)
    bad = labels.copy()
    bad.iloc[0, 0] = 2
    with pytest.raises(InputError, match="values must be"):
        synthetic_bulk(counts, obs, bad)


def test_synthetic_bulk_anndata_input_and_group_by_patient():
    import anndata as ad

    counts, obs, labels = bulk_example()
    obs = obs.assign(patient=np.where(obs["sample"] == "s2", "P1", "P1"))
    adata = ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(60)]))
    profiles, members = synthetic_bulk(adata, None, labels, cells_per_bulk=60, group_by=("study", "patient"))
    assert list(profiles.var_names)[:2] == ["g0", "g1"]
    # study A's two samples are pooled under patient P1
    a = profiles.obs[profiles.obs["study"] == "A"]
    assert set(a["patient"]) == {"P1"}
    assert (a["sample"] == "s1,s2").any()


def test_pooled_validation_bulk():
    counts, obs, labels = bulk_example()
    dense = counts.toarray()
    profiles, members = pooled_validation_bulk(counts, obs, labels)
    assert len(profiles) == 3 * 3 * 2  # groups × hallmarks × status
    for (study, sample), sub in obs.groupby(["study", "sample"]):
        rows = np.flatnonzero(obs.index.isin(sub.index))
        for hallmark in labels.columns:
            for status, value in (("positive", 1.0), ("negative", 0.0)):
                name = f"{study}|{sample}|{hallmark}|{status}|0"
                sel = rows[(labels[hallmark].to_numpy()[rows] == value)]
                assert profiles.obs.loc[name, "n_cells"] == sel.size
                np.testing.assert_array_equal(profiles[name].X.toarray().ravel(), dense[sel].sum(axis=0))
    only_pos, _ = pooled_validation_bulk(counts, obs, labels, include_negative=False)
    assert set(only_pos.obs["status"]) == {"positive"} and len(only_pos) == 9
    none, _ = pooled_validation_bulk(counts, obs, labels, min_cells=10_000)
    assert none.n_obs == 0


def test_apply_thresholds_matches_label_cells_on_the_fitting_data():
    from oncoshot.hallmarks import apply_thresholds, label_cells

    rng = np.random.default_rng(7)
    scores = pd.DataFrame({"IA": np.r_[rng.normal(0.2, 0.05, 200), rng.normal(0.6, 0.05, 150)],
                           "AIM": rng.uniform(0, 1, 350)},
                          index=[f"c{i}" for i in range(350)])
    tissue = pd.Series(["Breast"] * 200 + ["Brain"] * 150, index=scores.index)
    labels, thresholds = label_cells(scores, tissue)
    again = apply_thresholds(scores, tissue, thresholds)
    pd.testing.assert_frame_equal(labels, again, check_dtype=False)
    with pytest.raises(Exception, match="no threshold for tissue 'Lung'"):
        apply_thresholds(scores.iloc[:3], ["Lung"] * 3, thresholds)


def test_combine_profiles_outer_and_inner():
    import anndata as ad

    a = ad.AnnData(sp.csr_matrix(np.array([[1, 2, 0]], dtype=np.float32)), obs=pd.DataFrame(index=["a"]),
                   var=pd.DataFrame(index=["G3", "G1", "G2"]))
    b = ad.AnnData(sp.csr_matrix(np.array([[5, 7]], dtype=np.float32)), obs=pd.DataFrame(index=["b"]),
                   var=pd.DataFrame(index=["G1", "G4"]))
    outer = combine_profiles([a, b])
    assert list(outer.var_names) == ["G1", "G2", "G3", "G4"] and list(outer.obs_names) == ["a", "b"]
    assert sp.isspmatrix_csr(outer.X) and outer.X.dtype == np.float32
    np.testing.assert_array_equal(outer.X.toarray(), [[2, 0, 1, 0], [5, 0, 0, 7]])  # absent gene: 0
    inner = combine_profiles([a, b], join="inner")
    assert list(inner.var_names) == ["G1"]
    np.testing.assert_array_equal(inner.X.toarray(), [[2], [5]])
    assert combine_profiles([]).n_obs == 0
    with pytest.raises(InputError, match="join"):
        combine_profiles([a], join="left")
