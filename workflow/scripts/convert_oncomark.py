"""Rule oncomark_published_model: OncoMark's published model (PyPI wheel, sha256 pinned) converted to a
PyTorch model file read with weights_only=True; the .keras graph is checked layer by layer and the
joblib scaler is read by a restricted unpickler (oncoshot.sources.oncomark). Nothing of the package
is imported or run."""

import pandas as pd

from oncoshot.errors import InputError
from oncoshot.io import write_tsv
from oncoshot.runtime import run
from oncoshot.sources import oncomark as om


def main(sm, log):
    if sm.params.sha256 != om.WHEEL_SHA256:
        raise InputError(None, "ONCOMARK_WHEEL_SHA256", f"the workflow pins {sm.params.sha256}, "
                         f"oncoshot.sources.oncomark pins {om.WHEEL_SHA256}; they must agree")
    pub = om.convert_wheel_to_file(sm.input.wheel, sm.output.model)
    log.info("%s: sha256 %s verified; used only %s", sm.input.wheel, om.WHEEL_SHA256,
             ", ".join(om.MODEL_MEMBERS.values()))
    log.info("network: shared Dense(%d→64, relu), %d heads Dense(64→16, relu) → Dense(16→1, sigmoid); "
             "outputs %s; Keras %s file", len(pub.features), len(pub.model.heads), ", ".join(pub.model.hallmarks),
             pub.meta.get("keras_version"))
    log.info("scaler: StandardScaler over %d features, fitted on %s profiles (sklearn %s)", len(pub.mean),
             pub.meta.get("n_samples_seen"), pub.meta.get("sklearn_version"))
    rows = [("wheel", pub.meta["wheel"]), ("wheel_sha256", pub.meta["wheel_sha256"]),
            ("keras_version", pub.meta["keras_version"]), ("sklearn_version", pub.meta["sklearn_version"]),
            ("n_features", len(pub.features)), ("n_training_profiles_scaler", pub.meta["n_samples_seen"]),
            ("output_order", ",".join(pub.model.hallmarks)), ("model_file", sm.output.model)]
    write_tsv(pd.DataFrame(rows, columns=["key", "value"]), sm.output.summary)
    log.info("wrote %s", sm.output.model)


run(main, snakemake)  # noqa: F821
