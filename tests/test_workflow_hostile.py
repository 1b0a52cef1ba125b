"""Issue 15, item 4 through the workflow: a hallmark with no signature gene in a study, and a TCGA
project whose gene ids differ (errors name the configured source beside the cached copy)."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from workflow_utils import REPO, make_workdir, snakemake

pytestmark = pytest.mark.workflow

DEMO = REPO / "resources" / "demo"
STUDY = "Data_Demo2020_Breast"
SCORES = f"results/singlecell/scores/{STUDY}.tsv"


@pytest.fixture(scope="module")
def sc_dir(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("hostile_sc"))
    sets = pd.read_csv(DEMO / "scrna/hallmark_gene_sets.csv", dtype=str, keep_default_na=False)
    sets["AIM"] = [f"NOT_A_GENE{i}" if v else "" for i, v in enumerate(sets["AIM"])]
    (work / "data").mkdir()
    sets.to_csv(work / "data/sets.csv", index=False)
    (work / "sets.yaml").write_text("singlecell: {gene_sets_url: data/sets.csv}\n")
    return work


def test_hallmark_without_signature_genes_is_an_error(sc_dir):
    """Used to: every cell of the study scored 0 for AIM, with only a warning."""
    proc = snakemake(sc_dir, SCORES, "--configfile", "config/config.yaml", "sets.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (f"ERROR in rule score_hallmarks: results/singlecell/qc/{STUDY}.h5ad: study '{STUDY}', hallmark 'AIM': "
            "none of its") in out, out[-3000:]
    assert "results/downloads/genesets/hallmark_gene_sets.csv (configured: data/sets.csv)" in out
    assert "Traceback" not in out
    assert not (sc_dir / SCORES).exists()


def test_hallmark_without_signature_genes_nan_when_asked(sc_dir):
    (sc_dir / "nan.yaml").write_text("singlecell: {gene_sets_url: data/sets.csv, ucell: {no_signature_genes: nan}}\n")
    snakemake(sc_dir, SCORES, "--configfile", "config/config.yaml", "nan.yaml")
    scores = pd.read_csv(sc_dir / SCORES, sep="\t")
    assert scores["AIM"].isna().all() and scores["IA"].notna().all() and (scores["IA"] > 0).any()
    missing = pd.read_csv(sc_dir / f"results/singlecell/scores/{STUDY}_missing_genes.tsv", sep="\t")
    assert missing.set_index("signature").loc["AIM", "scored"] == "nan: no signature gene in the study"
    log = (sc_dir / f"results/logs/singlecell/score_{STUDY}.log").read_text()
    assert "none of the" in log and "AIM genes is in the study: scores are NaN" in log


def test_gene_mismatch_names_the_odd_file_and_its_configured_source(tmp_path):
    work = make_workdir(tmp_path / "w")
    data = work / "data"
    data.mkdir()
    for project in ("ACC", "BLCA", "BRCA"):
        text = gzip.open(DEMO / f"bulk/TCGA-{project}.star_fpkm.tsv.gz", "rt").read()
        if project == "BLCA":  # the second gene's id written as a second copy of the first gene
            lines = text.split("\n")
            first = lines[1].split("\t")[0]
            lines[2] = first.split(".")[0] + ".99\t" + lines[2].split("\t", 1)[1]
            text = "\n".join(lines)
        with gzip.open(data / f"TCGA-{project}.star_fpkm.tsv.gz", "wt") as fh:
            fh.write(text)
    (work / "tcga.yaml").write_text(
        "tcga:\n  projects: [ACC, BLCA, BRCA]\n  expression_url: data/TCGA-{project}.star_fpkm.tsv.gz\n"
        "  clinical_url: null\n")
    proc = snakemake(work, "results/bulk/harmonised/tcga.h5ad", "--configfile", "config/config.yaml", "tcga.yaml",
                     check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("ERROR in rule harmonise_tcga: results/downloads/tcga/TCGA-BLCA.star_fpkm.tsv.gz (configured: "
            "data/TCGA-BLCA.star_fpkm.tsv.gz): genes: project BLCA: 1 gene ids differ from the 2 projects that "
            "agree ('ACC', 'BRCA')") in out, out[-3000:]
    assert "1 duplicated gene id(s)" in out and "config key tcga.on_gene_mismatch: intersect" in out
    assert "Traceback" not in out
    assert not (work / "results/bulk/harmonised/tcga.h5ad").exists()
