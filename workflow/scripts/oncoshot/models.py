"""CancerSiamese networks (SPEC §2.1–2.2): the 1D-CNN tower, its classifier and the Siamese net.

Shapes
------
Every network takes expression vectors as a float32 tensor ``[batch, n_genes]`` (a
``[batch, 1, n_genes]`` tensor is accepted too): one sample is a 1-channel sequence of genes.

Padding
-------
The original Keras layers use ``padding="same"``. PyTorch's ``padding="same"`` refuses stride > 1,
so :class:`SameConv1d` implements the TensorFlow/Keras rule explicitly for any stride:

    out = ceil(L / stride)
    total = max((out - 1) * stride + kernel - L, 0)
    left = total // 2, right = total - left            (the extra element goes to the right)

With the first layer's kernel 50 / stride 50 this gives ``ceil(G / 50)`` positions (the last
window is zero-padded when G is not a multiple of 50, with the zeros split left/right as above).
The max-pooling layers are Keras' default ``"valid"`` pooling (floor), so the tower's output is
``128 * (ceil(G / 50) // 2 // 2)`` features (G = 4,858 → 98 → 49 → 24 → 3,072 features).

Flatten order is PyTorch's channel-major order (``c * length + position``); Keras' channels-last
flatten is position-major. This only matters for importing Keras weights, which we do not do.

Initialisation *(our choice, following Keras defaults)*: every conv / linear layer gets Glorot
(Xavier) uniform weights and zero biases; the Siamese head is Xavier-initialised as SPEC §2.2 asks.
"""

from __future__ import annotations

import math
import torch
from torch import nn
import torch.nn.functional as F

from .errors import InputError

DISTANCES = ("sq", "l1", "chi2")


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow ``"same"`` padding (left, right) for a 1-D input of ``length``."""
    if length < 1 or kernel < 1 or stride < 1:
        raise InputError(None, None, f"same_padding: length, kernel and stride must be >= 1, got {length}, {kernel}, {stride}")
    out = -(-length // stride)  # ceil
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def tower_output_length(n_genes: int) -> int:
    """Number of positions after the tower: ``ceil(G / 50) // 2 // 2``."""
    return (-(-int(n_genes) // 50)) // 2 // 2


class SameConv1d(nn.Conv1d):
    """``nn.Conv1d`` with Keras ``padding="same"`` for any stride (output length ``ceil(L/stride)``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        left, right = same_padding(x.shape[-1], self.kernel_size[0], self.stride[0])
        if left or right:
            x = F.pad(x, (left, right))
        return super().forward(x)


def _glorot_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _as_sequence(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 2:
        return x.unsqueeze(1)
    if x.dim() == 3 and x.shape[1] == 1:
        return x
    raise InputError(None, None, f"expected a [batch, n_genes] or [batch, 1, n_genes] tensor, got shape {tuple(x.shape)}")


class CNNTower(nn.Module):
    """The 1D-CNN feature extractor f(x) of SPEC §2.1 (Mostavi et al. 2020).

    ``forward(x[B, G]) -> [B, out_features]`` with values in (0, 1) (the last conv is a sigmoid).
    """

    def __init__(self, n_genes: int):
        super().__init__()
        n_genes = int(n_genes)
        if n_genes < 1:
            raise InputError(None, None, f"CNNTower: n_genes must be >= 1, got {n_genes}")
        if tower_output_length(n_genes) < 1:
            raise InputError(None, None, 
                f"CNNTower: n_genes={n_genes} is too small: ceil(G/50)//2//2 must be >= 1 (G >= 151)"
            )
        self.n_genes = n_genes
        self.conv1 = SameConv1d(1, 256, kernel_size=50, stride=50)
        self.conv2 = SameConv1d(256, 128, kernel_size=10, stride=1)
        self.pool1 = nn.MaxPool1d(2)
        self.conv3 = SameConv1d(128, 128, kernel_size=5, stride=1)
        self.pool2 = nn.MaxPool1d(2)
        self.out_length = tower_output_length(n_genes)
        self.out_features = 128 * self.out_length
        _glorot_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _as_sequence(x)
        if x.shape[-1] != self.n_genes:
            raise InputError(None, None, f"CNNTower built for {self.n_genes} genes got input with {x.shape[-1]} genes")
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.pool1(x)
        x = torch.sigmoid(self.conv3(x))
        x = self.pool2(x)
        return torch.flatten(x, 1)


class CNNClassifier(nn.Module):
    """Tower + Linear(out_features → n_classes). ``forward`` returns logits (softmax in the loss)."""

    def __init__(self, n_genes: int, n_classes: int):
        super().__init__()
        if int(n_classes) < 2:
            raise InputError(None, None, f"CNNClassifier: n_classes must be >= 2, got {n_classes}")
        self.n_genes = int(n_genes)
        self.n_classes = int(n_classes)
        self.tower = CNNTower(n_genes)
        self.fc = nn.Linear(self.tower.out_features, self.n_classes)
        _glorot_(self.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.tower(x))


def pair_distance(ea: torch.Tensor, eb: torch.Tensor, distance: str, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise distance of two embedding batches: ``sq`` (a−b)², ``l1`` |a−b|,
    ``chi2`` (a−b)²/(a+b+eps) (the reference code's layer; tower outputs are in (0, 1))."""
    diff = ea - eb
    if distance == "sq":
        return diff * diff
    if distance == "l1":
        return diff.abs()
    if distance == "chi2":
        return diff * diff / (ea + eb + eps)
    raise InputError(None, None, f"unknown distance {distance!r}; choose one of {DISTANCES}")


HEADS = ("paper", "monotone")


class MonotoneHead(nn.Module):
    """Head with the paper's shape (Linear(F→hidden) + ReLU → Dropout → Linear(hidden→1)) whose
    logit can only *fall* when a distance coordinate grows: the first layer's weights are
    ``softplus(raw) ≥ 0`` and the output weights ``-softplus(raw) ≤ 0`` (ReLU is non-decreasing).
    It is a learned, weighted distance on the tower features; the paper's free head may instead
    learn that larger differences mean "same type" for its few training types, which inverts on
    unseen types (issue 12 diagnosis, README "One-shot methods")."""

    def __init__(self, in_features: int, hidden: int = 512, dropout: float = 0.25):
        super().__init__()
        bound1 = math.sqrt(6.0 / (in_features + hidden))
        bound2 = math.sqrt(6.0 / (hidden + 1))
        self.raw1 = nn.Parameter(self._inverse_softplus(torch.empty(hidden, in_features).uniform_(0, bound1)))
        self.bias1 = nn.Parameter(torch.zeros(hidden))
        self.raw2 = nn.Parameter(self._inverse_softplus(torch.empty(1, hidden).uniform_(0, bound2)))
        self.bias2 = nn.Parameter(torch.zeros(1))
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def _inverse_softplus(w: torch.Tensor) -> torch.Tensor:
        w = w.clamp_min(1e-4)
        return w + torch.log(-torch.expm1(-w))

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        h = torch.relu(nn.functional.linear(d, nn.functional.softplus(self.raw1), self.bias1))
        return -nn.functional.linear(self.dropout(h), nn.functional.softplus(self.raw2)) + self.bias2


class SiameseNet(nn.Module):
    """CancerSiamese (SPEC §2.2): shared tower → element-wise distance → Linear(·→512) + ReLU →
    Dropout(0.25) → Linear(512→1) [+ sigmoid].

    ``logits(xa, xb)`` returns the pre-sigmoid score ``[B]`` (train with ``BCEWithLogitsLoss``,
    which is numerically stabler than sigmoid + BCE); ``forward(xa, xb)`` returns P(same type)
    ``= sigmoid(logits)``. ``embed`` + ``head_from_embeddings`` score pairs from cached
    embeddings; they give the same numbers as ``logits`` / ``forward`` on the raw inputs.
    All three distances are symmetric, so the order of a pair does not matter.
    """

    def __init__(self, n_genes: int, distance: str = "sq", tower: CNNTower | None = None,
                 hidden: int = 512, dropout: float = 0.25, head: str = "paper"):
        super().__init__()
        if distance not in DISTANCES:
            raise InputError(None, None, f"unknown distance {distance!r}; choose one of {DISTANCES}")
        if head not in HEADS:
            raise InputError(None, None, f"unknown head {head!r}; choose one of {HEADS}")
        self.head_kind = head
        self.n_genes = int(n_genes)
        self.distance = distance
        if tower is None:
            tower = CNNTower(self.n_genes)
        elif tower.n_genes != self.n_genes:
            raise InputError(None, None, f"SiameseNet: tower built for {tower.n_genes} genes, network for {self.n_genes}")
        self.tower = tower
        if head == "monotone":
            self.head = MonotoneHead(tower.out_features, hidden, dropout)
        else:
            self.head = nn.Sequential(
                nn.Linear(tower.out_features, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, 1),
            )
            _glorot_(self.head)

    @property
    def out_features(self) -> int:
        return self.tower.out_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Tower features ``[B, out_features]``."""
        return self.tower(x)

    def head_logits(self, ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]`` of pairs given their embeddings."""
        return self.head(pair_distance(ea, eb, self.distance)).squeeze(-1)

    def head_from_embeddings(self, ea: torch.Tensor, eb: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        """P(same type) ``[B]`` of pairs given their embeddings (logits if ``logits=True``)."""
        z = self.head_logits(ea, eb)
        return z if logits else torch.sigmoid(z)

    def logits(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores ``[B]``; both inputs go through the tower in one batch."""
        if xa.shape != xb.shape:
            raise InputError(None, None, f"pair inputs differ in shape: {tuple(xa.shape)} vs {tuple(xb.shape)}")
        e = self.embed(torch.cat([xa, xb], dim=0))
        ea, eb = e.split(xa.shape[0], dim=0)
        return self.head_logits(ea, eb)

    def logits_of_rows(self, X: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
        """``logits(X[ia], X[ib])`` with every distinct row of ``X`` passed through the tower once.

        The tower has no dropout or batch statistics, so a sample's embedding does not depend on
        the batch: the logits and the gradients are those of :meth:`logits` (up to the order of
        floating-point sums). Pairs drawn from a few hundred samples share many of them (the
        demo's tcga19 batches of 128 pairs hold about 200 distinct samples of 256; 50 of 1,000
        pairs from 5,000 samples almost none), so training does correspondingly less work."""
        if ia.shape != ib.shape or ia.dim() != 1:
            raise InputError(None, None, f"pair indices must be two vectors of one length, got {tuple(ia.shape)} and {tuple(ib.shape)}")
        rows, inverse = torch.unique(torch.cat([ia, ib]), return_inverse=True)
        e = self.embed(X[rows])[inverse]
        ea, eb = e.split(ia.shape[0], dim=0)
        return self.head_logits(ea, eb)

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """P(same type) ``[B]``."""
        return torch.sigmoid(self.logits(xa, xb))


def tower_state_from(state: dict) -> dict:
    """The tower's own state dict from a tower, :class:`CNNClassifier` or :class:`SiameseNet`
    state dict (keys ``tower.*`` are stripped of their prefix; ``fc.*`` / ``head.*`` dropped)."""
    keys = list(state)
    if any(k.startswith("tower.") for k in keys):
        return {k[len("tower."):]: v for k, v in state.items() if k.startswith("tower.")}
    return dict(state)

