"""Pretraining, Siamese training, checkpoint/resume and one-shot generalisation (SPEC §2.1–2.3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from oncoshot.errors import InputError
from oncoshot.models import CNNClassifier, SiameseNet
from oncoshot.oneshot import accuracy_with_wilson, correct, make_tasks, nn_euclidean, nn_pearson, score_tasks
from oncoshot.training import (HISTORY_COLUMNS, classifier_logits, load_checkpoint, make_siamese, pick_device,
                               pretrain_cnn, set_seed, train_siamese)

torch.set_num_threads(1)


def planted(n_types: int, per: int, G: int = 400, pool: int = 100, amp: float = 1.0, noise: float = 0.5,
            nuisance: float = 1.0, seed: int = 0):
    """Type signatures on one shared pool of genes + a large programme shared by all types.

    Each type shifts the same ``pool`` genes by its own N(0, amp) profile; every sample adds a
    shared nuisance programme (a fixed ±1 loading on all genes) with a per-sample N(0, nuisance)
    strength, plus gene noise. The nuisance dominates Euclidean distances (2·nuisance²·G vs
    2·amp²·pool), so 1-NN is weak, while the type signal is learnable and shared across types.
    """
    rng = np.random.default_rng(seed)
    genes = rng.choice(G, pool, replace=False)
    load = rng.choice([-1.0, 1.0], G)
    X, y = [], []
    for t in range(n_types):
        sig = np.zeros(G)
        sig[genes] = rng.normal(0, amp, pool)
        f = rng.normal(0, nuisance, (per, 1))
        X.append(5 + sig + f * load + rng.normal(0, noise, (per, G)))
        y += [f"T{t:02d}"] * per
    return np.vstack(X).astype(np.float32), np.array(y)


def simple(n_types=6, per=12, G=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_types, G))
    y = np.repeat(np.arange(n_types), per)
    return (centres[y] + rng.normal(0, 0.7, (len(y), G)) + 3).astype(np.float32), np.array([f"c{i}" for i in y])


def assert_state_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_pick_device_and_set_seed():
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    set_seed(3)
    a = (torch.rand(3), np.random.rand(3))
    set_seed(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# ------------------------------------------------------------------------------------------------
# pretraining
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained():
    X, y = simple(seed=1)
    Xv, yv = simple(seed=1, per=4)  # same centres (same seed), fresh noise draws below
    Xv = Xv + np.random.default_rng(9).normal(0, 0.3, Xv.shape).astype(np.float32)
    lines = []
    res = pretrain_cnn(X, y, X_val=Xv, y_val=yv, epochs=30, batch_size=16, lr=1e-3, patience=2, seed=4,
                       device="cpu", log=lines.append, monitor="accuracy")
    return X, y, Xv, yv, res, lines


def test_pretrain_learns_and_stops_early(pretrained):
    X, y, Xv, yv, res, lines = pretrained
    state, hist, classes = res
    assert classes.tolist() == sorted(set(y))
    assert list(hist.columns) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "elapsed_s"]
    assert hist["val_accuracy"].max() == 1.0
    # early stopping on validation accuracy: stopped `patience` epochs after the best epoch
    best = hist.attrs["best_epoch"]
    assert len(hist) < 30 and len(hist) == best + 2
    assert hist.loc[best - 1, "val_accuracy"] == hist["val_accuracy"].max()
    assert any("early stop" in s for s in lines) and all("ETA" in s for s in lines if "epoch" in s and "/" in s)
    model = CNNClassifier(X.shape[1], len(classes))
    model.load_state_dict(state)
    pred = classes[classifier_logits(model, Xv).argmax(1)]
    assert np.mean(pred == yv) == 1.0


def test_pretrain_deterministic_and_checks(pretrained):
    X, y, Xv, yv, res, _ = pretrained
    again = pretrain_cnn(X, y, X_val=Xv, y_val=yv, epochs=30, batch_size=16, lr=1e-3, patience=2, seed=4,
                         device="cpu", log=lambda s: None, monitor="accuracy")
    assert_state_equal(res.state, again.state)
    with pytest.raises(ValueError, match="not among the known classes"):
        pretrain_cnn(X, y, X_val=Xv, y_val=np.array(["zz"] * len(yv)), epochs=1, log=lambda s: None)
    with pytest.raises(ValueError, match="NaN"):
        Xn = X.copy()
        Xn[0, 0] = np.nan
        pretrain_cnn(Xn, y, epochs=1, log=lambda s: None)


def test_transfer_copies_pretrained_tower(pretrained):
    X, y, Xv, yv, res, _ = pretrained
    m = make_siamese(X.shape[1], "sq", res.state)
    for k, v in m.tower.state_dict().items():
        assert torch.equal(v, res.state["tower." + k]), k
    scratch = make_siamese(X.shape[1], "sq", None)
    assert not torch.equal(scratch.tower.conv1.weight, res.state["tower.conv1.weight"])
    # end to end: with lr = 0 the trained Siamese still holds the pretrained tower exactly
    out = train_siamese(X, y, Xv, yv, tower_state=res.state, iterations=3, batch_size=8, lr=0.0, val_every=1,
                        val_tasks=20, val_n_way=4, seed=0, device="cpu", log=lambda s: None)
    for k, v in out.state.items():
        if k.startswith("tower."):
            assert torch.equal(v, res.state[k]), k


# ------------------------------------------------------------------------------------------------
# Siamese training: determinism, checkpoints, resume
# ------------------------------------------------------------------------------------------------
KW = dict(distance="sq", batch_size=16, lr=1e-4, val_every=10, val_tasks=60, val_n_way=4, device="cpu")


@pytest.fixture(scope="module")
def tiny():
    X, y = simple(n_types=8, per=8, seed=2)
    Xv, yv = simple(n_types=5, per=6, seed=3)
    return X, y, Xv, yv


@pytest.fixture(scope="module")
def uninterrupted(tiny, tmp_path_factory):
    X, y, Xv, yv = tiny
    ck = tmp_path_factory.mktemp("full") / "siam.pt"
    lines = []
    res = train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lines.append, **KW)
    return res, ck, lines


def test_siamese_history_log_and_checkpoint(uninterrupted):
    res, ck, lines = uninterrupted
    hist = res.history
    assert list(hist.columns) == HISTORY_COLUMNS
    assert hist["iteration"].tolist() == [10, 20, 30, 40, 50]
    assert np.all((hist["val_low"] <= hist["val_accuracy"]) & (hist["val_accuracy"] <= hist["val_high"]))
    assert hist["best_val_accuracy"].iloc[-1] == hist["val_accuracy"].max() == hist.attrs["best_val_accuracy"]
    best_it = hist.attrs["best_iteration"]
    # ties go to the later validation
    assert best_it == hist["iteration"][hist["val_accuracy"] == hist["val_accuracy"].max()].max()
    assert len(lines) == 5 and all(k in lines[0] for k in ("iter 10/50", "loss", "val_acc", "elapsed", "ETA"))
    c = load_checkpoint(ck)  # weights_only=True
    assert c["finished"] and c["iteration"] == 50 and c["best_iteration"] == best_it
    assert_state_equal(c["best_state"], res.state)
    assert not list(ck.parent.glob("*.tmp*"))
    # the state loads into a SiameseNet
    SiameseNet(300).load_state_dict(res.state)


def test_siamese_same_seed_same_weights(tiny, uninterrupted):
    X, y, Xv, yv = tiny
    again = train_siamese(X, y, Xv, yv, iterations=20, seed=1, log=lambda s: None, **KW)
    # 20 iterations with seed 1 reproduce the first two validations of the 50-iteration run
    assert again.history["val_accuracy"].tolist() == uninterrupted[0].history["val_accuracy"][:2].tolist()
    assert again.history["train_loss"].tolist() == uninterrupted[0].history["train_loss"][:2].tolist()
    third = train_siamese(X, y, Xv, yv, iterations=20, seed=1, log=lambda s: None, **KW)
    assert_state_equal(again.state, third.state)
    other = train_siamese(X, y, Xv, yv, iterations=20, seed=2, log=lambda s: None, **KW)
    assert not torch.equal(other.state["head.0.weight"], third.state["head.0.weight"])
    # bf16 autocast is a no-op on the CPU
    bf = train_siamese(X, y, Xv, yv, iterations=20, seed=1, log=lambda s: None, amp_bf16=True, **KW)
    assert_state_equal(bf.state, third.state)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tiny, uninterrupted, tmp_path):
    X, y, Xv, yv = tiny
    full, full_ck, _ = uninterrupted
    ck = tmp_path / "siam.pt"
    seen = []

    def dying_log(line):  # the process "dies" right after the 2nd validation's checkpoint
        seen.append(line)
        if len(seen) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=dying_log, **KW)
    mid = load_checkpoint(ck)
    assert mid["iteration"] == 20 and not mid["finished"]
    assert full.history.attrs["best_iteration"] > 20  # the best weights come from after the interruption
    # disturb every global RNG: the resume must restore them
    torch.manual_seed(999)
    np.random.seed(999)
    lines = []
    res = train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lines.append, **KW)
    assert "resumed" in lines[0] and "iteration 20/50" in lines[0]
    assert_state_equal(res.state, full.state)
    a, b = load_checkpoint(ck), load_checkpoint(full_ck)
    assert_state_equal(a["model"], b["model"])  # final (not only best) weights
    for (ka, va), (kb, vb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        assert ka == kb and all(torch.equal(va[n], vb[n]) for n in va)
    cols = [c for c in HISTORY_COLUMNS if c != "elapsed_s"]
    pd.testing.assert_frame_equal(res.history[cols], full.history[cols])
    assert res.history.attrs["best_iteration"] == full.history.attrs["best_iteration"]

    # a finished checkpoint returns its result at once
    again = train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lines.append, **KW)
    assert_state_equal(again.state, full.state)
    assert "nothing to train" in lines[-1]

    # a checkpoint of other settings or data is refused
    with pytest.raises(ValueError, match="'lr'"):
        train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lines.append,
                      **{**KW, "lr": 1e-5})
    with pytest.raises(InputError, match="train_data"):
        train_siamese(X + 1, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lines.append, **KW)
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="unreadable checkpoint"):
        train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lines.append, **KW)


def test_stale_checkpoint_is_set_aside_when_asked(tiny, uninterrupted, tmp_path):
    """Issue 15: after a config change the user had to delete a stale checkpoint by hand although
    Snakemake reruns train_siamese because its params changed; the rule now sets it aside."""
    X, y, Xv, yv = tiny
    ck = tmp_path / "siam.ckpt"
    ck.write_bytes(uninterrupted[1].read_bytes())  # a checkpoint of lr=1e-4
    lines = []
    res = train_siamese(X, y, Xv, yv, iterations=20, seed=1, checkpoint_path=ck, log=lines.append,
                        stale_checkpoint="set_aside", **{**KW, "lr": 1e-5})
    note = next(line for line in lines if "is stale" in line)
    assert "lr: 0.0001 there, 1e-05 now" in note and "iteration: 50 there, 'iterations=20' now" in note
    assert f"set aside as {ck}.stale" in note
    assert (tmp_path / "siam.ckpt.stale").read_bytes() == uninterrupted[1].read_bytes()
    assert not any("resumed" in line for line in lines)
    fresh = train_siamese(X, y, Xv, yv, iterations=20, seed=1, log=lambda s: None, **{**KW, "lr": 1e-5})
    assert_state_equal(res.state, fresh.state)  # trained from the start with the new settings
    assert load_checkpoint(ck)["config"]["lr"] == 1e-5
    with pytest.raises(InputError, match="stale_checkpoint"):
        train_siamese(X, y, Xv, yv, iterations=20, seed=1, stale_checkpoint="delete", **KW)


def test_extending_a_finished_run_equals_a_longer_run(tiny, uninterrupted, tmp_path):
    X, y, Xv, yv = tiny
    ck = tmp_path / "siam.pt"
    train_siamese(X, y, Xv, yv, iterations=30, seed=1, checkpoint_path=ck, log=lambda s: None, **KW)
    res = train_siamese(X, y, Xv, yv, iterations=50, seed=1, checkpoint_path=ck, log=lambda s: None, **KW)
    assert_state_equal(res.state, uninterrupted[0].state)
    assert_state_equal(load_checkpoint(ck)["model"], load_checkpoint(uninterrupted[1])["model"])


def test_siamese_without_validation_keeps_last_weights(tiny):
    X, y, _, _ = tiny
    res = train_siamese(X, y, None, None, iterations=12, seed=0, log=lambda s: None, **{**KW, "val_every": 5})
    assert res.history["iteration"].tolist() == [5, 10, 12]
    assert res.history["val_accuracy"].isna().all() and res.history.attrs["best_iteration"] == 12
    with pytest.raises(ValueError, match="even"):
        train_siamese(X, y, iterations=2, log=lambda s: None, **{**KW, "batch_size": 15})
    with pytest.raises(ValueError, match="5-way tasks need 5 types"):
        train_siamese(X, y, X[:8], y[:8], iterations=2, log=lambda s: None, **{**KW, "val_n_way": 5})


def test_siamese_validation_tasks_keep_patients_apart(tiny, monkeypatch):
    """``groups_val`` (the validation samples' patients) reaches the validation tasks: no task pairs
    two samples of one patient, and the tasks differ from those drawn without patients."""
    from oncoshot import training

    X, y, Xv, yv = tiny
    patients = np.array([f"{t}-{i // 2}" for i, t in enumerate(yv)])  # twins: two samples per patient
    seen = []
    real = training.make_tasks

    def spy(*args, **kwargs):
        tasks = real(*args, **kwargs)
        seen.append((kwargs.get("groups"), tasks))
        return tasks

    monkeypatch.setattr(training, "make_tasks", spy)
    res = train_siamese(X, y, Xv, yv, iterations=10, seed=0, log=lambda s: None, groups_val=patients, **KW)
    groups, tasks = seen[-1]
    assert groups is patients and res.history["val_accuracy"].notna().all()
    assert np.all(patients[tasks.support] != patients[tasks.query][:, None])
    with pytest.raises(ValueError, match="groups_val has 3 entries"):
        train_siamese(X, y, Xv, yv, iterations=2, log=lambda s: None, groups_val=patients[:3], **KW)


# ------------------------------------------------------------------------------------------------
# one-shot generalisation to unseen types
# ------------------------------------------------------------------------------------------------
def test_siamese_beats_1nn_on_unseen_types():
    X, y = planted(n_types=38, per=20, seed=0)
    types = np.unique(y)
    train_types, test_types = types[:30], types[30:]
    tr = np.isin(y, train_types)
    Xte, yte = X[~tr], y[~tr]
    val = np.arange(len(yte)) % 2 == 0  # half of every unseen type for model selection, half for test
    res = train_siamese(X[tr], y[tr], Xte[val], yte[val], distance="sq", iterations=300, batch_size=64, lr=1e-3,
                        val_every=50, val_tasks=200, val_n_way=5, seed=0, device="cpu", log=lambda s: None)
    model = SiameseNet(X.shape[1], "sq")
    model.load_state_dict(res.state)
    tasks = make_tasks(yte[~val], 5, 2000, seed=1)
    siam, lo, _ = accuracy_with_wilson(correct(score_tasks(model, Xte[~val], tasks), tasks))
    eucl, _, e_hi = accuracy_with_wilson(correct(nn_euclidean(Xte[~val], tasks), tasks))
    pear = correct(nn_pearson(Xte[~val], tasks), tasks).mean()
    # chance is 0.2; 1-NN is misled by the shared programme, the Siamese net learned to ignore it
    assert eucl < 0.6 and pear < 0.65
    assert siam > 0.65 and lo > e_hi + 0.15, (siam, eucl, pear)
