"""One-shot prediction for a user's own samples (oncoshot.predict): reading, units, gene alignment
and its report, k-shot scoring against the network's own pair scores, bad inputs, the example."""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from oncoshot.errors import InputError
from oncoshot.hallmark_model import HallmarkMTL, Preprocessor, predict_hallmarks
from oncoshot.models import SiameseNet
from oncoshot.predict import (ExpressionSpec, align_genes, file_format, hallmark_input, harmonise_ids,
                              load_expression, pair_logits, predict_job, predictions_table, read_expression,
                              read_labels, type_probabilities)

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "resources" / "predict_example"

G = 200  # the CNN tower needs >= 151 genes
MODEL_GENES = [f"ENSG{i:011d}" for i in range(1, G + 1)]
SYMBOLS = pd.Series([f"SYM{i}" for i in range(1, G + 1)], index=MODEL_GENES, name="symbol")


def _write_tsv(df: pd.DataFrame, path: Path, index_name: str = "Ensembl_ID") -> Path:
    out = df.copy()
    out.index.name = index_name
    out.to_csv(path, sep="\t")
    return path


def _matrix(n_samples: int, seed: int, genes=MODEL_GENES, prefix: str = "S") -> pd.DataFrame:
    """genes × samples log2(FPKM+1)-like values."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(np.round(rng.gamma(2.0, 1.5, size=(len(genes), n_samples)), 3), index=list(genes),
                        columns=[f"{prefix}{j}" for j in range(n_samples)])


@pytest.fixture(scope="module")
def model():
    """An untrained network scores every pair about the same (tiny distances after the sigmoid
    tower); its head is scaled up so that pair probabilities spread over (0, 1)."""
    torch.manual_seed(0)
    net = SiameseNet(G).eval()
    with torch.no_grad():
        net.head[0].weight.mul_(3000.0)
        net.head[3].weight.mul_(10.0)
    return net


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------
def test_file_format_by_name():
    assert file_format("a/b.h5ad") == ("h5ad", None)
    assert file_format("x.tsv") == ("text", "\t") and file_format("x.TXT.gz") == ("text", "\t")
    assert file_format("x.csv.gz") == ("text", ",")
    with pytest.raises(InputError, match=r"x\.xlsx: file name: unknown format"):
        file_format("x.xlsx")


def test_every_format_and_orientation_reads_the_same_matrix(tmp_path):
    df = _matrix(4, 1, genes=MODEL_GENES[:5])
    tsv = _write_tsv(df, tmp_path / "g.tsv")
    with gzip.open(tmp_path / "g.tsv.gz", "wt") as fh:
        fh.write(tsv.read_text())
    df.T.to_csv(tmp_path / "s.csv", index_label="sample")
    ad.AnnData(X=df.T.to_numpy(np.float32), obs=pd.DataFrame(index=df.columns),
               var=pd.DataFrame(index=df.index)).write_h5ad(tmp_path / "s.h5ad")
    ad.AnnData(X=df.to_numpy(np.float32), obs=pd.DataFrame(index=df.index),
               var=pd.DataFrame(index=df.columns)).write_h5ad(tmp_path / "g.h5ad")
    reads = [read_expression(tsv), read_expression(tmp_path / "g.tsv.gz"),
             read_expression(tmp_path / "s.csv", "samples_x_genes"), read_expression(tmp_path / "s.h5ad"),
             read_expression(tmp_path / "g.h5ad", "genes_x_samples")]
    for r in reads:
        assert list(r.index) == list(df.index) and list(r.columns) == list(df.columns)
        np.testing.assert_allclose(r.to_numpy(), df.to_numpy(), rtol=1e-6)


def test_unit_conversion_to_the_model_units(tmp_path):
    log2 = _matrix(3, 2, genes=MODEL_GENES[:6])
    fpkm = np.exp2(log2) - 1.0
    paths = {"log2_fpkm1": _write_tsv(log2, tmp_path / "a.tsv"),
             "fpkm": _write_tsv(fpkm, tmp_path / "b.tsv"),
             "log2_fpkm0.001": _write_tsv(np.log2(fpkm + 0.001), tmp_path / "c.tsv")}
    for units, path in paths.items():
        out = load_expression(ExpressionSpec(str(path), units=units))
        np.testing.assert_allclose(out.to_numpy(), log2.to_numpy(), atol=1e-9, err_msg=units)
    counts = pd.DataFrame({"A": [10.0, 30.0, 60.0], "B": [0.0, 5.0, 15.0]}, index=MODEL_GENES[:3])
    out = load_expression(ExpressionSpec(str(_write_tsv(counts, tmp_path / "d.tsv")), units="counts"))
    want = np.log2(np.array([[1e5, 0.0], [3e5, 2.5e5], [6e5, 7.5e5]]) + 1.0)  # CPM by hand
    np.testing.assert_allclose(out.to_numpy(), want)
    with pytest.raises(InputError, match=r"b\.tsv: gene .*negative"):
        load_expression(ExpressionSpec(str(_write_tsv(-log2, tmp_path / "b.tsv")), units="fpkm"))


# ------------------------------------------------------------------------------------------------
# gene alignment
# ------------------------------------------------------------------------------------------------
def test_alignment_report_hand_example(tmp_path):
    genes = MODEL_GENES[:5]  # a five-gene "model"
    # the file: versioned ids, genes 1, 2 and 4 of the model, two extra genes, a PAR_Y twin
    raw = pd.DataFrame({"s1": [1.0, 2.0, 4.0, 7.0, 8.0, 0.0], "s2": [1.5, 2.5, 4.5, 7.5, 8.5, 0.0]},
                       index=[f"{genes[0]}.3", f"{genes[1]}.11", f"{genes[3]}.1", "ENSG99999999991.1",
                              "ENSG99999999992.2", f"{genes[0]}.3_PAR_Y"])
    path = _write_tsv(raw, tmp_path / "user.tsv")
    expr = load_expression(ExpressionSpec(str(path)))
    X, rep = align_genes(expr, genes, source=path, min_coverage=0.5, role="support")
    assert rep["n_model_genes"] == 5 and rep["n_found"] == 3 and rep["n_missing"] == 2
    assert rep["missing"] == [genes[2], genes[4]] and rep["coverage"] == pytest.approx(0.6)
    assert rep["n_input_genes"] == 5 and rep["n_extra_ignored"] == 2  # PAR_Y twin dropped first
    assert rep["file"] == "support" and rep["path"] == str(path)
    # model order, missing genes filled with 0 (log2(FPKM+1) = 0: not expressed)
    np.testing.assert_array_equal(X, np.array([[1, 2, 0, 4, 0], [1.5, 2.5, 0, 4.5, 0]], dtype=np.float32))
    # the same genes given by symbol, matched through the probe map
    by_symbol = pd.DataFrame(X.T[[0, 1, 3]], index=SYMBOLS[[genes[0], genes[1], genes[3]]].tolist(),
                             columns=["s1", "s2"])
    X2, rep2 = align_genes(by_symbol, genes, source="sym.tsv", gene_ids="symbol", symbols=SYMBOLS, min_coverage=0.5)
    np.testing.assert_array_equal(X2, X)
    assert rep2["missing"] == rep["missing"]


def test_low_coverage_is_an_error_naming_the_file_with_a_hint(tmp_path):
    expr = _matrix(3, 3, genes=MODEL_GENES[:150])
    with pytest.raises(InputError, match=r"q\.tsv: genes: only 150 of the model's 200 genes found \(75\.0%\), "
                                          r"below min_coverage 90%"):
        align_genes(expr, MODEL_GENES, source="q.tsv")
    X, rep = align_genes(expr, MODEL_GENES, source="q.tsv", min_coverage=0.7)
    assert rep["n_missing"] == 50 and not X[:, 150:].any()
    # a samples × genes file read as genes × samples: the hint says so
    wide = _matrix(3, 3).T
    with pytest.raises(InputError, match="is the orientation right"):
        align_genes(wide, MODEL_GENES, source="w.tsv")
    # symbols read as Ensembl ids: the hint names the other gene_ids
    sym = _matrix(3, 3, genes=SYMBOLS.tolist())
    with pytest.raises(InputError, match="set gene_ids: symbol"):
        align_genes(sym, MODEL_GENES, source="s.tsv", symbols=SYMBOLS)


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------
def test_duplicated_genes_and_samples_are_errors_naming_the_file(tmp_path):
    df = _matrix(2, 4, genes=MODEL_GENES[:3])
    df.index = [f"{MODEL_GENES[0]}.1", f"{MODEL_GENES[0]}.2", MODEL_GENES[1]]  # same gene, two versions
    path = _write_tsv(df, tmp_path / "dup.tsv")
    with pytest.raises(InputError, match=rf"dup\.tsv: gene ids: 1 duplicated gene ids .*{MODEL_GENES[0]}"):
        load_expression(ExpressionSpec(str(path)))
    sym = _matrix(2, 4, genes=["TP53", "TP53 ", "EGFR"])
    with pytest.raises(InputError, match=r"s\.tsv: gene ids: 1 duplicated gene symbols: 'TP53'"):
        harmonise_ids(sym, "s.tsv", "symbol")
    (tmp_path / "dups.tsv").write_text("gene\tA\tA\n" + f"{MODEL_GENES[0]}\t1\t2\n")
    with pytest.raises(InputError, match=r"dups\.tsv: header: duplicated sample ids: 'A'"):
        read_expression(tmp_path / "dups.tsv")
    (tmp_path / "dupr.csv").write_text("sample,g1,g2\nA,1,2\nA,3,4\n")
    with pytest.raises(InputError, match=r"dupr\.csv: first column \(sample ids\): duplicated sample ids"):
        read_expression(tmp_path / "dupr.csv", "samples_x_genes")
    dup_h5 = ad.AnnData(X=np.ones((2, 2), np.float32), obs=pd.DataFrame(index=["a", "b"]),
                        var=pd.DataFrame(index=["TP53", "TP53"]))
    dup_h5.write_h5ad(tmp_path / "dup.h5ad")
    with pytest.raises(InputError, match=r"dup\.h5ad: gene ids: 1 duplicated gene symbols"):
        load_expression(ExpressionSpec(str(tmp_path / "dup.h5ad"), gene_ids="symbol"))


def test_malformed_text_files(tmp_path):
    (tmp_path / "nn.tsv").write_text(f"id\tA\tB\n{MODEL_GENES[0]}\t1\tx\n")
    with pytest.raises(InputError, match=rf"nn\.tsv: gene '{MODEL_GENES[0]}', sample 'B': non-numeric value 'x'"):
        read_expression(tmp_path / "nn.tsv")
    (tmp_path / "rag.tsv").write_text(f"id\tA\tB\n{MODEL_GENES[0]}\t1\n")
    with pytest.raises(InputError, match=r"rag\.tsv: rows: the data rows have 2 fields but the header has 3"):
        read_expression(tmp_path / "rag.tsv")
    (tmp_path / "na.tsv").write_text(f"id\tA\tB\n{MODEL_GENES[0]}\t1\tNA\n")
    with pytest.raises(InputError, match=r"na\.tsv: gene .* 'B': missing value"):
        load_expression(ExpressionSpec(str(tmp_path / "na.tsv")))
    with pytest.raises(InputError, match=r"none\.tsv: file not found"):
        read_expression(tmp_path / "none.tsv")


def test_label_tables(tmp_path):
    samples = ["S0", "S1", "S2"]
    (tmp_path / "l1.tsv").write_text("sample\tlabel\nS0\tA\n")
    with pytest.raises(InputError, match=r"l1\.tsv: column 'sample_id': missing from the support label table"):
        read_labels(tmp_path / "l1.tsv", samples, what="support label table")
    lab = read_labels(tmp_path / "l1.tsv", samples, sample_column="sample", type_column="label")
    assert lab.to_dict() == {"S0": "A"}
    (tmp_path / "l2.tsv").write_text("sample_id\ttype\nS0\tA\nS9\tB\nS1\tB\n")
    with pytest.raises(InputError, match=r"l2\.tsv: column 'sample_id': 1 sample\(s\) are not in the expression "
                                         r"matrix sup\.tsv: 'S9'"):
        read_labels(tmp_path / "l2.tsv", samples, matrix="sup.tsv")
    (tmp_path / "l3.tsv").write_text("sample_id\ttype\nS0\tA\nS0\tB\n")
    with pytest.raises(InputError, match=r"l3\.tsv: column 'sample_id': sample\(s\) listed with different labels"):
        read_labels(tmp_path / "l3.tsv", samples)
    (tmp_path / "l4.tsv").write_text("sample_id\ttype\nS2\t stomach \nS0\tliver\n")
    assert read_labels(tmp_path / "l4.tsv", samples).to_dict() == {"S0": "liver", "S2": "stomach"}


# ------------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------------
def test_k_shot_average_equals_hand_computation_with_the_network(model):
    rng = np.random.default_rng(5)
    Xs = rng.gamma(2.0, 1.5, size=(6, G)).astype(np.float32)
    Xq = rng.gamma(2.0, 1.5, size=(4, G)).astype(np.float32)
    types = ["liver", "stomach", "liver", "skin", "liver", "stomach"]  # k = 3, 2, 1
    logits = pair_logits(model, Xs, Xq, batch=5)  # small batches: several passes
    p, share = type_probabilities(logits, types)
    assert list(p.columns) == ["liver", "skin", "stomach"]
    with torch.no_grad():  # the whole network on each pair, P(same) = forward
        pair = np.array([[model(torch.from_numpy(Xq[[q]]), torch.from_numpy(Xs[[s]])).item() for s in range(6)]
                         for q in range(4)])
    for t in p.columns:
        cols = [i for i, x in enumerate(types) if x == t]
        np.testing.assert_allclose(p[t].to_numpy(), pair[:, cols].mean(axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(share.to_numpy(), p.to_numpy() / p.to_numpy().sum(axis=1, keepdims=True), rtol=1e-9)
    table = predictions_table([f"q{i}" for i in range(4)], p, share, min_probability=0.5)
    srt = np.sort(p.to_numpy(), axis=1)
    np.testing.assert_allclose(table["probability"], srt[:, -1])
    np.testing.assert_allclose(table["margin"], srt[:, -1] - srt[:, -2])
    assert list(table["predicted_type"]) == list(p.columns[np.argmax(p.to_numpy(), axis=1)])
    assert list(table["assigned_type"]) == [t if pr >= 0.5 else "unassigned"
                                            for t, pr in zip(table["predicted_type"], table["probability"])]


def test_probabilities_are_stable_in_log_space():
    logits = np.array([[-800.0, -790.0, 3.0], [-1000.0, -1000.0, -1000.0]])
    p, share = type_probabilities(logits, ["a", "a", "b"])
    assert np.all(np.isfinite(share.to_numpy())) and np.allclose(share.sum(axis=1), 1.0)
    assert share.loc[1, "a"] == pytest.approx(0.5)  # equal (tiny) probabilities: an even split
    assert p.loc[0, "b"] == pytest.approx(1 / (1 + np.exp(-3.0)))
    truth = pd.Series({"q0": "b"})
    table = predictions_table(["q0", "q1"], p, share, truth, min_probability=None)
    assert bool(table.loc[0, "correct"])
    assert pd.isna(table.loc[1, "correct"]) and pd.isna(table.loc[1, "true_type"])
    assert table.loc[1, "predicted_type"] == "a"  # exact tie: first type in sorted order


# ------------------------------------------------------------------------------------------------
# a whole job: TSV support, .h5ad queries
# ------------------------------------------------------------------------------------------------
def _job_files(tmp_path: Path):
    support = _matrix(6, 7, prefix="T")
    support.index = [f"{g}.{i % 7 + 1}" for i, g in enumerate(support.index)]  # versioned, GDC style
    sup = _write_tsv(support, tmp_path / "support.tsv")
    (tmp_path / "labels.tsv").write_text("sample_id\ttype\n" + "".join(
        f"T{j}\t{t}\n" for j, t in enumerate(["A", "A", "B", "B", "C"])))  # T5 unlabelled
    queries = _matrix(4, 8, prefix="Q")
    queries = queries.drop(index=MODEL_GENES[:10])  # ten model genes missing
    fpkm = np.exp2(queries) - 1.0
    adata = ad.AnnData(X=fpkm.T.to_numpy(np.float32), obs=pd.DataFrame(index=queries.columns),
                       var=pd.DataFrame(index=SYMBOLS[queries.index].tolist()))
    adata.write_h5ad(tmp_path / "queries.h5ad")
    (tmp_path / "qlabels.tsv").write_text("sample_id\ttype\nQ0\tA\nQ1\tZ\n")
    return sup, queries


def _hallmark_model():
    rng = np.random.default_rng(3)
    train = rng.gamma(2.0, 1.5, size=(20, 60))
    pre = Preprocessor(n_top=30).fit(train, SYMBOLS.tolist()[:55] + ["NOT_IN_BULK1", "NOT_IN_BULK2", "X3", "X4", "X5"])
    torch.manual_seed(1)
    return HallmarkMTL(len(pre.genes_)).eval(), pre


def test_predict_job_tsv_support_h5ad_queries(tmp_path, model):
    sup, queries = _job_files(tmp_path)
    hm = _hallmark_model()
    with pytest.warns(UserWarning, match=r"1 support sample\(s\) .* have no label .*'T5'"):
        res = predict_job(model, MODEL_GENES, ExpressionSpec(str(sup)), tmp_path / "labels.tsv",
                          ExpressionSpec(str(tmp_path / "queries.h5ad"), units="fpkm", gene_ids="symbol"),
                          symbols=SYMBOLS, hallmark=hm, query_labels=tmp_path / "qlabels.tsv",
                          min_coverage=0.9, min_probability=0.5)
    t = res.predictions
    assert list(t.columns) == ["sample_id", "predicted_type", "probability", "margin", "assigned_type",
                               "p_A", "p_B", "p_C", "share_A", "share_B", "share_C", "true_type", "correct"]
    assert list(t["sample_id"]) == ["Q0", "Q1", "Q2", "Q3"]
    P = t[["p_A", "p_B", "p_C"]].to_numpy()
    assert P.std() > 0.05  # the check below can tell types apart
    assert np.all((P >= 0) & (P <= 1)) and np.allclose(t[["share_A", "share_B", "share_C"]].sum(axis=1), 1)
    assert res.support_counts.to_dict() == {"A": 2, "B": 2, "C": 1}
    # independent recomputation: the aligned matrices by hand, the network's own pair probabilities
    sup_log = _matrix(6, 7, prefix="T").to_numpy(np.float32).T[:5]
    q_log = np.zeros((4, G), np.float32)
    q_log[:, 10:] = queries.to_numpy(np.float32).T
    with torch.no_grad():
        pa = torch.sigmoid(model.logits(torch.from_numpy(np.repeat(q_log, 5, 0)), torch.from_numpy(np.tile(sup_log, (4, 1)))))
    pa = pa.numpy().reshape(4, 5)
    np.testing.assert_allclose(P, np.column_stack([pa[:, :2].mean(1), pa[:, 2:4].mean(1), pa[:, 4]]), rtol=1e-4, atol=1e-6)
    assert t.loc[0, "true_type"] == "A" and t.loc[1, "true_type"] == "Z" and pd.isna(t.loc[2, "true_type"])
    # reports: the ten missing model genes of the queries, none for the support; hallmark genes by symbol
    m = res.missing
    sia = m[m["model"] == "siamese"]
    assert list(sia["file"]) == ["queries"] * 10 and list(sia["gene_id"]) == MODEL_GENES[:10]
    assert list(sia["symbol"]) == SYMBOLS[MODEL_GENES[:10]].tolist()
    a = res.alignment.set_index(["file", "model"])
    assert a.loc[("support", "siamese"), "n_found"] == G and a.loc[("queries", "siamese"), "n_missing"] == 10
    assert a.loc[("queries", "siamese"), "n_extra_ignored"] == 0
    hall = m[m["model"] == "hallmark"]
    hm_genes = set(hm[1].genes_)
    assert set(hall["symbol"]) == hm_genes - set(SYMBOLS[MODEL_GENES[10:55]])
    want = predict_hallmarks(*hm, np.exp2(queries.to_numpy().T) - 1, SYMBOLS[queries.index].tolist())
    np.testing.assert_allclose(res.hallmarks.drop(columns="sample_id").to_numpy(), want.to_numpy(), rtol=1e-5)
    assert list(res.hallmarks["sample_id"]) == ["Q0", "Q1", "Q2", "Q3"]


def test_hallmark_input_maps_ensembl_ids_to_symbols():
    expr = _matrix(2, 9, genes=MODEL_GENES[:3] + ["ENSG99999999999"])
    X, names = hallmark_input(expr, "ensembl", SYMBOLS)
    assert names == SYMBOLS[MODEL_GENES[:3]].tolist() + [""] and X.shape == (2, 4)


def test_predict_job_needs_two_support_types(tmp_path, model):
    sup, _ = _job_files(tmp_path)
    (tmp_path / "one.tsv").write_text("sample_id\ttype\nT0\tA\nT1\tA\n")
    with pytest.raises(InputError, match=r"one\.tsv: column 'type': 1 type\(s\) among the support samples"):
        predict_job(model, MODEL_GENES, ExpressionSpec(str(sup)), tmp_path / "one.tsv",
                    ExpressionSpec(str(sup)), symbols=SYMBOLS)


# ------------------------------------------------------------------------------------------------
# the committed example is what the documented script writes
# ------------------------------------------------------------------------------------------------
def test_example_files_are_reproducible(tmp_path):
    from oncoshot.predict_example import make_example

    make_example(REPO / "resources" / "demo", tmp_path)
    for name in ("support.tsv", "support_labels.tsv", "query_labels.tsv", "README.md"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name
    new, old = ad.read_h5ad(tmp_path / "queries.h5ad"), ad.read_h5ad(EXAMPLE / "queries.h5ad")
    assert new.obs_names.equals(old.obs_names) and new.var.equals(old.var)
    np.testing.assert_array_equal(new.X, old.X)
    # what a user would see: the support in the GDC layout, the queries in FPKM by symbol
    sup = load_expression(ExpressionSpec(str(EXAMPLE / "support.tsv")))
    q = load_expression(ExpressionSpec(str(EXAMPLE / "queries.h5ad"), units="fpkm", gene_ids="symbol"))
    assert sup.shape[1] == 12 and q.shape[1] == 27 and sup.index.str.match(r"^ENSG\d{11}$").all()
    assert sum(p.stat().st_size for p in EXAMPLE.iterdir()) < 1_000_000


def test_predict_job_with_the_whitened_cosine_metric(tmp_path):
    """method: whitened_cosine — the metric module goes through the same job as a Siamese net; its
    per-pair probability is σ(a·cos + b) of the whitened embeddings (checked independently)."""
    from sklearn.metrics.pairwise import cosine_similarity

    from oncoshot.metric import fit_whitened_cosine

    train = _matrix(30, 11)
    labels = np.repeat(["u", "v", "w"], 10)
    metric, summary = fit_whitened_cosine(train.T.to_numpy(np.float32), labels, n_components=12)
    sup, _ = _job_files(tmp_path)
    with pytest.warns(UserWarning, match="have no label"):
        res = predict_job(metric, MODEL_GENES, ExpressionSpec(str(sup)), tmp_path / "labels.tsv",
                          ExpressionSpec(str(tmp_path / "queries.h5ad"), units="fpkm", gene_ids="symbol"),
                          symbols=SYMBOLS, min_coverage=0.9)
    t = res.predictions.set_index("sample_id")
    Xs, _ = align_genes(load_expression(ExpressionSpec(str(sup))), MODEL_GENES, source=sup,
                        gene_ids="ensembl", symbols=SYMBOLS, min_coverage=0.9)
    Xq, _ = align_genes(load_expression(ExpressionSpec(str(tmp_path / "queries.h5ad"), units="fpkm",
                                                       gene_ids="symbol")),
                        MODEL_GENES, source="q", gene_ids="symbol", symbols=SYMBOLS, min_coverage=0.9)
    with torch.no_grad():
        Es = metric.embed(torch.as_tensor(Xs, dtype=torch.float32)).double().numpy()
        Eq = metric.embed(torch.as_tensor(Xq, dtype=torch.float32)).double().numpy()
    p = 1 / (1 + np.exp(-(summary["scale"] * cosine_similarity(Eq, Es) + summary["bias"])))
    support_types = np.array(["A", "A", "B", "B", "C"])  # T5 has no label
    for qi, q in enumerate(t.index):
        for typ in "ABC":
            expected = p[qi, :5][support_types == typ].mean()
            assert t.loc[q, f"p_{typ}"] == pytest.approx(expected, rel=1e-4)


def test_orientation_hint_for_a_transposed_file_with_versioned_ids(tmp_path):
    """Issue 15: a samples × genes file with versioned Ensembl ids (ENSG….17) declared genes ×
    samples got no orientation hint (it worked only for unversioned ids)."""
    wide = _matrix(3, 3).T  # samples × genes
    wide.columns = [f"{g}.{i % 7 + 1}" for i, g in enumerate(wide.columns)]
    path = _write_tsv(wide, tmp_path / "wide.tsv", index_name="sample")
    expr = load_expression(ExpressionSpec(str(path), orientation="genes_x_samples"))
    with pytest.raises(InputError) as e:
        align_genes(expr, MODEL_GENES, source=path)
    msg = str(e.value)
    assert "wide.tsv: genes: only 0 of the model's 200 genes found" in msg
    assert "200 of the file's sample ids are model genes: is the orientation right" in msg, msg
    # declared right, it reads
    X, rep = align_genes(load_expression(ExpressionSpec(str(path), orientation="samples_x_genes")), MODEL_GENES,
                         source=path)
    assert rep["n_found"] == 200 and X.shape == (3, 200)
