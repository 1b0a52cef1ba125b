"""Rule fit_metric: the whitened-cosine metric of an experiment, learned on its training types and
calibrated on the validation half of its unseen types (oncoshot.metric; README "One-shot methods")."""

from oncoshot.experiments import (cohort_model_meta, load_experiment_inputs, matrix_genes, save_model,
                                  select_samples)
from oncoshot.io import write_tsv
from oncoshot.metric import fit_whitened_cosine
from oncoshot.runtime import run


def main(sm, log):
    import pandas as pd

    cohorts, samples = load_experiment_inputs(sm.input)
    exp = sm.wildcards.experiment
    X, y, _ = select_samples(cohorts, samples, exp, "train", sm.input.samples)
    Xv, yv, _, pv = select_samples(cohorts, samples, exp, "validation", sm.input.samples, with_patients=True)
    p = sm.params
    X_pool = None
    if p.transductive == "diffusion":  # unlabelled: the labels select_samples returns are not used
        X_pool, _, _ = select_samples(cohorts, samples, exp, ["validation", "test"], sm.input.samples)
    net, summary = fit_whitened_cosine(X, y, n_components=p.n_components, shrinkage=p.shrinkage,
                                       X_cal=Xv, labels_cal=yv, groups_cal=pv, transductive=p.transductive,
                                       X_pool=X_pool, diffusion_neighbours=p.diffusion_neighbours,
                                       diffusion_beta=p.diffusion_beta, seed=p.seed, log=log.info)
    save_model(sm.output.model, kind="metric", state_dict=net.state_dict(), genes=matrix_genes(cohorts),
               experiment=exp, method="whitened_cosine", n_components=summary["n_components"],
               shrinkage=summary["shrinkage"], transductive=summary["transductive"], **cohort_model_meta(cohorts))
    write_tsv(pd.DataFrame([dict(experiment=exp, **summary)]), sm.output.summary)


run(main, snakemake)  # noqa: F821
