"""oncoshot.ucell equals pyucell.compute_ucell_scores (defaults) on real and edge-case data."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from oncoshot.errors import InputError
from oncoshot.ucell import HALLMARK_CODES, UCellWarning, parse_signature, read_gene_sets, ucell_scores

pyucell = pytest.importorskip("pyucell")

TOL = 1e-6


def reference(X, genes, signatures, **kwargs) -> pd.DataFrame:
    """pyucell's scores (n_jobs=1 only to avoid process start-up; results do not depend on it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.AnnData(
            X=X,
            obs=pd.DataFrame(index=[f"c{i}" for i in range(X.shape[0])]),
            var=pd.DataFrame(index=pd.Index([str(g) for g in genes])),
        )
    pyucell.compute_ucell_scores(adata, signatures, n_jobs=1, **kwargs)
    return adata.obs[[f"{k}_UCell" for k in signatures]].set_axis(list(signatures), axis=1)


def assert_same(X, genes, signatures, chunk_sizes=(1, 3, 1000), **kwargs):
    ref = reference(X, genes, signatures, **kwargs).to_numpy()
    for chunk in chunk_sizes:
        ours, _ = ucell_scores(X, genes, signatures, chunk_size=chunk, **kwargs)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours.to_numpy(), ref, atol=TOL, rtol=0)
    return ref


def random_counts(n_cells, n_genes, density=0.3, high=6, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, high, size=(n_cells, n_genes)).astype(dtype)
    dense[rng.random((n_cells, n_genes)) > density] = 0
    return sp.csr_matrix(dense)


GENES = [f"G{i}" for i in range(40)]


# ---------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gene_sets(real_dir):
    return read_gene_sets(real_dir / "gene_sets" / "oncomark_hallmark_gene_sets.csv")


def read_genes_by_cells(path) -> tuple[sp.csr_matrix, list[str]]:
    table = pd.read_csv(path, sep="\t", index_col=0)
    return sp.csr_matrix(table.T.to_numpy(dtype=np.float32)), [str(g) for g in table.index]


@pytest.mark.real
def test_real_gene_sets(gene_sets):
    assert tuple(gene_sets) == HALLMARK_CODES
    sizes = {k: len(v) for k, v in gene_sets.items()}
    assert sizes == {"IA": 29, "TPI": 28, "GIM": 95, "SPS": 207, "AID": 38, "ERI": 24,
                     "RCD": 139, "EGS": 128, "DCE": 45, "AIM": 166}
    for symbols in gene_sets.values():
        assert all(s and s == s.strip() for s in symbols)
        assert len(set(symbols)) == len(symbols)


@pytest.mark.real
def test_real_breast_tumour_equals_pyucell(real_dir, gene_sets):
    X, genes = read_genes_by_cells(
        real_dir / "scrna_breast_copykat" / "copykat_breast10x_UMIcounts_genesxcells.tsv.gz"
    )
    assert X.shape == (302, 33694)
    ref = assert_same(X, genes, gene_sets, chunk_sizes=(1000, 7))
    assert np.isfinite(ref).all() and ref.max() > 0.05
    _, missing = ucell_scores(X, genes, gene_sets)
    assert dict(zip(missing["signature"], missing["n_missing"], strict=True))["IA"] == 1  # IL8


@pytest.mark.real
def test_real_oligodendroglioma_equals_pyucell(real_dir, gene_sets):
    X, genes = read_genes_by_cells(
        real_dir / "scrna_oligodendroglioma" / "oligodendroglioma_expression_downsampled.counts.matrix.gz"
    )
    assert X.shape == (184, 10338)
    assert_same(X, genes, gene_sets, chunk_sizes=(1000, 50))
    # TPM-like values as float64 (not all exactly representable in float32): distinct-value path
    table = pd.read_csv(
        real_dir / "scrna_oligodendroglioma" / "oligodendroglioma_expression_downsampled.counts.matrix.gz",
        sep="\t", index_col=0, nrows=3000,
    )
    X64 = table.T.to_numpy(dtype=np.float64) * (1 + 1e-12)
    assert_same(sp.csr_matrix(X64), list(table.index), gene_sets, chunk_sizes=(1000,))


# ---------------------------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------------------------


def test_ties_and_small_max_rank_straddling():
    # integers 1..3 on 40 genes: large tied groups straddling max_rank
    X = random_counts(30, 40, density=0.8, high=4, seed=1)
    sigs = {"a": GENES[:5], "b": GENES[10:30], "c": ["G3", "G3", "G7"]}  # duplicates count twice
    for max_rank in (5, 12, 17, 40):
        assert_same(X, GENES, sigs, max_rank=max_rank)


def test_all_zero_cells_and_empty_matrix():
    X = random_counts(12, 40, seed=2).tolil()
    X[[0, 5, 11], :] = 0
    X = X.tocsr()
    sigs = {"a": GENES[:8], "b": GENES[20:25]}
    ref = assert_same(X, GENES, sigs, max_rank=20)
    assert (ref[[0, 5, 11]] == 0).all()
    ours, _ = ucell_scores(sp.csr_matrix((4, 40), dtype=np.float32), GENES, sigs, max_rank=20)
    assert (ours.to_numpy() == 0).all()


def test_missing_genes_are_imputed_and_reported():
    X = random_counts(20, 40, seed=3)
    sigs = {"half": ["G1", "NOPE1", "G2", "NOPE2"], "none": ["X1", "X2"], "all": GENES[:6]}
    assert_same(X, GENES, sigs, max_rank=15)
    ours, missing = ucell_scores(X, GENES, sigs, max_rank=15)
    assert (ours["none"] == 0).all()
    row = missing.set_index("signature").loc["half"]
    assert (row["n_genes"], row["n_present"], row["n_missing"]) == (4, 2, 2)
    assert row["missing_genes"] == "NOPE1,NOPE2"


def test_signature_larger_than_max_rank_and_max_rank_above_n_genes():
    X = random_counts(25, 40, density=0.6, seed=4)
    sigs = {"big": GENES[:30], "all": GENES, "degenerate": GENES[:19], "small": GENES[:3]}
    # max_rank 10 < 30 genes; 19 = 2*max_rank - 1 gives a zero denominator (score 0)
    ref = assert_same(X, GENES, sigs, max_rank=10)
    assert (ref[:, 2] == 0).all()
    assert_same(X, GENES, sigs, max_rank=1500)  # max_rank > number of genes


def test_chunk_size_does_not_matter_and_threads():
    X = random_counts(101, 40, seed=5)
    sigs = {"a": GENES[:10], "b": GENES[5:25]}
    results = [ucell_scores(X, GENES, sigs, max_rank=25, chunk_size=c)[0] for c in (1, 2, 33, 100, 101, 5000)]
    results.append(ucell_scores(X, GENES, sigs, max_rank=25, chunk_size=10, n_jobs=3)[0])
    for r in results[1:]:
        pd.testing.assert_frame_equal(r, results[0])


def test_negative_and_positive_suffixes():
    X = random_counts(30, 40, density=0.5, seed=6)
    sigs = {"mixed": ["G1+", "G2", "G3-", "G4-", " G5 "], "neg_only": ["G6-", "G7-"]}
    assert parse_signature(sigs["mixed"]) == (["G1", "G2", "G5"], ["G3", "G4"])
    assert_same(X, GENES, sigs, max_rank=20)
    assert_same(X, GENES, sigs, max_rank=20, w_neg=0.5)


def test_float_values_nan_inf_negative_and_explicit_zeros():
    rng = np.random.default_rng(7)
    dense = rng.gamma(1.0, 2.0, size=(15, 40)).astype(np.float32)
    dense[rng.random(dense.shape) < 0.4] = 0
    dense[0, :5] = [np.nan, np.inf, -1.5, -np.inf, 2.0]
    dense[1, 3:8] = -0.25  # negative values are ranked after the positive ones
    X = sp.csr_matrix(dense)
    # explicit stored zeros must not be ranked
    X.data[X.indices == 9] = 0.0
    sigs = {"a": GENES[:10], "b": GENES[2:6] + ["G20"]}
    assert_same(X, GENES, sigs, max_rank=12)
    assert_same(X, GENES, sigs, max_rank=1500)
    # the same with float64 values float32 cannot hold (distinct-value codes, negatives)
    X64 = X.astype(np.float64)
    finite = np.isfinite(X64.data) & (X64.data != 0)
    X64.data[finite] += 1e-10
    assert_same(X64, GENES, sigs, max_rank=12)


def test_input_types():
    X = random_counts(18, 40, seed=8)
    sigs = {"a": GENES[:10]}
    ref = reference(X, GENES, sigs, max_rank=20).to_numpy()
    for variant in (X.toarray(), X.toarray().astype(np.int64), X.tocsc(), X.astype(np.float64)):
        ours, _ = ucell_scores(variant, GENES, sigs, max_rank=20, chunk_size=7)
        np.testing.assert_allclose(ours.to_numpy(), ref, atol=TOL, rtol=0)
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"cell{i}" for i in range(18)]),
                       var=pd.DataFrame(index=GENES))
    ours, _ = ucell_scores(adata, None, sigs, max_rank=20)
    assert list(ours.index) == [f"cell{i}" for i in range(18)]
    np.testing.assert_allclose(ours.to_numpy(), ref, atol=TOL, rtol=0)
    # non-integer float64 values float32 cannot hold exactly -> distinct-value code path
    X64 = X.astype(np.float64)
    X64.data = X64.data + np.random.default_rng(9).random(X64.nnz) * 1e-9
    assert_same(X64, GENES, sigs, max_rank=20)


def test_repeated_entries_are_summed_like_pyucell():
    # a non-canonical CSR with (row 0, G1) stored twice: pyucell sees 1 + 2 = 3
    X = sp.csr_matrix(
        (np.array([1, 2, 2.5, 1, 4], np.float32), np.array([1, 1, 2, 3, 0]), np.array([0, 3, 5])),
        shape=(2, 40),
    )
    assert not X.has_canonical_format
    sigs = {"s": ["G1", "G2"], "t": ["G0", "G3"]}
    ref = reference(X.copy(), GENES, sigs, max_rank=3).to_numpy()
    ours, _ = ucell_scores(X, GENES, sigs, max_rank=3)
    np.testing.assert_allclose(ours.to_numpy(), ref, atol=TOL, rtol=0)
    assert not X.has_canonical_format  # the caller's matrix is left as it was


def test_duplicated_gene_symbols_use_last_column_like_pyucell():
    X = random_counts(20, 40, density=0.5, seed=10)
    genes = list(GENES)
    genes[30] = "G1"  # duplicate of column 1
    sigs = {"a": ["G1", "G2", "G3"]}
    with pytest.warns(UCellWarning, match="more than once"):
        ours, _ = ucell_scores(X, genes, sigs, max_rank=20)
    ref = reference(X, genes, sigs, max_rank=20)
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), atol=TOL, rtol=0)


def test_bad_arguments():
    X = random_counts(3, 40)
    with pytest.raises(InputError, match="gene symbols for 40 columns"):
        ucell_scores(X, GENES[:5], {"a": GENES[:2]})
    with pytest.raises(InputError, match="max_rank"):
        ucell_scores(X, GENES, {"a": GENES[:2]}, max_rank=0)
    with pytest.raises(InputError, match="not a string"):
        ucell_scores(X, GENES, {"a": "G1"})
    with pytest.warns(UCellWarning, match="empty"):
        ours, _ = ucell_scores(X, GENES, {"a": []})
    assert (ours["a"] == 0).all()


# ---------------------------------------------------------------------------------------------
# gene-set file
# ---------------------------------------------------------------------------------------------


def test_read_gene_sets(tmp_path):
    path = tmp_path / "sets.csv"
    path.write_text("IA,TPI, GIM\nA , B,C\nD,,C\n A,,\n,,E\n")
    assert read_gene_sets(path) == {"IA": ["A", "D"], "TPI": ["B"], "GIM": ["C", "E"]}
    with pytest.raises(InputError, match="not found"):
        read_gene_sets(tmp_path / "absent.csv")
    dup = tmp_path / "dup.csv"
    dup.write_text("IA,IA\nA,B\n")
    with pytest.raises(InputError, match="duplicated"):
        read_gene_sets(dup)


def test_signature_without_any_gene_is_an_error_or_explicit_nan():
    """Issue 15: a hallmark whose every signature gene is missing from a study was scored 0 for every
    cell with only a warning; now an error naming the study and hallmark, or (explicit) NaN."""
    from oncoshot.ucell import signatures_without_genes

    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(20, 30)).astype(np.float32)
    genes = [f"G{i}" for i in range(30)]
    sets = {"IA": ["G1", "G2", "G3"], "AIM": ["NOPE1", "NOPE2"]}
    scores, missing = ucell_scores(X, genes, sets, max_rank=10)
    assert (scores["AIM"] == 0).all()  # what UCell itself does: every cell 0
    with pytest.raises(InputError) as e:
        signatures_without_genes(scores, missing.copy(), study="Data_X_Breast", source="qc/Data_X_Breast.h5ad")
    assert_names = str(e.value)
    for part in ("qc/Data_X_Breast.h5ad", "study 'Data_X_Breast', hallmark 'AIM'", "none of its 2 signature genes",
                 "NOPE1", "singlecell.ucell.no_signature_genes: nan"):
        assert part in assert_names, assert_names
    miss = missing.copy()
    out = signatures_without_genes(scores, miss, study="Data_X_Breast", policy="nan")
    assert out["AIM"].isna().all() and not out["IA"].isna().any()
    assert out["IA"].equals(scores["IA"])
    assert miss.set_index("signature").loc["AIM", "scored"].startswith("nan")
    assert miss.set_index("signature").loc["IA", "scored"] == "ucell"
    with pytest.raises(InputError, match="no_signature_genes"):
        signatures_without_genes(scores, missing.copy(), study="x", policy="zero")
