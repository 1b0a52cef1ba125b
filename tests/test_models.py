"""CNN tower, classifier and Siamese network (SPEC §2.1–2.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from oncoshot.errors import InputError
from oncoshot.models import (CNNClassifier, CNNTower, SameConv1d, SiameseNet, pair_distance, same_padding,
                             tower_output_length, tower_state_from)

torch.set_num_threads(1)


@pytest.mark.parametrize("G", [151, 200, 251, 333, 499, 500, 501, 1234, 4858])
def test_tower_output_shape(G):
    torch.manual_seed(0)
    tower = CNNTower(G)
    expected_len = math.ceil(G / 50) // 2 // 2
    assert tower.out_length == expected_len == tower_output_length(G)
    assert tower.out_features == 128 * expected_len
    out = tower(torch.rand(3, G))
    assert out.shape == (3, tower.out_features)
    # a [B, 1, G] input gives the same features
    x = torch.rand(2, G)
    assert torch.equal(tower(x), tower(x.unsqueeze(1)))
    # sigmoid then max-pool: features in (0, 1)
    assert torch.all((out > 0) & (out < 1))


def test_tower_4858_is_3072_features():
    # the paper's gene count: ceil(4858/50) = 98 positions -> pool 49 -> pool 24 -> 24 * 128
    assert CNNTower(4858).out_features == 3072


def test_same_padding_hand_computed():
    # Keras 'same': out = ceil(L/s); total = max((out-1)*s + k - L, 0); extra element on the right
    assert same_padding(4858, 50, 50) == (21, 21)  # out 98: 97*50 + 50 - 4858 = 42
    assert same_padding(333, 50, 50) == (8, 9)  # out 7: 6*50 + 50 - 333 = 17
    assert same_padding(125, 50, 50) == (12, 13)  # out 3: 150 - 125 = 25
    assert same_padding(500, 50, 50) == (0, 0)  # exact multiple: no padding
    assert same_padding(98, 10, 1) == (4, 5)  # stride 1, even kernel: 9 -> 4 left, 5 right
    assert same_padding(49, 5, 1) == (2, 2)
    assert same_padding(3, 10, 1) == (4, 5)


@pytest.mark.parametrize("G", [333, 4858, 500])
def test_first_conv_equals_manual_block_computation(G):
    torch.manual_seed(1)
    conv = SameConv1d(1, 256, kernel_size=50, stride=50)
    x = torch.randn(2, G, dtype=torch.float64)
    conv = conv.double()
    out = conv(x.unsqueeze(1))
    n_out = math.ceil(G / 50)
    assert out.shape == (2, 256, n_out)
    total = (n_out - 1) * 50 + 50 - G
    left = total // 2
    xp = torch.zeros(2, n_out * 50, dtype=torch.float64)
    xp[:, left:left + G] = x
    blocks = xp.reshape(2, n_out, 50)
    manual = torch.einsum("bjk,ck->bcj", blocks, conv.weight[:, 0, :]) + conv.bias[None, :, None]
    torch.testing.assert_close(out, manual, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("k", [10, 5])
def test_stride1_same_conv_equals_torch_same(k):
    torch.manual_seed(2)
    ours = SameConv1d(8, 4, kernel_size=k).double()
    ref = torch.nn.Conv1d(8, 4, kernel_size=k, padding="same").double()
    ref.load_state_dict(ours.state_dict())
    for L in (1, 7, 24, 49, 98):
        x = torch.randn(3, 8, L, dtype=torch.float64)
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-12)
        assert ours(x).shape[-1] == L


def test_tower_equals_functional_pipeline():
    torch.manual_seed(3)
    G = 777
    t = CNNTower(G).double()
    x = torch.randn(4, G, dtype=torch.float64).unsqueeze(1)
    h = F.relu(F.conv1d(F.pad(x, same_padding(G, 50, 50)), t.conv1.weight, t.conv1.bias, stride=50))
    h = F.relu(F.conv1d(F.pad(h, same_padding(h.shape[-1], 10, 1)), t.conv2.weight, t.conv2.bias))
    h = F.max_pool1d(h, 2)
    h = torch.sigmoid(F.conv1d(F.pad(h, same_padding(h.shape[-1], 5, 1)), t.conv3.weight, t.conv3.bias))
    h = F.max_pool1d(h, 2).flatten(1)
    torch.testing.assert_close(t(x), h, rtol=0, atol=1e-12)


def test_tower_rejects_bad_inputs():
    with pytest.raises(ValueError, match="too small"):
        CNNTower(150)
    t = CNNTower(300)
    with pytest.raises(ValueError, match="300 genes"):
        t(torch.rand(2, 301))
    with pytest.raises(ValueError):
        t(torch.rand(2, 2, 300))


def test_classifier_shapes():
    torch.manual_seed(0)
    m = CNNClassifier(420, 7)
    assert m(torch.rand(5, 420)).shape == (5, 7)
    assert set(k.split(".")[0] for k in m.state_dict()) == {"tower", "fc"}
    with pytest.raises(ValueError):
        CNNClassifier(420, 1)


def test_pair_distances():
    a = torch.tensor([[0.2, 0.9, 0.5]])
    b = torch.tensor([[0.6, 0.1, 0.5]])
    torch.testing.assert_close(pair_distance(a, b, "sq"), torch.tensor([[0.16, 0.64, 0.0]]))
    torch.testing.assert_close(pair_distance(a, b, "l1"), torch.tensor([[0.4, 0.8, 0.0]]))
    torch.testing.assert_close(pair_distance(a, b, "chi2"), torch.tensor([[0.16 / 0.8, 0.64 / 1.0, 0.0]]))
    with pytest.raises(ValueError):
        pair_distance(a, b, "cos")


@pytest.mark.parametrize("distance", ["sq", "l1", "chi2"])
def test_siamese_forward_and_cached_embeddings(distance):
    torch.manual_seed(4)
    G = 350
    m = SiameseNet(G, distance=distance).eval()
    xa, xb = torch.rand(6, G), torch.rand(6, G)
    z = m.logits(xa, xb)
    assert z.shape == (6,)
    torch.testing.assert_close(m(xa, xb), torch.sigmoid(z))
    ea, eb = m.embed(xa), m.embed(xb)
    torch.testing.assert_close(m.head_from_embeddings(ea, eb, logits=True), z, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m.head_from_embeddings(ea, eb), torch.sigmoid(z), rtol=1e-6, atol=1e-6)
    # the distances are symmetric
    torch.testing.assert_close(m.logits(xb, xa), z, rtol=1e-6, atol=1e-6)


def test_siamese_head_architecture_and_xavier_init():
    torch.manual_seed(5)
    m = SiameseNet(500)
    lin1, relu, drop, lin2 = m.head
    assert isinstance(relu, torch.nn.ReLU) and isinstance(drop, torch.nn.Dropout) and drop.p == 0.25
    assert (lin1.in_features, lin1.out_features) == (m.tower.out_features, 512)
    assert (lin2.in_features, lin2.out_features) == (512, 1)
    for lin in (lin1, lin2):
        bound = math.sqrt(6.0 / (lin.in_features + lin.out_features))
        assert lin.weight.abs().max() <= bound
        assert torch.all(lin.bias == 0)
    # Xavier uniform variance 2/(fan_in + fan_out), checked on the large layer
    var = lin1.weight.var().item()
    assert var == pytest.approx(2.0 / (lin1.in_features + 512), rel=0.05)


def test_dropout_only_in_training_mode():
    torch.manual_seed(6)
    m = SiameseNet(300)
    xa, xb = torch.rand(64, 300), torch.rand(64, 300)
    m.eval()
    assert torch.equal(m.logits(xa, xb), m.logits(xa, xb))
    m.train()
    assert not torch.equal(m.logits(xa, xb), m.logits(xa, xb))


def test_siamese_shared_tower_and_state_helpers():
    torch.manual_seed(7)
    tower = CNNTower(300)
    m = SiameseNet(300, tower=tower)
    assert m.tower is tower
    with pytest.raises(ValueError):
        SiameseNet(400, tower=tower)
    with pytest.raises(ValueError):
        SiameseNet(300, distance="cosine")
    clf = CNNClassifier(300, 3)
    ts = tower_state_from(clf.state_dict())
    assert set(ts) == set(tower.state_dict())
    assert set(tower_state_from(tower.state_dict())) == set(tower.state_dict())
    assert set(tower_state_from(m.state_dict())) == set(tower.state_dict())
    np.testing.assert_array_equal(ts["conv1.weight"].numpy(), clf.tower.conv1.weight.detach().numpy())


def test_monotone_head_logit_never_rises_with_a_distance():
    """head='monotone': raising any coordinate of the distance vector cannot raise the logit (checked
    on random distance vectors and random coordinates, after training-like random weights)."""
    torch.manual_seed(0)
    m = SiameseNet(300, head="monotone").eval()
    with torch.no_grad():
        for p in m.head.parameters():
            p.add_(torch.randn_like(p))
        d = torch.rand(256, m.out_features) * 3
        base = m.head(d).squeeze(-1)
        for _ in range(20):
            bump = torch.zeros_like(d)
            cols = torch.randint(0, d.shape[1], (d.shape[0],))
            bump[torch.arange(d.shape[0]), cols] = torch.rand(d.shape[0]) * 2
            assert (m.head(d + bump).squeeze(-1) <= base + 1e-5).all()
    # the paper's free head has no such constraint (it can rise), which is what inverts on unseen types
    free = SiameseNet(300, head="paper").eval()
    with torch.no_grad():
        d = torch.rand(512, free.out_features)
        rises = (free.head(d + 0.5) > free.head(d)).any()
    assert rises


def test_monotone_head_round_trips_through_a_model_file(tmp_path):
    from oncoshot.experiments import load_siamese, save_model

    m = SiameseNet(300, head="monotone").eval()
    save_model(tmp_path / "m.pt", kind="siamese", state_dict=m.state_dict(), genes=[f"g{i}" for i in range(300)],
               distance="sq", head="monotone")
    loaded, _, meta = load_siamese(tmp_path / "m.pt")
    x = torch.randn(4, 300)
    assert meta["head"] == "monotone"
    torch.testing.assert_close(loaded(x[:2], x[2:]), m(x[:2], x[2:]))
    with pytest.raises(Exception, match="unknown head"):
        SiameseNet(300, head="cosine")


@pytest.mark.parametrize("head", ["paper", "monotone"])
def test_logits_of_rows_matches_logits_on_gathered_pairs(head):
    """Training embeds each distinct sample once (SiameseNet.logits_of_rows): the logits and every
    parameter gradient must be those of the plain pair forward on the gathered rows."""
    torch.manual_seed(0)
    X = torch.randn(12, 300)
    ia = torch.tensor([0, 1, 1, 5, 7, 7, 2, 11])  # repeats within and across the two sides
    ib = torch.tensor([3, 1, 4, 5, 0, 9, 2, 7])
    net = SiameseNet(300, head=head).eval()  # eval: the head's dropout off, so both passes compare
    z_ref = net.logits(X[ia], X[ib])
    grads_ref = torch.autograd.grad(z_ref.square().sum(), list(net.parameters()))
    z = net.logits_of_rows(X, ia, ib)
    grads = torch.autograd.grad(z.square().sum(), list(net.parameters()))
    torch.testing.assert_close(z, z_ref, rtol=1e-5, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="pair indices"):
        net.logits_of_rows(X, ia, ib[:-1])
