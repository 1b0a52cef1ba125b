"""Issue 15, item 1: one policy for impossible requests (config key ``impossible_requests``).

Config-level contradictions stop ``snakemake -n`` naming the key; data-level ones stop the first
rule that can see them (``split_types``) with one line, no traceback and no output; with
``impossible_requests: reduce`` the reduced value is written into the results and logged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workflow_utils import make_workdir, snakemake

pytestmark = pytest.mark.workflow

SPLITS = ["results/bulk/splits/types.tsv", "results/bulk/splits/samples.tsv", "results/bulk/patients.tsv"]
SHORT = """
pretrain: {epochs: 1, batch_size: 64, patience: 1}
siamese: {iterations: 4, val_every: 2, val_tasks: 20}
evaluation: {n_tasks: 50}
"""


def _dry(work, yaml_text):
    (work / "extra.yaml").write_text(yaml_text)
    return snakemake(work, "-n", "--configfile", "config/config.yaml", "extra.yaml", check=False)


@pytest.mark.parametrize("yaml_text, key", [
    ("evaluation: {n_way: [12]}", "evaluation.n_way"),          # used to: traceback after all training
    ("evaluation: {n_way: [6, 8, 12]}", "evaluation.n_way"),    # used to: exit 0, 12-way rows missing
    ("siamese: {val_n_way: 12}", "siamese.val_n_way"),          # used to: clamped to 10 with a warning
    ("markers: {experiments: [tcga19], selection: {n_way: 11}}", "markers.selection.n_way"),  # silent clamp
])
def test_config_contradictions_stop_the_dry_run(tmp_path, yaml_text, key):
    proc = _dry(make_workdir(tmp_path / "w"), yaml_text)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"config key '{key}'" in out and "splits.n_test_types gives experiment" in out, out[-2000:]
    assert "impossible_requests: reduce" in out
    assert "Traceback" not in out


def test_reduce_is_explicit_and_allowed_by_the_dry_run(tmp_path):
    proc = _dry(make_workdir(tmp_path / "w"), "impossible_requests: reduce\nevaluation: {n_way: [6, 12]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _dry(make_workdir(tmp_path / "w2"), "impossible_requests: sometimes")
    assert proc.returncode != 0 and "config key 'impossible_requests'" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def bulk_dir(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("impossible"))
    snakemake(work, *SPLITS)
    return work


def test_too_many_test_types_stop_split_types(bulk_dir):
    """splits.n_test_types: 30 with the demo's 20 shared types: used to exit 0 with 20 test types and
    tcga9/14/19 silently the same experiment."""
    (bulk_dir / "n30.yaml").write_text("splits: {n_test_types: 30}\nevaluation: {n_way: [6]}\n"
                                       "siamese: {val_n_way: 6}\n")
    proc = snakemake(bulk_dir, *SPLITS, "--configfile", "config/config.yaml", "n30.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("ERROR in rule split_types: config key 'splits.n_test_types': only 20 cancer types occur in "
            "both cohorts, 30 test types requested") in out, out[-3000:]
    assert "Traceback" not in out
    assert not (bulk_dir / "results/bulk/splits/types.tsv").exists()  # no partial output

    (bulk_dir / "n30r.yaml").write_text("splits: {n_test_types: 30}\nevaluation: {n_way: [6]}\n"
                                        "siamese: {val_n_way: 6}\nimpossible_requests: reduce\n")
    snakemake(bulk_dir, *SPLITS, "--configfile", "config/config.yaml", "n30r.yaml")
    types = pd.read_csv(bulk_dir / "results/bulk/splits/types.tsv", sep="\t")
    test = types[(types["experiment"] == "tcga9") & (types["role"] == "test")]
    assert (test["n_types_requested"] == 30).all() and (test["n_types"] == 20).all()
    log = (bulk_dir / "results/logs/bulk/split_types.log").read_text()
    assert "config key 'splits.n_test_types'" in log
    assert "tcga9: 30 test types requested, 20 used" in log


def _stale_checkpoint(path):
    """A valid Siamese checkpoint of other settings (another gene count, lr, iterations)."""
    from oncoshot.training import train_siamese

    rng = np.random.default_rng(0)
    X = rng.gamma(2.0, 1.0, size=(40, 160)).astype(np.float32)
    y = np.repeat([f"t{i}" for i in range(4)], 10)
    path.parent.mkdir(parents=True, exist_ok=True)
    train_siamese(X, y, iterations=2, batch_size=8, lr=1e-3, val_every=1, seed=0, device="cpu",
                  checkpoint_path=path, log=lambda s: None)


def test_reduced_n_way_is_written_into_the_results(bulk_dir):
    # issue 15 item 5: a checkpoint left by a run of other settings is set aside by the rerun
    ckpt = bulk_dir / "results/models/tcga9/siamese_transfer.ckpt"
    _stale_checkpoint(ckpt)
    stale = ckpt.read_bytes()
    (bulk_dir / "reduce.yaml").write_text(SHORT + "impossible_requests: reduce\nevaluation: {n_way: [6, 12], n_tasks: 50}\n"
                                          "siamese: {iterations: 4, val_every: 2, val_tasks: 20, val_n_way: 12}\n")
    snakemake(bulk_dir, "results/evaluation/oneshot/tcga9.tsv", "--configfile", "config/config.yaml", "reduce.yaml")
    res = pd.read_csv(bulk_dir / "results/evaluation/oneshot/tcga9.tsv", sep="\t")
    assert sorted(set(zip(res["n_way_requested"], res["n_way"]))) == [(6, 6), (12, 10)]
    hist = pd.read_csv(bulk_dir / "results/models/tcga9/siamese_transfer_history.tsv", sep="\t")
    assert (hist["val_n_way"] == 10).all() and (hist["val_n_way_requested"] == 12).all()
    log = (bulk_dir / "results/logs/evaluation/oneshot_tcga9.log").read_text()
    assert "config key 'evaluation.n_way': 12 requested but run 'tcga9' has only 10 test types; reduced to 10" in log
    train_log = (bulk_dir / "results/logs/models/tcga9/train_siamese_transfer.log").read_text()
    assert f"checkpoint {ckpt.relative_to(bulk_dir)} is stale (n_genes: 160 there" in train_log, train_log[-2000:]
    assert (bulk_dir / "results/models/tcga9/siamese_transfer.ckpt.stale").read_bytes() == stale
    assert not ckpt.exists()  # the finished run removed its own checkpoint
