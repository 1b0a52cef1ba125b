"""Training loops: 1D-CNN pretraining (SPEC §2.1) and Siamese training (SPEC §2.2).

Inputs are samples × genes float32 matrices (numpy or torch) and per-sample labels (str or int).
Data are moved to the device once; batches are gathered there. Returned state dicts live on the
CPU, so they can be ``torch.save``-d and loaded anywhere.

Determinism: both loops seed torch / numpy / python (``set_seed``) before building the model and
draw their batches from a ``torch.Generator`` seeded with the same seed; on the CPU the same
arguments give bit-identical weights on one machine with one torch thread count (another thread
count or CPU may round differently: ``benchmarks/reproducibility.py``). ``train_siamese`` checkpoints everything that influences
the rest of the run (weights, Adam state, every RNG state, iteration, best weights, history) at
each validation, so a run resumed from its checkpoint ends with exactly the weights of an
uninterrupted run (on the CPU; CUDA kernels may be non-deterministic).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from .errors import InputError
from .models import CNNClassifier, SiameseNet, tower_state_from
from .oneshot import accuracy_with_wilson, correct, embed_samples, make_tasks, score_tasks_from_embeddings
from .pairs import PairSampler, encode_labels
from .runtime import format_duration

_LOG = logging.getLogger("oncoshot.training")
CHECKPOINT_FORMAT = "oncoshot-siamese-checkpoint-v1"


# ------------------------------------------------------------------------------------------------
# small utilities
# ------------------------------------------------------------------------------------------------
def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """``prefer`` if given, else ``cuda`` when available, else ``cpu``."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and every CUDA device).
    ``deterministic=True`` also asks cuDNN for deterministic kernels (slower)."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _as_float_tensor(X, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(X, dtype=torch.float32)
    if t.dim() != 2:
        raise InputError(None, None, f"expected a samples × genes matrix, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InputError(None, None, "expression matrix contains NaN or infinite values")
    return t.to(device)


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _logger(log: Callable[[str], None] | None) -> Callable[[str], None]:
    return log if log is not None else _LOG.info


def _autocast(device: torch.device, amp_bf16: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=bool(amp_bf16) and device.type == "cuda")


def _fingerprint(*arrays) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"<none>")
            continue
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.asarray(a)
        if a.dtype.kind in "OUS":
            a = np.asarray([str(v) for v in a.reshape(-1)], dtype=str)
            h.update(str(a.shape).encode())
            h.update("\x1f".join(a.tolist()).encode())
        else:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# CNN pretraining
# ------------------------------------------------------------------------------------------------
class PretrainResult(NamedTuple):
    state: dict  # CNNClassifier state dict (CPU) of the best epoch; tower weights under "tower.*"
    history: pd.DataFrame  # one row per epoch
    classes: np.ndarray  # class of each output unit (sorted unique training labels)


@torch.no_grad()
def classifier_logits(model: nn.Module, X, batch_size: int = 1024, amp_bf16: bool = False) -> np.ndarray:
    """Logits ``[n, n_classes]`` (float32 numpy) of a classifier on every row of ``X`` (eval mode)."""
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    X = torch.as_tensor(X, dtype=torch.float32)
    out = []
    try:
        for s in range(0, X.shape[0], batch_size):
            with _autocast(dev, amp_bf16):
                out.append(model(X[s:s + batch_size].to(dev)).float().cpu())
    finally:
        model.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, getattr(model, "n_classes", 0)), np.float32)


def _eval_classifier(model, X, y, batch_size, amp_bf16) -> tuple[float, float]:
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
    hits = torch.zeros((), device=dev, dtype=torch.long)
    with torch.no_grad():
        for s in range(0, X.shape[0], batch_size):
            with _autocast(dev, amp_bf16):
                z = model(X[s:s + batch_size]).float()
            t = y[s:s + batch_size]
            loss_sum += nn.functional.cross_entropy(z, t, reduction="sum").double()
            hits += (z.argmax(1) == t).sum()
    model.train(was)
    n = X.shape[0]
    return float(loss_sum) / n, float(hits) / n


def pretrain_cnn(X, y, *, X_val=None, y_val=None, epochs: int = 50, batch_size: int = 128, lr: float = 1e-3,
                 patience: int = 5, seed: int = 0, device=None, log: Callable[[str], None] | None = None,
                 monitor: str = "loss", amp_bf16: bool = False) -> PretrainResult:
    """Train ``CNNClassifier`` (tower + Linear, softmax cross-entropy, Adam) on ``X``/``y``.

    Each epoch visits the training samples in a random order (seeded) in batches of
    ``batch_size``. With a validation set, the model is evaluated after every epoch; the best epoch
    by ``monitor`` ("loss": lowest validation cross-entropy, "accuracy": highest validation
    accuracy, ties → earlier epoch) is kept, and training stops after ``patience`` epochs without
    improvement. Without one, the last epoch is kept.
    ``y_val`` labels must all be training classes. Returns :class:`PretrainResult`
    ``(state, history, classes)``; history columns: epoch, train_loss, train_accuracy, val_loss,
    val_accuracy, elapsed_s.
    """
    if monitor not in ("loss", "accuracy"):
        raise InputError(None, None, f"monitor must be 'loss' or 'accuracy', got {monitor!r}")
    if (X_val is None) != (y_val is None):
        raise InputError(None, None, "give both X_val and y_val, or neither")
    log = _logger(log)
    device = pick_device(device)
    codes, classes = encode_labels(y)
    if len(classes) < 2:
        raise InputError(None, None, f"pretraining needs >= 2 classes, got {len(classes)}")
    Xt = _as_float_tensor(X, device)
    if Xt.shape[0] != len(codes):
        raise InputError(None, None, f"X has {Xt.shape[0]} rows but y has {len(codes)} labels")
    yt = torch.as_tensor(codes, device=device)
    has_val = X_val is not None and len(y_val) > 0
    if has_val:
        vcodes, _ = encode_labels(y_val, classes)
        Xv = _as_float_tensor(X_val, device)
        yv = torch.as_tensor(vcodes, device=device)
        if Xv.shape[1] != Xt.shape[1]:
            raise InputError(None, None, f"X_val has {Xv.shape[1]} genes, X has {Xt.shape[1]}")
    set_seed(seed)
    model = CNNClassifier(Xt.shape[1], len(classes)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    n = Xt.shape[0]
    rows = []
    best_state, best_key, best_epoch, waited = None, None, 0, 0
    t0 = time.perf_counter()
    for epoch in range(1, int(epochs) + 1):
        model.train()
        perm = torch.randperm(n, generator=gen, device=device)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        hits = torch.zeros((), device=device, dtype=torch.long)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            with _autocast(device, amp_bf16):
                z = model(Xt[idx]).float()
            loss = nn.functional.cross_entropy(z, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * idx.numel()
            hits += (z.detach().argmax(1) == yt[idx]).sum()
        row = {"epoch": epoch, "train_loss": float(loss_sum) / n, "train_accuracy": float(hits) / n,
               "val_loss": float("nan"), "val_accuracy": float("nan")}
        improved = True
        if has_val:
            row["val_loss"], row["val_accuracy"] = _eval_classifier(model, Xv, yv, 1024, amp_bf16)
            key = row["val_loss"] if monitor == "loss" else -row["val_accuracy"]
            improved = best_key is None or key < best_key
            if improved:
                best_key = key
        if improved:
            best_state, best_epoch, waited = _cpu_state(model), epoch, 0
        else:
            waited += 1
        elapsed = time.perf_counter() - t0
        row["elapsed_s"] = elapsed
        rows.append(row)
        eta = elapsed / epoch * (int(epochs) - epoch)
        log(f"pretrain epoch {epoch}/{epochs} loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f} "
            f"val_loss {row['val_loss']:.4f} val_acc {row['val_accuracy']:.4f} (best epoch {best_epoch}) "
            f"elapsed {format_duration(elapsed)} ETA {format_duration(eta)}")
        if has_val and waited >= int(patience):
            log(f"pretrain: early stop after epoch {epoch}: no improvement for {patience} epochs; "
                f"best epoch {best_epoch}")
            break
    if best_state is None:  # epochs == 0
        best_state = _cpu_state(model)
    hist = pd.DataFrame(rows, columns=["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                       "elapsed_s"])
    hist.attrs["best_epoch"] = best_epoch
    return PretrainResult(best_state, hist, classes)


# ------------------------------------------------------------------------------------------------
# Siamese training
# ------------------------------------------------------------------------------------------------
class SiameseResult(NamedTuple):
    state: dict  # SiameseNet state dict (CPU) with the best validation accuracy
    history: pd.DataFrame  # one row per validation


HISTORY_COLUMNS = ["iteration", "train_loss", "val_accuracy", "val_low", "val_high", "best_val_accuracy",
                   "elapsed_s"]


def make_siamese(n_genes: int, distance: str = "sq", tower_state: dict | None = None,
                 head: str = "paper") -> SiameseNet:
    """A :class:`SiameseNet`; with ``tower_state`` (a tower, ``CNNClassifier`` or ``SiameseNet``
    state dict) its tower weights are copied in (network transfer learning), else the tower keeps
    its fresh Glorot initialisation (training from scratch). The head is Xavier-initialised."""
    model = SiameseNet(n_genes, distance=distance, head=head)
    if tower_state is not None:
        model.tower.load_state_dict(tower_state_from(tower_state), strict=True)
    return model


def _rng_snapshot(sampler: PairSampler, device: torch.device) -> dict:
    np_state = np.random.get_state()
    snap = {
        "torch_cpu": torch.get_rng_state(),
        "numpy": {"name": str(np_state[0]), "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
        "sampler": sampler.get_state(),
        "torch_cuda": None,
    }
    if device.type == "cuda":
        snap["torch_cuda"] = torch.cuda.get_rng_state(device)
    return snap


def _rng_restore(snap: dict, sampler: PairSampler, device: torch.device) -> None:
    torch.set_rng_state(snap["torch_cpu"])
    npd = snap["numpy"]
    np.random.set_state((npd["name"], npd["keys"].numpy().astype(np.uint32), npd["pos"], npd["has_gauss"],
                         npd["cached_gaussian"]))
    py = snap["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    sampler.set_state(snap["sampler"])
    if device.type == "cuda" and snap.get("torch_cuda") is not None:
        torch.cuda.set_rng_state(snap["torch_cuda"], device)


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path) -> dict:
    """Load a Siamese training checkpoint (``weights_only=True``, onto the CPU)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated / foreign file
        raise InputError(path, None, f"unreadable checkpoint ({type(exc).__name__}: {exc}); "
                         "delete it to start afresh") from exc
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, None, f"not an OncoShot Siamese checkpoint (format {CHECKPOINT_FORMAT})")
    return ck


def train_siamese(X_train, y_train, X_val=None, y_val=None, *, tower_state: dict | None = None,
                  distance: str = "sq", iterations: int = 20000, batch_size: int = 128, lr: float = 5e-6,
                  val_every: int = 200, val_tasks: int = 1000, val_n_way: int = 10, seed: int = 0,
                  device=None, checkpoint_path=None, log: Callable[[str], None] | None = None,
                  amp_bf16: bool = False, eval_batch: int = 65536, groups_val=None,
                  head: str = "paper", stale_checkpoint: str = "error") -> SiameseResult:
    """Train CancerSiamese on balanced pair batches (SPEC §2.2).

    Each iteration draws ``batch_size`` pairs (half same-type, half different-type; see
    :class:`~oncoshot.pairs.PairSampler`) from the training set and takes one Adam step on the
    binary cross-entropy (``BCEWithLogitsLoss`` on the logits: the sigmoid is folded into the loss
    for numerical stability). Every ``val_every`` iterations, and after the last one, the model is
    scored on ``val_tasks`` fixed ``val_n_way``-way tasks on the validation set (generated once
    from ``seed``; every validation sample embedded once); the weights with the best validation
    accuracy are kept (ties → the later validation, as the reference code's ``>=``). Without a
    validation set the last weights are kept.

    ``tower_state``: a tower / ``CNNClassifier`` / ``SiameseNet`` state dict to initialise the
    tower (transfer learning), or ``None`` to train from scratch.

    ``checkpoint_path``: written atomically after every validation (weights, Adam state, RNG states
    of torch / numpy / python / the pair sampler, iteration, best weights, history); if the file
    exists at start, training resumes from it (its recorded settings and data fingerprints must
    match, else :class:`~oncoshot.errors.InputError`, a ``ValueError``), and a finished checkpoint returns its result at once.
    ``iterations`` may be raised on resume to train longer. ``stale_checkpoint``: what a checkpoint
    of other settings or data (or beyond ``iterations``) gets: ``"error"`` (default) as above, or
    ``"set_aside"``: renamed to ``<checkpoint>.stale`` with a log line, and training starts afresh
    (the workflow's choice: Snakemake reruns ``train_siamese`` exactly because its params changed).

    ``head``: ``paper`` (SPEC §2.2) or ``monotone`` (:class:`~oncoshot.models.MonotoneHead`).

    ``amp_bf16``: bf16 autocast for the training forward pass, on CUDA only (ignored on CPU);
    validation always runs in float32.

    Returns :class:`SiameseResult` ``(state, history)``; history has one row per validation with
    columns ``iteration, train_loss`` (mean over the iterations since the previous validation),
    ``val_accuracy, val_low, val_high`` (Wilson 95 %), ``best_val_accuracy, elapsed_s``;
    ``history.attrs`` holds ``best_iteration`` and ``best_val_accuracy``.
    """
    if distance not in ("sq", "l1", "chi2"):
        raise InputError(None, None, f"unknown distance {distance!r}")
    iterations, val_every = int(iterations), int(val_every)
    if iterations < 0:
        raise InputError(None, None, f"iterations must be >= 0, got {iterations}")
    if val_every < 1:
        raise InputError(None, None, f"val_every must be >= 1, got {val_every}")
    if batch_size < 2 or batch_size % 2:
        raise InputError(None, None, f"batch_size must be an even number >= 2, got {batch_size}")
    if (X_val is None) != (y_val is None):
        raise InputError(None, None, "give both X_val and y_val, or neither")
    log = _logger(log)
    device = pick_device(device)
    Xt = _as_float_tensor(X_train, device)
    if Xt.shape[0] != len(y_train):
        raise InputError(None, None, f"X_train has {Xt.shape[0]} rows but y_train has {len(y_train)} labels")
    n_genes = Xt.shape[1]
    has_val = X_val is not None
    tasks = None
    if has_val:
        Xv = _as_float_tensor(X_val, device)
        if Xv.shape[1] != n_genes:
            raise InputError(None, None, f"X_val has {Xv.shape[1]} genes, X_train has {n_genes}")
        if Xv.shape[0] != len(y_val):
            raise InputError(None, None, f"X_val has {Xv.shape[0]} rows but y_val has {len(y_val)} labels")
        if groups_val is not None and len(groups_val) != len(y_val):
            raise InputError(None, None, f"groups_val has {len(groups_val)} entries but y_val has {len(y_val)} labels")
        tasks = make_tasks(y_val, val_n_way, val_tasks, seed, groups=groups_val)

    config = {
        "n_genes": int(n_genes), "distance": distance, "head": head, "batch_size": int(batch_size), "lr": float(lr),
        "val_every": val_every, "val_tasks": int(val_tasks), "val_n_way": int(val_n_way), "seed": int(seed),
        "transfer": tower_state is not None, "amp_bf16": bool(amp_bf16),
        "train_data": _fingerprint(X_train, y_train),
        "val_data": (_fingerprint(X_val, y_val) if groups_val is None else _fingerprint(X_val, y_val, np.asarray(groups_val, dtype=str)))
        if has_val else "none",
        "tower_init": _fingerprint(*[v for _, v in sorted(tower_state_from(tower_state).items())])
        if tower_state is not None else "scratch",
    }

    set_seed(seed)
    model = make_siamese(n_genes, distance, tower_state, head).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sampler = PairSampler(Xt, y_train, seed=seed, device=device)
    if sampler.excluded_from_same:
        log(f"siamese: types with < 2 training samples are used only in different-type pairs: "
            f"{[str(c) for c in sampler.excluded_from_same]}")
    loss_fn = nn.BCEWithLogitsLoss()

    start_it = 0
    best_acc = -math.inf
    best_it = 0
    best_state = None
    history = {c: [] for c in HISTORY_COLUMNS}
    elapsed_before = 0.0
    ck_path = Path(checkpoint_path) if checkpoint_path is not None else None
    resumed = False

    if stale_checkpoint not in ("error", "set_aside"):
        raise InputError(None, "stale_checkpoint", f"unknown value {stale_checkpoint!r}; expected 'error' or 'set_aside'")
    if ck_path is not None and ck_path.exists():
        ck = load_checkpoint(ck_path)
        stale = [(k, ck["config"].get(k), v) for k, v in config.items() if ck["config"].get(k) != v]
        if ck["iteration"] > iterations:
            stale.append(("iteration", ck["iteration"], f"iterations={iterations}"))
        if stale and stale_checkpoint == "set_aside":
            aside = ck_path.with_name(ck_path.name + ".stale")
            os.replace(ck_path, aside)
            log(f"siamese: checkpoint {ck_path} is stale ({'; '.join(f'{k}: {old!r} there, {new!r} now' for k, old, new in stale)}); "
                f"set aside as {aside} and training from the start")
        elif stale:
            k, old, new = stale[0]
            if k == "iteration":
                raise InputError(ck_path, "iteration",
                                 f"checkpoint is at iteration {ck['iteration']} > iterations={iterations}")
            raise InputError(ck_path, k, f"checkpoint setting {k!r} is {old!r}, "
                             f"this run has {new!r}; delete the checkpoint to start afresh")
    if ck_path is not None and ck_path.exists():
        resumed = True
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        _rng_restore(ck["rng"], sampler, device)
        start_it = int(ck["iteration"])
        best_acc = float(ck["best_val_accuracy"])
        best_it = int(ck["best_iteration"])
        best_state = ck["best_state"]
        history = {c: list(ck["history"][c]) for c in HISTORY_COLUMNS}
        elapsed_before = float(ck["elapsed_s"])
        log(f"siamese: resumed from {ck_path} at iteration {start_it}/{iterations} "
            f"(best val acc {best_acc:.4f} @ {best_it})")

    def result() -> SiameseResult:
        hist = pd.DataFrame(history, columns=HISTORY_COLUMNS)
        hist.attrs["best_iteration"] = best_it
        hist.attrs["best_val_accuracy"] = best_acc if has_val else float("nan")
        state = best_state if best_state is not None else _cpu_state(model)
        return SiameseResult(state, hist)

    def validate() -> tuple[float, float, float]:
        if not has_val:
            return float("nan"), float("nan"), float("nan")
        emb = embed_samples(model, Xv)
        scores = score_tasks_from_embeddings(model, emb, tasks, eval_batch)
        return accuracy_with_wilson(correct(scores, tasks))

    def checkpoint(it: int, elapsed: float, finished: bool) -> None:
        if ck_path is None:
            return
        _atomic_save({
            "format": CHECKPOINT_FORMAT, "config": config, "iteration": it, "finished": finished,
            "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _rng_snapshot(sampler, device),
            "best_state": best_state, "best_val_accuracy": best_acc, "best_iteration": best_it,
            "history": history, "elapsed_s": elapsed,
        }, ck_path)

    if resumed and start_it >= iterations:
        log(f"siamese: checkpoint already at iteration {start_it}; nothing to train")
        return result()

    model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    n_loss = 0
    for it in range(start_it + 1, iterations + 1):
        ia, ib, target = sampler.sample(batch_size)
        with _autocast(device, amp_bf16):
            z = model.logits_of_rows(sampler.X, ia, ib)  # each distinct sample through the tower once
        loss = loss_fn(z.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach().double()
        n_loss += 1
        if it % val_every == 0 or it == iterations:
            acc, low, high = validate()
            model.train()
            if not has_val or acc >= best_acc:
                best_acc, best_it, best_state = (acc if has_val else best_acc), it, _cpu_state(model)
            session = time.perf_counter() - t0
            elapsed = elapsed_before + session
            history["iteration"].append(it)
            history["train_loss"].append(float(loss_sum) / n_loss)
            history["val_accuracy"].append(acc)
            history["val_low"].append(low)
            history["val_high"].append(high)
            history["best_val_accuracy"].append(best_acc if has_val else float("nan"))
            history["elapsed_s"].append(elapsed)
            loss_sum.zero_()
            n_loss = 0
            checkpoint(it, elapsed, finished=it == iterations)
            eta = session / (it - start_it) * (iterations - it)
            log(f"siamese iter {it}/{iterations} loss {history['train_loss'][-1]:.4f} val_acc {acc:.4f} "
                f"[{low:.4f}, {high:.4f}] best {best_acc if has_val else float('nan'):.4f} @ {best_it} elapsed {format_duration(elapsed)} "
                f"ETA {format_duration(eta)}")
    if iterations == 0 and best_state is None:
        best_state = _cpu_state(model)
        checkpoint(0, elapsed_before, finished=True)
    return result()
