"""benchmarks/gpu_check.py in its CPU dry mode (tiny sizes, the demo only planned): the table has its
columns and every part, the GPU-tagged rules of the workflow, and a projection that equals
measured seconds per unit × the full reproduction's units counted here independently from
config/full.yaml."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from workflow_utils import REPO

COLUMNS = ["part", "metric", "value", "unit", "measured_units", "measured_s", "full_units", "projected_s",
           "projected_h", "note"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.tsv"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--device", "cpu", "--threads", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.with_suffix(".md").read_text().startswith("| part")
    return pd.read_csv(out, sep="\t")


def _gpu_rules() -> set[str]:
    """Rules whose resources ask for gpu=1, read from the rule files."""
    rules = set()
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            if re.search(r"^\s+gpu=1,?\s*$", block, flags=re.M):
                rules.add(name)
    return rules


def _full_units() -> dict[tuple[str, str], int]:
    full = yaml.safe_load((REPO / "config/full.yaml").read_text())
    ev, si, mk = full["evaluation"], full["siamese"], full["markers"]
    models = {(r["model"], r["init"]) for r in ev["runs"]} | {(e, mk["init"]) for e in mk["experiments"]}
    n_types = {"tcga9": 9, "tcga14": 14, "tcga19": 19, "met500": full["splits"]["met500_n_train"]}
    return {
        ("siamese", "fp32_iterations"): len(models) * si["iterations"],
        ("siamese", "bf16_iterations"): len(models) * si["iterations"],
        ("siamese", "validation_passes"): len(models) * math.ceil(si["iterations"] / si["val_every"]),
        ("evaluation", "tasks"): ev["n_tasks"] * len(ev["n_way"]) * len(ev["runs"]),
        ("pretrain", "sample_epochs"): 9000 * 30,  # the script's defaults: ~9,000 TCGA samples x 30 epochs
        ("saliency", "pairs"): sum(mk["max_pairs_per_type"] * n_types[e] for e in mk["experiments"]),
    }


def test_columns_and_parts(table):
    assert list(table.columns) == COLUMNS
    assert set(table["part"]) == {"setup", "demo", "siamese", "agreement", "evaluation", "pretrain", "saliency",
                                  "total"}
    setup = table[table["part"] == "setup"].set_index("metric")["value"]
    assert setup["device"] == "cpu" and int(setup["seed"]) == yaml.safe_load(
        (REPO / "config/config.yaml").read_text())["seed"]


def test_demo_lists_exactly_the_gpu_tagged_rules(table):
    demo = table[(table["part"] == "demo") & table["metric"].str.endswith("_jobs")]
    jobs = dict(zip([m[: -len("_jobs")] for m in demo["metric"]], demo["value"].astype(int)))
    assert set(jobs) == _gpu_rules()
    assert {"pretrain_cnn", "train_siamese", "evaluate_oneshot", "marker_scores"} <= set(jobs)
    demo_cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert jobs["evaluate_oneshot"] == len(demo_cfg["evaluation"]["runs"])
    assert jobs["marker_scores"] == len(demo_cfg["markers"]["experiments"])


def test_projection_is_seconds_per_unit_times_full_units(table):
    expected = _full_units()
    proj = table[table["projected_s"].notna() & (table["part"] != "total")]
    assert {(p, m) for p, m in zip(proj["part"], proj["metric"])} == set(expected)
    for _, r in proj.iterrows():
        assert r["full_units"] == expected[(r["part"], r["metric"])], r["metric"]
        assert r["measured_units"] > 0 and r["measured_s"] > 0
        assert r["projected_s"] == pytest.approx(r["measured_s"] / r["measured_units"] * r["full_units"], rel=1e-3,
                                                 abs=0.1)
        assert r["projected_h"] == pytest.approx(r["projected_s"] / 3600, abs=1e-3)
        per_unit = 128 if r["metric"].endswith("_iterations") else 1  # Siamese: pairs/s, 128 pairs an iteration
        assert float(r["value"]) == pytest.approx(per_unit * r["measured_units"] / r["measured_s"], rel=0.02)
    # the total on the CPU adds the float32 Siamese (bf16 autocast is CUDA-only) and every other part
    parts = [("siamese", "fp32_iterations"), ("siamese", "validation_passes"), ("evaluation", "tasks"),
             ("pretrain", "sample_epochs"), ("saliency", "pairs")]
    want = sum(float(proj[(proj["part"] == p) & (proj["metric"] == m)]["projected_s"].iloc[0]) for p, m in parts)
    total = table[table["part"] == "total"].iloc[0]
    assert total["projected_s"] == pytest.approx(want, abs=0.5)


def test_cpu_precisions_agree_exactly(table):
    agree = table[table["part"] == "agreement"].set_index("metric")["value"]
    # on the CPU both runs are float32 from the same seed, so they are identical
    assert float(agree["max_rel_train_loss_diff"]) == 0 and float(agree["max_val_accuracy_diff"]) == 0
    assert agree["bf16_agrees_with_fp32"] == "yes"
