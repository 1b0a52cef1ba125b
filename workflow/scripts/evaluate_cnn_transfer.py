"""Rule evaluate_cnn_transfer: the 1D-CNN trained on the shared primary types, applied to the
metastatic samples of the same types (paper: 83.33 % accuracy; Fig. 3c confusion matrix)."""

import numpy as np
import pandas as pd
import torch

from oncoshot.experiments import load_cohorts, load_model, select_samples
from oncoshot.io import write_tsv
from oncoshot.models import CNNClassifier
from oncoshot.oneshot import accuracy_with_wilson
from oncoshot.plots import confusion_heatmap, save_figure
from oncoshot.runtime import run
from oncoshot.training import classifier_logits, pick_device


def main(sm, log):
    torch.set_num_threads(sm.threads)
    cohorts, samples = load_cohorts(sm.input.tcga, sm.input.met500, sm.input.samples)
    X, y, ids = select_samples(cohorts, samples, sm.params.experiment, "test", sm.input.samples)
    f = load_model(sm.input.cnn, kind="cnn")
    classes = list(f["classes"])
    model = CNNClassifier(len(f["genes"]), len(classes))
    model.load_state_dict(f["state_dict"])
    model.to(pick_device()).eval()
    pred = np.asarray(classes)[classifier_logits(model, X).argmax(axis=1)]
    acc, low, high = accuracy_with_wilson(pred == y)
    log.info("primary-trained CNN on %d metastatic samples: accuracy %.4f [%.4f, %.4f]", len(y), acc, low, high)
    write_tsv(pd.DataFrame([dict(experiment=sm.params.experiment, n_samples=len(y), n_types=len(set(y)),
                                 accuracy=acc, ci_low=low, ci_high=high, paper_accuracy=0.8333)]),
              sm.output.accuracy)
    write_tsv(pd.DataFrame({"sample_id": ids, "true_type": y, "predicted_type": pred}), sm.output.predictions)
    confusion = pd.crosstab(pd.Series(y, name="true"), pd.Series(pred, name="predicted")).reindex(
        index=sorted(set(y)), columns=classes, fill_value=0)
    write_tsv(confusion, sm.output.confusion, index=True)
    fig = confusion_heatmap(confusion, f"1D-CNN trained on primary (TCGA), tested on metastatic (MET500)\n"
                                       f"accuracy {acc:.1%} (95% CI {low:.1%}–{high:.1%}); paper 83.33%")
    save_figure(fig, sm.output.png, sm.output.svg)


run(main, snakemake)  # noqa: F821
