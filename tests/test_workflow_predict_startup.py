"""Issue 15, item 2: prediction jobs are checked at start-up (``snakemake -n``) for everything
knowable without the models, and an unknown job name lists the configured jobs. Dry runs only."""

from __future__ import annotations

import shutil

import pytest

from workflow_utils import REPO, make_workdir, snakemake

pytestmark = pytest.mark.workflow

EXAMPLE = REPO / "resources" / "predict_example"


def _job(support="resources/predict_example/support.tsv", queries="resources/predict_example/queries.h5ad",
         labels="resources/predict_example/support_labels.tsv", query_labels="null", extra=""):
    return f"""
predict:
  mine:
    model: tcga19
    support: {{path: {support}{extra}}}
    support_labels: {labels}
    queries: {{path: {queries}, units: fpkm, gene_ids: symbol}}
    query_labels: {query_labels}
"""


def _dry(work, yaml_text, *targets):
    (work / "job.yaml").write_text(yaml_text)
    proc = snakemake(work, "-n", *targets, "--configfile", "config/config.yaml", "job.yaml", check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_good_job_plans(tmp_path):
    work = make_workdir(tmp_path / "w")
    rc, out = _dry(work, _job(), "results/predict/mine/predictions.tsv")
    assert rc == 0, out[-2000:]
    assert "predict_unknown_job" not in out  # the catch-all rule never matches a configured job
    (work / "job.yaml").write_text(_job())
    proc = snakemake(work, "-n", "results/predict/mine/predictions.tsv", "results/predict/example/hallmarks.tsv",
                     "--strict-dag-evaluation", "functions", "--configfile", "config/config.yaml", "job.yaml",
                     check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]


def test_unknown_job_lists_the_configured_jobs(tmp_path):
    """Used to: Snakemake's bare MissingRuleException."""
    work = make_workdir(tmp_path / "w")
    rc, out = _dry(work, _job(), "results/predict/mien/predictions.tsv")
    assert rc != 0
    assert "unknown prediction job 'mien'" in out and "configured jobs: ['example', 'mine']" in out, out[-2000:]
    assert "MissingRuleException" not in out


def test_xlsx_query_fails_the_dry_run(tmp_path):
    """Used to: 21 jobs planned, the models and hallmark chain trained, then the job failed."""
    work = make_workdir(tmp_path / "w")
    (work / "data").mkdir()
    (work / "data/queries.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    rc, out = _dry(work, _job(queries="data/queries.xlsx"), "results/predict/mine/predictions.tsv")
    assert rc != 0
    assert ("config key 'predict.mine.queries.path': data/queries.xlsx: unknown format: expected .h5ad, .tsv, "
            ".txt or .csv") in out, out[-2000:]
    assert "Job stats" not in out  # nothing planned


@pytest.mark.parametrize("case, key, problem", [
    ("missing", "predict.mine.support.path", "data/nope.tsv: file does not exist"),
    ("separator", "predict.mine.support.orientation", "genes_x_samples: expected a header line"),
    ("label_column", "predict.mine.support_labels", "column(s) ['type'] not in the header"),
    ("query_labels", "predict.mine.query_labels", "data/ql.tsv: file does not exist"),
    ("fake_h5ad", "predict.mine.queries.path", "named .h5ad but not an HDF5/AnnData file"),
])
def test_bad_job_files_fail_the_dry_run(tmp_path, case, key, problem):
    work = make_workdir(tmp_path / "w")
    data = work / "data"
    data.mkdir()
    kwargs = {}
    if case == "missing":
        kwargs["support"] = "data/nope.tsv"
    elif case == "separator":  # a tab-separated table named .csv: one header field
        shutil.copy(EXAMPLE / "support.tsv", data / "support.csv")
        kwargs["support"] = "data/support.csv"
    elif case == "label_column":
        (data / "labels.tsv").write_text("sample_id\tcancer\nS1\tx\n")
        kwargs["labels"] = "data/labels.tsv"
    elif case == "query_labels":
        kwargs["query_labels"] = "data/ql.tsv"
    elif case == "fake_h5ad":
        (data / "q.h5ad").write_text("sample\tg1\n")
        kwargs["queries"] = "data/q.h5ad"
    rc, out = _dry(work, _job(**kwargs), "results/predict/mine/predictions.tsv")
    assert rc != 0
    assert f"config key '{key}'" in out and problem in out, out[-2000:]
    assert "Traceback" not in out
