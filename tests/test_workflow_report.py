"""Workflow test: `snakemake --report` on the whole demo (the shared demo run of ``tests/conftest.py``:
every target, shipped config) gathers every
figure and the key tables, embedded byte for byte, in one category per stage, with captions that
render (Jinja + reStructuredText) and state the paper's numbers."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import yaml

from workflow_utils import REPO, snakemake

pytestmark = pytest.mark.workflow

DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())
BULK, ONESHOT, MARKERS, SC, MODEL, PREDICT = (
    "1. Bulk data", "2. One-shot classification", "3. Marker genes", "4. Single-cell hallmarks",
    "5. Hallmark model", "6. Your samples (one-shot prediction)")
STUDIES = ["Data_Demo2020_Breast", "Data_Demo2021_Brain", "Data_Demo2022_Breast"]

# path under results/ -> (category, subcategory)
FIGURES = {
    "evaluation/fig3a_primary.png": (ONESHOT, "N-way accuracy"),
    "evaluation/fig3b_metastatic.png": (ONESHOT, "N-way accuracy"),
    "evaluation/training_curves.png": (ONESHOT, "Training"),
    "evaluation/cnn_primary_to_met/confusion.png": (ONESHOT, "Primary-trained CNN on metastases"),
    **{f"markers/{e}/{f}.png": (MARKERS, f"{e} markers") for e in ("tcga19", "met500")
       for f in ("forward_selection", "tsne_train", "tsne_test", "heatmap")},
    "markers/primary_vs_metastatic/gnb_accuracy.png": (MARKERS, "Primary vs metastatic"),
    "markers/primary_vs_metastatic/tsne_top100.png": (MARKERS, "Primary vs metastatic"),
    "markers/primary_vs_metastatic/tsne_top20.png": (MARKERS, "Primary vs metastatic"),
    **{f"singlecell/qc/{s}_qc.png": (SC, "Cell QC") for s in STUDIES},
    "singlecell/labels/otsu_histograms.png": (SC, "Hallmark labels and synthetic bulk"),
    "hallmarks/cv_auroc.png": (MODEL, "Training and validation"),
    "hallmarks/activity_by_type.png": (MODEL, "Hallmark activity of the bulk samples"),
    "hallmarks/primary_vs_metastatic.png": (MODEL, "Hallmark activity of the bulk samples"),
    "predict/example/probabilities.png": (PREDICT, "example"),
}
TABLES = {
    "bulk/filtered/filter_counts.tsv": (BULK, "Preprocessing"),
    "bulk/labelled/tcga_labels.tsv": (BULK, "Preprocessing"),
    "bulk/labelled/met500_labels.tsv": (BULK, "Preprocessing"),
    "bulk/splits/types.tsv": (BULK, "Preprocessing"),
    "bulk/patients.tsv": (BULK, "Preprocessing"),
    "bulk/harmonised/met500_libraries.tsv": (BULK, "Preprocessing"),
    "evaluation/oneshot_results.tsv": (ONESHOT, "N-way accuracy"),
    "evaluation/cnn_primary_to_met/accuracy.tsv": (ONESHOT, "Primary-trained CNN on metastases"),
    **{f"models/{e}/cnn_history.tsv": (ONESHOT, "Training")
       for e in ("tcga9", "tcga14", "tcga19", "met500", "cnn_primary_to_met")},
    **{f"markers/{e}/{f}.tsv": (MARKERS, f"{e} markers") for e in ("tcga19", "met500")
       for f in ("forward_selection", "markers")},
    "markers/primary_vs_metastatic/gnb_accuracy.tsv": (MARKERS, "Primary vs metastatic"),
    "markers/enrichment.tsv": (MARKERS, "Overlap and hallmark enrichment"),
    "markers/overlap.tsv": (MARKERS, "Overlap and hallmark enrichment"),
    **{f"singlecell/qc/{s}_summary.tsv": (SC, "Cell QC") for s in STUDIES},
    "singlecell/labels/thresholds.tsv": (SC, "Hallmark labels and synthetic bulk"),
    "singlecell/synthetic_bulk_summary.tsv": (SC, "Hallmark labels and synthetic bulk"),
    "hallmarks/model_history.tsv": (MODEL, "Training and validation"),
    "hallmarks/cv_summary.tsv": (MODEL, "Training and validation"),
    "hallmarks/heldout_metrics.tsv": (MODEL, "Training and validation"),
    "hallmarks/bulk_activity.tsv": (MODEL, "Hallmark activity of the bulk samples"),
    "hallmarks/primary_vs_metastatic.tsv": (MODEL, "Hallmark activity of the bulk samples"),
    "predict/example/predictions.tsv": (PREDICT, "example"),
    "predict/example/hallmarks.tsv": (PREDICT, "example"),
}


def embedded_json(html: str, name: str, script_id: str):
    """The JSON the Snakemake 9 HTML report embeds as ``<script id="..."> var <name> = ...;``
    (results, categories, workflow_desc)."""
    m = re.search(rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert m, f"no '{name}' in the report"
    return json.loads(m.group(1))


def decoded(data_uri: str) -> bytes:
    header, _, payload = data_uri.partition(";base64,")
    assert header.startswith("data:"), header[:60]
    return base64.b64decode(payload)


@pytest.fixture(scope="module")
def report(demo_run):
    work = demo_run  # the report only reads the run's outputs and adds results/report.html
    # exactly as the README says: no --cores (a rule whose threads need the core count would fail)
    snakemake(work, "--report", "results/report.html", cores=None)
    path = work / "results/report.html"
    html = path.read_text(encoding="utf-8")
    return dict(work=work, html=html, size=path.stat().st_size, results=embedded_json(html, "results", "results"),
                categories=embedded_json(html, "categories", "categories"),
                description=embedded_json(html, "workflow_desc", "workflow-desc"))


def where(report, path: str) -> tuple[str, str]:
    hits = [(c, s) for c, subs in report["categories"].items() for s, paths in subs.items() if path in paths]
    assert len(hits) == 1, (path, hits)
    return hits[0]


def test_one_category_per_stage_and_a_workflow_description(report):
    assert report["size"] > 500_000  # the figures are embedded, not linked
    assert list(sorted(report["categories"])) == [BULK, ONESHOT, MARKERS, SC, MODEL, PREDICT]
    desc = report["description"]
    assert "CancerSiamese" in desc and "OncoMark" in desc
    assert "simulated" in desc and "not" in desc and "the paper" in desc  # the demo is said to be simulated
    for cat in (BULK, ONESHOT, MARKERS, SC, MODEL, PREDICT):  # links to every category
        assert f">{cat}</a>" in desc


@pytest.mark.parametrize("kind", ["figures", "tables"])
def test_every_registered_item_is_embedded_byte_for_byte_in_its_category(report, kind):
    expected = FIGURES if kind == "figures" else TABLES
    for rel, (cat, sub) in expected.items():
        key = f"results/{rel}"
        assert key in report["results"], f"{key} missing from the report"
        entry = report["results"][key]
        assert decoded(entry["data_uri"]) == (report["work"] / key).read_bytes(), key
        assert entry["mime_type"] == ("image/png" if kind == "figures" else "text/tab-separated-values")
        assert where(report, key) == (cat, sub)


def test_every_figure_the_workflow_writes_is_in_the_report_once(report):
    pngs = {str(p.relative_to(report["work"])) for p in (report["work"] / "results").rglob("*.png")}
    assert len(pngs) == len(FIGURES)
    assert pngs <= set(report["results"]), sorted(pngs - set(report["results"]))
    # one entry per figure: the SVG twins are not registered
    assert not [p for p in report["results"] if p.endswith(".svg")]
    assert set(report["results"]) == {f"results/{p}" for p in (*FIGURES, *TABLES)}


def test_items_are_labelled_uniquely_within_their_subcategory(report):
    # the report lists a subcategory as a table keyed by the labels: duplicates would hide items
    for cat, subs in report["categories"].items():
        for sub, paths in subs.items():
            labels = [tuple(report["results"][p]["labels"].items()) for p in paths]
            assert all(labels), (cat, sub)
            assert len(set(labels)) == len(labels), (cat, sub, labels)
    qc = report["results"]["results/singlecell/qc/Data_Demo2021_Brain_qc.png"]["labels"]
    assert qc == {"result": "QC scatter", "study": "Data_Demo2021_Brain"}
    assert report["results"]["results/bulk/labelled/met500_labels.tsv"]["labels"]["result"].endswith("met500")


def test_captions_render_and_compare_with_the_paper(report):
    res = report["results"]
    for path, entry in res.items():
        cap = entry["caption"]
        assert len(re.sub(r"<[^>]+>", "", cap)) > 250, path  # a real explanation, not a title
        assert "system-message" not in cap, (path, cap)  # reStructuredText errors
        assert "{{" not in cap and "{%" not in cap, path  # Jinja rendered
    cap = {p: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", e["caption"])) for p, e in res.items()}
    fig3a = cap["results/evaluation/fig3a_primary.png"]
    assert all(v in fig3a for v in ("89.67", "87.32", "84.59")) and "dashed" in fig3a
    assert f"{DEMO['evaluation']['n_tasks']} tasks per N" in fig3a  # the config value, rendered through Jinja
    assert "63.46" in cap["results/evaluation/fig3b_metastatic.png"]
    assert "83.33" in cap["results/evaluation/cnn_primary_to_met/confusion.png"]
    assert "82.38" in cap["results/markers/tcga19/forward_selection.png"]
    assert "24 genes" in cap["results/markers/overlap.tsv"]
    hm = DEMO["hallmark_model"]
    assert f"{hm['cv_folds']}-fold stratified, repeated {hm['cv_repeats']}" in cap["results/hallmarks/cv_auroc.png"]
    # wildcard-dependent captions name their wildcard value
    assert "tcga19" in cap["results/markers/tcga19/heatmap.png"]
    assert "met500 markers" in cap["results/markers/met500/heatmap.png"]
    brain = cap["results/singlecell/qc/Data_Demo2021_Brain_qc.png"]
    assert "Data_Demo2021_Brain" in brain and "tissue Brain" in brain
    assert "held-out study" in cap["results/singlecell/qc/Data_Demo2022_Breast_qc.png"]
    assert "AIM" in cap["results/hallmarks/primary_vs_metastatic.png"]
