"""Workflow test: 3CA studies as they are published, through the rules download → extract_study →
read_study → qc_cells. A study whose name has spaces and a non-ASCII letter, served as a tar.gz
with a '/' root member and a separate plain Meta-data .csv (metadata_url, sha256-pinned), reads end
to end; a study whose archive is a zip named .tar.gz reads too; a broken study fails with one error
naming the file and the problem, and leaves no output."""

from __future__ import annotations

import hashlib
import zipfile

import pandas as pd
import pytest
import yaml

from test_threeca import KIM_CELLS, KIM_META, KIM_NORMAL, gao_study, kim_study, tar_with_root
from workflow_utils import make_workdir, snakemake

pytestmark = pytest.mark.workflow

GOOD = "Data_Kürten2021_Head and Neck"
ZIPPED = "Data_Gao2021_Breast"
BAD = "Data_Bad2020_Lung"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threeca_wf")
    work = make_workdir(tmp / "work")
    data = tmp / "3ca data"
    data.mkdir()
    good = kim_study(tmp / "src", name=GOOD, meta=False)
    tar_with_root(good, data / f"{GOOD}.tar.gz", GOOD)
    (data / "Meta-data_Kürten2021_Head and Neck.csv").write_text(KIM_META)
    gao = gao_study(tmp / "src")
    with zipfile.ZipFile(data / f"{ZIPPED}.tar.gz", "w") as zf:  # a zip served under a .tar.gz name
        for p in sorted(gao.rglob("*")):
            if p.is_file():
                zf.write(p, arcname=p.relative_to(gao).as_posix())
    bad = kim_study(tmp / "src", name=BAD, meta=False)
    (bad / "Exp_data_TPM.mtx").write_bytes((bad / "Exp_data_UMIcounts.mtx").read_bytes())
    tar_with_root(bad, data / f"{BAD}.tar.gz", BAD)
    meta_url = str(data / "Meta-data_Kürten2021_Head and Neck.csv")
    extra = {
        "singlecell": {
            "studies": [
                {"name": GOOD, "url": str(data / f"{GOOD}.tar.gz"), "metadata_url": meta_url, "role": "train"},
                {"name": ZIPPED, "url": str(data / f"{ZIPPED}.tar.gz"), "role": "train"},
                {"name": BAD, "url": str(data / f"{BAD}.tar.gz"), "role": "validation"},
            ],
            "qc": {"min_genes": 1, "max_genes": 100, "max_mito_fraction": 0.9, "keep_cell_types": []},
        },
        "checksums": {meta_url: hashlib.sha256(KIM_META.encode()).hexdigest()},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(extra, allow_unicode=True))
    proc = snakemake(work, f"results/singlecell/qc/{GOOD}_summary.tsv", f"results/singlecell/qc/{ZIPPED}_summary.tsv",
                     f"results/singlecell/studies/{BAD}.h5ad", "--keep-going",
                     "--configfile", "config/config.yaml", "extra.yaml", check=False)
    return work, proc


def test_names_with_spaces_and_umlaut_read_end_to_end(run):
    work, proc = run
    summary = pd.read_csv(work / f"results/singlecell/qc/{GOOD}_summary.tsv", sep="\t")
    assert summary["study"].tolist() == [GOOD] and summary["technology"].tolist() == ["all"]
    assert summary["n_cells"].tolist() == [len(KIM_CELLS)]
    n_normal_cells = sum(s in KIM_NORMAL for _, s, _ in KIM_CELLS)
    assert summary["dropped_normal_sample"].tolist() == [n_normal_cells]
    assert summary["normal_filter"].tolist() == ["applied: source, cancer_type, sample_primary_met"]
    log = (work / f"results/logs/singlecell/extract_{GOOD}.log").read_text()
    assert "metadata_archive/Meta-data.csv" in log


def test_zip_named_tar_gz_and_no_metadata_is_reported(run):
    work, _ = run
    summary = pd.read_csv(work / f"results/singlecell/qc/{ZIPPED}_summary.tsv", sep="\t")
    assert summary["normal_filter"].tolist() == ["no metadata"]
    qc_log = (work / f"results/logs/singlecell/qc_{ZIPPED}.log").read_text()
    assert "normal-sample filter not applied (no metadata" in qc_log
    read_log = (work / f"results/logs/singlecell/read_{ZIPPED}.log").read_text()
    assert "5 of 5 gene symbols were quoted" in read_log
    extract_log = (work / f"results/logs/singlecell/extract_{ZIPPED}.log").read_text()
    assert "content is a zip archive" in (work / f"results/logs/download/scrna/{ZIPPED}.tar.gz.log").read_text()
    assert "extracted" in extract_log


def test_broken_study_fails_clearly_and_leaves_no_output(run):
    work, proc = run
    assert proc.returncode != 0
    log = (work / f"results/logs/singlecell/read_{BAD}.log").read_text()
    assert "2 expression matrix" in log and "Exp_data_TPM.mtx" in log and "Exp_data_UMIcounts.mtx" in log
    assert f"raw/{BAD}" in log
    assert not (work / f"results/singlecell/studies/{BAD}.h5ad").exists()
    assert not list((work / "results/singlecell/studies").glob(f"*{BAD}*"))
