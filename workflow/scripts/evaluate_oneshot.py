"""Rule evaluate_oneshot: N-way one-shot accuracy of a Siamese model and the baselines on the very
same tasks (SPEC §2.3): every test sample embedded once, pairs scored in batches."""

import pandas as pd
import torch

from oncoshot.experiments import (load_experiment_inputs, load_model, load_scorer, load_siamese, matrix_genes,
                                  select_samples)
from oncoshot.io import write_tsv
from oncoshot.models import CNNTower, tower_state_from
from oncoshot.policy import fit_request
from oncoshot.oneshot import (accuracy_with_wilson, correct, embed_samples, make_tasks, nn_cosine,
                              nn_euclidean, nn_pearson, score_tasks_from_embeddings)
from oncoshot.runtime import run
from oncoshot.training import pick_device


def main(sm, log):
    torch.set_num_threads(sm.threads)
    p = sm.params
    cohorts, samples = load_experiment_inputs(sm.input)
    X, y, _, patients = select_samples(cohorts, samples, p.test_experiment, "test", sm.input.samples,
                                       with_patients=True)
    device = pick_device()

    genes = matrix_genes(cohorts)
    model, _, _ = load_siamese(sm.input.siamese, device, genes=genes)
    emb = embed_samples(model, X)

    cnn_file = load_model(sm.input.cnn, kind="cnn")
    tower = CNNTower(len(genes))
    tower.load_state_dict(tower_state_from(cnn_file["state_dict"]))
    tower.to(device).eval()
    with torch.no_grad():
        cnn_emb = torch.cat([tower(torch.as_tensor(X[i:i + 1024], device=device)) for i in range(0, len(X), 1024)])

    metric = metric_emb = None
    if sm.input.get("metric"):  # metric.enabled: the whitened-cosine metric of the model experiment
        metric, _, _ = load_scorer(sm.input.metric, device, genes=genes)
        metric_emb = embed_samples(metric, X)
        metric_name = "whitened_cosine"
        if hasattr(metric, "whitened"):
            # metric.transductive: diffusion — reported under its own name (its pool held the unlabelled
            # validation and test samples), beside the plain whitened cosine it is built on (cosine of the
            # whitened embeddings: the same ranking as the calibrated plain metric)
            metric_name = "whitened_cosine_diffusion"
            with torch.no_grad():
                plain_emb = torch.cat([metric.whitened(torch.as_tensor(X[i:i + 1024], device=device))
                                       for i in range(0, len(X), 1024)])

    n_types = len(set(y))
    log.info("%s: %d test samples of %d patients in %d types", sm.wildcards.run, len(y), len(set(patients)), n_types)
    rows = []
    for n_way_requested in p.n_way:
        # impossible_requests: error → one line naming evaluation.n_way; reduce → N = n_types,
        # recorded in the column n_way_requested
        n_way = fit_request(n_way_requested, n_types, key="evaluation.n_way", policy=p.impossible,
                            what=f"run '{sm.wildcards.run}' has only {n_types} test types",
                            source=sm.input.samples, log=log)
        tasks = make_tasks(y, n_way, p.n_tasks, p.seed, groups=patients)  # no task pairs two samples of a patient
        methods = {
            "siamese": lambda: score_tasks_from_embeddings(model, emb, tasks, batch=p.batch),
            "nn_euclidean": lambda: nn_euclidean(X, tasks, device=device),
            "nn_pearson": lambda: nn_pearson(X, tasks, device=device),
            "cnn_cosine": lambda: nn_cosine(cnn_emb, tasks, device=device),
        }
        if metric is not None:
            methods[metric_name] = lambda: score_tasks_from_embeddings(metric, metric_emb, tasks, batch=p.batch)
            if metric_name == "whitened_cosine_diffusion":
                methods["whitened_cosine"] = lambda: nn_cosine(plain_emb, tasks, device=device)
        for method, score in methods.items():
            ok = correct(score(), tasks)
            acc, low, high = accuracy_with_wilson(ok)
            log.info("%s %d-way %s: %.4f [%.4f, %.4f]", sm.wildcards.run, n_way, method, acc, low, high)
            rows.append(dict(experiment=sm.wildcards.run, model=p.model_experiment, init=p.init,
                             test=p.test_experiment, method=method, n_way=n_way,
                             n_way_requested=n_way_requested, accuracy=acc,
                             ci_low=low, ci_high=high, tasks=len(tasks), seed=p.seed,
                             n_test_samples=len(y), n_test_patients=len(set(patients)), n_test_types=n_types))
    write_tsv(pd.DataFrame(rows), sm.output[0])


run(main, snakemake)  # noqa: F821
