#!/usr/bin/env python
"""GPU readiness check (issue 14 item 3): the demo's GPU-tagged rules on the GPU, the network
throughputs at full size, and the projected time of the full reproduction — one table.

Parts (each with its own time budget, so that the whole check fits ``--budget-s``, 8 min on a GPU):

1. **demo** — ``snakemake --cores N`` on the embedded demo in a scratch copy of the workflow (empty
   ``results/``); the rules tagged ``resources: gpu=1`` are listed with their jobs and summed
   seconds (Snakemake's ``benchmark:`` files) and the device their logs name. ``--demo plan``
   (default with ``--device cpu``) only plans the run (``snakemake -n``) and lists the GPU-tagged
   jobs; ``--demo skip`` leaves the part out.
2. **siamese** — ``oncoshot.training.train_siamese`` at the full input size (``--genes`` 4,858,
   128-pair iterations, 19 simulated training types), float32 and with bf16 autocast; then both
   precisions trained from the same seed with validations, and their training losses and
   validation accuracies compared (agreement); one validation pass (1,000 10-way tasks) timed.
3. **evaluation** — the batched one-shot evaluation of ``evaluate_oneshot`` (every test sample
   embedded once, pairs scored from the cache) and its three 1-NN baselines, per task at N = 6, 8, 10.
4. **pretrain** — ``oncoshot.training.pretrain_cnn`` (15 % validation hold-out as the rule), seconds
   per sample-epoch.
5. **saliency** — ``oncoshot.markers.gene_scores`` (guided backpropagation on same-type pairs),
   seconds per pair.

Each timed part first runs a short calibration, then as many units as fit its budget (capped by
the full-size counts). Projection = measured seconds per unit × the full reproduction's units:
Siamese ``iterations`` (+ one validation every ``val_every``) per model of ``config/full.yaml``,
``n_tasks`` × 3 N per evaluation run, ``--full-pretrain-samples`` × ``--full-pretrain-epochs`` for
the CNN pretraining, ``max_pairs_per_type`` × training types per marker experiment.

Output: one TSV (``--out``; columns ``COLUMNS``) and the same table as Markdown next to it (``.md``).

    bash benchmarks/gpu_check.sh                       # on a CUDA machine, ≤ 8 min
    python benchmarks/gpu_check.py --device cpu --out results/benchmarks/gpu_check_cpu.tsv   # dry mode
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(HERE))
from workflow_runs import job_blocks, local_snakemake_env, scratch_workflow  # noqa: E402

from oncoshot.markers import gene_scores  # noqa: E402
from oncoshot.models import CNNTower  # noqa: E402
from oncoshot.oneshot import (correct, embed_samples, make_tasks, nn_cosine, nn_euclidean,  # noqa: E402
                              nn_pearson, score_tasks_from_embeddings)
from oncoshot.training import make_siamese, pick_device, pretrain_cnn, set_seed, train_siamese  # noqa: E402
from oneshot_eval_benchmark import simulate  # noqa: E402  (same simulated cohort as the CPU benchmarks)

COLUMNS = ["part", "metric", "value", "unit", "measured_units", "measured_s", "full_units", "projected_s",
           "projected_h", "note"]

#: full size (GPU) and tiny size (--device cpu dry mode) of every simulated input
SIZES = {
    "full": dict(genes=4858, train_samples=600, train_types=19, val_samples=300, val_types=10, val_tasks=1000,
                 test_samples=600, test_types=10, eval_tasks=2000, pretrain_samples=2000, pretrain_types=19,
                 agreement_iterations=400, agreement_val_every=100, saliency_types=19, saliency_per_type=100,
                 max_units=20000),
    "tiny": dict(genes=400, train_samples=60, train_types=6, val_samples=40, val_types=4, val_tasks=20,
                 test_samples=40, test_types=10, eval_tasks=20, pretrain_samples=60, pretrain_types=4,
                 agreement_iterations=4, agreement_val_every=2, saliency_types=4, saliency_per_type=3,
                 max_units=3),
}
#: seconds per part on a GPU (sum + start-up ≤ 8 min); the CPU dry mode caps units instead
BUDGET_S = {"demo": 210, "siamese": 120, "agreement": 45, "evaluation": 30, "pretrain": 30, "saliency": 20}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def row(part, metric, value, unit="", measured_units=None, measured_s=None, full_units=None, note=""):
    """One table row; ``projected_s`` = measured_s / measured_units × full_units when all three are set."""
    projected = None
    if measured_s is not None:
        measured_s = float(f"{measured_s:.6g}")  # the projection uses the value the table shows
    if measured_units and measured_s is not None and full_units is not None:
        projected = measured_s / measured_units * full_units
    return {"part": part, "metric": metric, "value": value, "unit": unit, "measured_units": measured_units,
            "measured_s": measured_s, "full_units": full_units,
            "projected_s": None if projected is None else round(projected, 1),
            "projected_h": None if projected is None else round(projected / 3600, 3), "note": note}


def sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits."""
    return float(f"{x:.{digits}g}")


def units_for(budget_s: float, s_per_unit: float, lo: int, hi: int) -> int:
    """How many units fit ``budget_s`` at ``s_per_unit`` (calibration), clipped to [lo, hi]."""
    if s_per_unit <= 0:
        return hi
    return int(max(lo, min(hi, budget_s // s_per_unit)))


# ------------------------------------------------------------------------------------------------
# full-reproduction units (config/full.yaml)
# ------------------------------------------------------------------------------------------------
def full_units(full_cfg: dict, pretrain_samples: int, pretrain_epochs: int, n_train_types: dict) -> dict:
    """The counts the projection multiplies by, from ``config/full.yaml``."""
    ev, si, mk = full_cfg["evaluation"], full_cfg["siamese"], full_cfg["markers"]
    models = sorted({(r["model"], r["init"]) for r in ev["runs"]} | {(e, mk["init"]) for e in mk["experiments"]})
    return {
        "siamese_models": len(models),
        "siamese_iterations": len(models) * int(si["iterations"]),
        "siamese_validations": len(models) * math.ceil(int(si["iterations"]) / int(si["val_every"])),
        "val_tasks": int(si["val_tasks"]),
        "val_n_way": int(si["val_n_way"]),
        "eval_runs": len(ev["runs"]),
        "eval_n_way": [int(n) for n in ev["n_way"]],
        "eval_tasks_per_n": int(ev["n_tasks"]),
        "pretrain_sample_epochs": int(pretrain_samples) * int(pretrain_epochs),
        "saliency_pairs": sum(int(mk["max_pairs_per_type"]) * n_train_types[e] for e in mk["experiments"]),
    }


# ------------------------------------------------------------------------------------------------
# 1. the demo's GPU-tagged rules
# ------------------------------------------------------------------------------------------------
def gpu_jobs(output: str) -> list[dict]:
    return [j for j in job_blocks(output) if re.search(r"(^|, )gpu=1(,|$)", j.get("resources", ""))]


def part_demo(mode: str, work: Path, cores: int, timeout_s: float) -> list[dict]:
    demo = scratch_workflow(work / "demo")
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--nocolor"]
    if mode == "plan":
        cmd.append("-n")
    log(f"demo ({mode}): {' '.join(cmd[1:])} in {demo}")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=demo, capture_output=True, text=True, timeout=timeout_s,
                              env=local_snakemake_env())  # local: no wait for a SLURM controller
    except subprocess.TimeoutExpired as exc:  # keep the budget: report it and go on with the other parts
        text = [x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (exc.stdout, exc.stderr)]
        (work / f"demo_{mode}.log").write_text("".join(text))
        return [row("demo", "timed_out_after_s", round(timeout_s), "s",
                    note=f"the demo did not finish within its budget; see {work / f'demo_{mode}.log'}")]
    wall = time.perf_counter() - t0
    (work / f"demo_{mode}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"demo {mode} failed (exit {proc.returncode}); see {work / f'demo_{mode}.log'}:\n"
                         f"{proc.stderr[-3000:]}")
    jobs = gpu_jobs(proc.stdout + proc.stderr)
    if not jobs:
        raise SystemExit("the demo has no job tagged resources: gpu=1")
    rows = [row("demo", "end_to_end_wall_s" if mode == "run" else "plan_wall_s", round(wall, 1), "s",
                note=f"snakemake --cores {cores}{' -n' if mode == 'plan' else ''}, demo config, empty results/")]
    by_rule: dict[str, list[dict]] = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j)
    for rule, js in sorted(by_rule.items()):
        if mode == "plan":
            rows.append(row("demo", f"{rule}_jobs", len(js), "jobs", note="planned, tagged gpu=1 (not run)"))
            continue
        secs = [float(pd.read_csv(demo / j["benchmark"], sep="\t")["s"].iloc[0]) for j in js]
        devices = set()
        for j in js:
            text = (demo / j["log"]).read_text(errors="replace") if (demo / j.get("log", "-")).is_file() else ""
            devices |= set(re.findall(r"device (cuda(?::\d+)?|cpu)", text))
        rows.append(row("demo", f"{rule}_s", round(sum(secs), 2), "s",
                        note=f"{len(js)} job(s), longest {max(secs):.1f} s; device in logs: "
                             f"{', '.join(sorted(devices)) or 'not logged'}"))
    return rows


# ------------------------------------------------------------------------------------------------
# 2. Siamese training (fp32, bf16) and agreement
# ------------------------------------------------------------------------------------------------
def timed_siamese(X, y, iterations: int, seed: int, device, amp: bool) -> float:
    res = train_siamese(X, y, iterations=iterations, batch_size=128, lr=5e-6, val_every=iterations + 1, seed=seed,
                        device=device, amp_bf16=amp, log=lambda m: None)
    if int(res.history["iteration"].iloc[-1]) != iterations:
        raise RuntimeError("train_siamese did not run the expected iterations")
    return float(res.history["elapsed_s"].iloc[-1])


def part_siamese(sz: dict, units: dict, device, seed: int, budget: dict, cpu: bool) -> list[dict]:
    X, y = simulate(sz["train_samples"], sz["genes"], sz["train_types"], seed)
    precisions = [("fp32", False), ("bf16", True)]
    rows = []
    per_it = {}
    for name, amp in precisions:
        cal = timed_siamese(X, y, 3, seed, device, amp)  # warm-up + calibration
        n = sz["max_units"] if cpu else units_for(budget["siamese"] / 2, cal / 3, 20, sz["max_units"])
        log(f"siamese {name}: {n} iterations of 128 pairs at {sz['genes']} genes")
        secs = timed_siamese(X, y, n, seed, device, amp)
        per_it[name] = secs / n
        note = "train_siamese loop clock (history.elapsed_s), no validation"
        if amp and device.type != "cuda":
            note += "; bf16 autocast is CUDA-only, so this CPU run is float32"
        rows.append(row("siamese", f"{name}_iterations", sig(128 * n / secs), "pairs/s", n, secs,
                        units["siamese_iterations"],
                        f"{units['siamese_models']} models x iterations of config/full.yaml; {note}"))
    # one validation pass as train_siamese runs it: embed the validation samples, score the tasks
    Xv, yv = simulate(sz["val_samples"], sz["genes"], sz["val_types"], seed + 7)
    tasks = make_tasks(yv, min(units["val_n_way"], sz["val_types"]), sz["val_tasks"], seed)
    set_seed(seed)
    model = make_siamese(sz["genes"]).to(device)
    Xd = torch.as_tensor(Xv, device=device)
    score_tasks_from_embeddings(model, embed_samples(model, Xd), tasks)
    reps = 3
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        score_tasks_from_embeddings(model, embed_samples(model, Xd), tasks)
    sync(device)
    val_s = (time.perf_counter() - t0) / reps
    scale = units["val_tasks"] / sz["val_tasks"]  # per full validation pass (val_tasks of full.yaml)
    rows.append(row("siamese", "validation_passes", sig(1 / (val_s * scale)), "passes/s", 1, val_s * scale,
                    units["siamese_validations"],
                    f"{sz['val_tasks']} {tasks.support.shape[1]}-way tasks on {sz['val_samples']} samples, scaled to "
                    f"{units['val_tasks']} tasks; one per val_every iterations per model"))
    return rows, per_it


def part_agreement(sz: dict, device, seed: int) -> list[dict]:
    """fp32 and bf16 autocast trained from the same seed: training losses and validation accuracy."""
    X, y = simulate(sz["train_samples"], sz["genes"], sz["train_types"], seed)
    Xv, yv = simulate(sz["val_samples"], sz["genes"], sz["val_types"], seed + 11)
    it, every = sz["agreement_iterations"], sz["agreement_val_every"]
    hist = {}
    for name, amp in (("fp32", False), ("bf16", True)):
        log(f"agreement {name}: {it} iterations, validation every {every}")
        res = train_siamese(X, y, Xv, yv, iterations=it, batch_size=128, lr=1e-4, val_every=every,
                            val_tasks=sz["val_tasks"], val_n_way=min(10, sz["val_types"]), seed=seed,
                            device=device, amp_bf16=amp, log=lambda m: None)
        hist[name] = res.history.set_index("iteration")
    a, b = hist["fp32"], hist["bf16"]
    loss_rel = float(((a["train_loss"] - b["train_loss"]).abs() / a["train_loss"].abs().clip(lower=1e-8)).max())
    acc_diff = float((a["val_accuracy"] - b["val_accuracy"]).abs().max())
    ok = loss_rel <= 0.05 and acc_diff <= 0.05
    note = (f"same seed, {it} iterations, lr 1e-4, {len(a)} validations of {sz['val_tasks']} tasks; "
            f"fp32 final loss {a['train_loss'].iloc[-1]:.4f} acc {a['val_accuracy'].iloc[-1]:.3f}, "
            f"bf16 {b['train_loss'].iloc[-1]:.4f} / {b['val_accuracy'].iloc[-1]:.3f}")
    if device.type != "cuda":
        note += "; CPU: both float32 (autocast is CUDA-only), so they must agree exactly"
    return [row("agreement", "max_rel_train_loss_diff", round(loss_rel, 5), "relative", note=note),
            row("agreement", "max_val_accuracy_diff", round(acc_diff, 4), "accuracy", note=note),
            row("agreement", "bf16_agrees_with_fp32", "yes" if ok else "no", "",
                note="tolerance: relative loss difference <= 0.05 and accuracy difference <= 0.05")]


# ------------------------------------------------------------------------------------------------
# 3. batched one-shot evaluation
# ------------------------------------------------------------------------------------------------
def part_evaluation(sz: dict, units: dict, device, seed: int, budget_s: float, cpu: bool) -> list[dict]:
    X, y = simulate(sz["test_samples"], sz["genes"], sz["test_types"], seed + 3)
    set_seed(seed)
    model = make_siamese(sz["genes"]).to(device)
    tower = CNNTower(sz["genes"]).to(device).eval()
    Xd = torch.as_tensor(X, device=device)

    def one_run(tasks_by_n):
        emb = embed_samples(model, Xd)
        with torch.no_grad():
            cnn_emb = torch.cat([tower(Xd[i:i + 1024]) for i in range(0, len(Xd), 1024)])
        for tasks in tasks_by_n:
            for scores in (score_tasks_from_embeddings(model, emb, tasks), nn_euclidean(Xd, tasks, device=device),
                           nn_pearson(Xd, tasks, device=device), nn_cosine(cnn_emb, tasks, device=device)):
                correct(scores, tasks)

    n_ways = [n for n in units["eval_n_way"] if n <= sz["test_types"]]
    cal_tasks = [make_tasks(y, n, min(50, sz["eval_tasks"]), seed) for n in n_ways]
    one_run(cal_tasks)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    one_run(cal_tasks)
    sync(device)
    cal = (time.perf_counter() - t0) / (len(cal_tasks[0].query) * len(n_ways))
    n = sz["eval_tasks"] if cpu else units_for(budget_s / 2, cal * len(n_ways), 200, units["eval_tasks_per_n"])
    tasks_by_n = [make_tasks(y, k, n, seed) for k in n_ways]
    log(f"evaluation: {n} tasks x N in {n_ways}, Siamese + 3 baselines")
    sync(device)
    t0 = time.perf_counter()
    one_run(tasks_by_n)
    sync(device)
    secs = time.perf_counter() - t0
    measured = n * len(n_ways)
    full = units["eval_tasks_per_n"] * len(units["eval_n_way"]) * units["eval_runs"]
    return [row("evaluation", "tasks", sig(measured / secs), "tasks/s", measured, secs, full,
                f"N in {n_ways}, {sz['test_samples']} test samples embedded once per run; Siamese + Euclidean, "
                f"Pearson, CNN-cosine 1-NN on the same tasks; full: {units['eval_tasks_per_n']} tasks x "
                f"{len(units['eval_n_way'])} N x {units['eval_runs']} runs")]


# ------------------------------------------------------------------------------------------------
# 4. CNN pretraining, 5. marker saliency
# ------------------------------------------------------------------------------------------------
def part_pretrain(sz: dict, units: dict, device, seed: int, budget_s: float, cpu: bool, amp: bool,
                  full_samples: int, full_epochs: int) -> list[dict]:
    X, y = simulate(sz["pretrain_samples"], sz["genes"], sz["pretrain_types"], seed + 5)
    n_val = max(sz["pretrain_types"], int(0.15 * len(y)))
    tr, va = slice(n_val, None), slice(0, n_val)  # simulate() cycles the types: both parts hold every type

    def fit(epochs):
        res = pretrain_cnn(X[tr], y[tr], X_val=X[va], y_val=y[va], epochs=epochs, batch_size=128, lr=1e-3,
                           patience=epochs + 1, seed=seed, device=device, amp_bf16=amp)
        return float(res.history["elapsed_s"].iloc[-1]), len(res.history)

    cal, _ = fit(1)  # warm-up + calibration
    epochs = 2 if cpu else units_for(budget_s / 1.5, cal, 2, 30)
    log(f"pretrain: {epochs} epochs on {len(y) - n_val} samples (+{n_val} validation), amp_bf16={amp}")
    secs, done = fit(epochs)
    measured = done * (len(y) - n_val)
    return [row("pretrain", "sample_epochs", sig(measured / secs), "sample-epochs/s", measured, secs,
                units["pretrain_sample_epochs"],
                f"pretrain_cnn (history.elapsed_s, validation each epoch), batch 128; full: {full_samples} samples "
                f"x {full_epochs} epochs")]


def part_saliency(sz: dict, units: dict, device, seed: int, budget_s: float, cpu: bool) -> list[dict]:
    X, y = simulate(sz["saliency_types"] * 40, sz["genes"], sz["saliency_types"], seed + 9)
    set_seed(seed)
    model = make_siamese(sz["genes"]).to(device)
    t0 = time.perf_counter()
    gene_scores(model, X, y, max_pairs_per_type=2, seed=seed, batch_size=256, device=device)  # warm-up
    sync(device)
    cal = (time.perf_counter() - t0) / (2 * sz["saliency_types"])
    per_type = sz["saliency_per_type"] if cpu else units_for(budget_s / 1.5 / sz["saliency_types"], cal, 10, 780)
    log(f"saliency: {per_type} pairs per type x {sz['saliency_types']} types (guided backpropagation)")
    sync(device)
    t0 = time.perf_counter()
    table = gene_scores(model, X, y, max_pairs_per_type=per_type, seed=seed, batch_size=256, device=device)
    sync(device)
    secs = time.perf_counter() - t0
    pairs = int(table.attrs.get("n_pairs", per_type * sz["saliency_types"]))
    return [row("saliency", "pairs", sig(pairs / secs), "pairs/s", pairs, secs, units["saliency_pairs"],
                "gene_scores, guided backpropagation, batch 256; full: max_pairs_per_type x training types "
                "per marker experiment of config/full.yaml")]


def total_rows(rows: list[dict], use_bf16: bool) -> list[dict]:
    """The full reproduction's projected network time: Siamese (the precision full.yaml trains
    with) + validations + evaluation + pretraining + saliency."""
    pick = {("siamese", "bf16_iterations" if use_bf16 else "fp32_iterations"), ("siamese", "validation_passes"),
            ("evaluation", "tasks"), ("pretrain", "sample_epochs"), ("saliency", "pairs")}
    chosen = [r for r in rows if (r["part"], r["metric"]) in pick]
    total = sum(r["projected_s"] for r in chosen)
    return [row("total", "projected_network_time", round(total / 3600, 3), "h",
                note=f"sum of {', '.join(r['part'] + '/' + r['metric'] for r in chosen)}") | {
                    "projected_s": round(total, 1), "projected_h": round(total / 3600, 3)}]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="TSV to write (a .md is written next to it)")
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu (dry mode: tiny sizes)")
    ap.add_argument("--demo", choices=["run", "plan", "skip"], default=None,
                    help="run the demo (default on cuda), only plan it (default on cpu), or skip it")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="cores for the demo run")
    ap.add_argument("--full-config", default=str(REPO / "config" / "full.yaml"))
    ap.add_argument("--full-pretrain-samples", type=int, default=9000, help="TCGA samples (full size)")
    ap.add_argument("--full-pretrain-epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=None, help="default: seed of config/config.yaml")
    ap.add_argument("--work", default=None, help="scratch folder (default: next to --out)")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    device = pick_device(args.device)
    cpu = device.type != "cuda"
    if args.threads or cpu:
        torch.set_num_threads(args.threads or 1)  # CPU dry mode: 1 thread (stable on a shared machine)
    demo_mode = args.demo or ("plan" if cpu else "run")
    sz = SIZES["tiny" if cpu else "full"]
    seed = args.seed if args.seed is not None else int(yaml.safe_load((REPO / "config/config.yaml").read_text())["seed"])
    full_cfg = yaml.safe_load(Path(args.full_config).read_text())
    n_train_types = {"tcga9": 9, "tcga14": 14, "tcga19": 19, "met500": int(full_cfg["splits"]["met500_n_train"])}
    units = full_units(full_cfg, args.full_pretrain_samples, args.full_pretrain_epochs, n_train_types)
    use_bf16 = bool(full_cfg.get("amp_bf16")) and not cpu
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / "gpu_check_work"
    work.mkdir(parents=True, exist_ok=True)

    dev_note = (torch.cuda.get_device_name(device) if not cpu else
                f"CPU dry mode: tiny sizes ({sz['genes']} genes), {torch.get_num_threads()} torch threads — "
                "the projection is NOT a GPU estimate")
    rows = [row("setup", "device", str(device), note=dev_note),
            row("setup", "torch", torch.__version__),
            row("setup", "genes", sz["genes"], "genes", note="SPEC: 4,858 filtered genes"),
            row("setup", "seed", seed)]
    if demo_mode != "skip":
        rows += part_demo(demo_mode, work, args.cores, BUDGET_S["demo"])
    siamese_rows, per_it = part_siamese(sz, units, device, seed, BUDGET_S, cpu)
    rows += siamese_rows
    if "fp32" in per_it and "bf16" in per_it:
        rows.append(row("siamese", "bf16_speedup_vs_fp32", round(per_it["fp32"] / per_it["bf16"], 2), "x",
                        note="seconds per iteration, same run"))
    rows += part_agreement(sz, device, seed)
    rows += part_evaluation(sz, units, device, seed, BUDGET_S["evaluation"], cpu)
    rows += part_pretrain(sz, units, device, seed, BUDGET_S["pretrain"], cpu, use_bf16,
                          args.full_pretrain_samples, args.full_pretrain_epochs)
    rows += part_saliency(sz, units, device, seed, BUDGET_S["saliency"], cpu)
    rows += total_rows(rows, use_bf16)
    rows.append(row("setup", "check_wall_s", round(time.perf_counter() - t_start, 1), "s",
                    note="this script, all parts"))

    table = pd.DataFrame(rows, columns=COLUMNS)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)
    out.with_suffix(".md").write_text(table.fillna("").to_markdown(index=False) + "\n")
    print(table.fillna("").to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
