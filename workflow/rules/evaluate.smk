# N-way one-shot evaluation (SPEC §2.3) and the primary→metastatic CNN experiment.


rule evaluate_oneshot:
    input:
        unpack(evaluation_inputs),
    output:
        f"{RESULTS}/evaluation/oneshot/{{run}}.tsv",
    params:
        model_experiment=lambda wc: EVAL_RUNS[wc.run]["model"],
        init=lambda wc: EVAL_RUNS[wc.run]["init"],
        test_experiment=lambda wc: EVAL_RUNS[wc.run]["test"],
        n_way=config["evaluation"]["n_way"],
        n_tasks=config["evaluation"]["n_tasks"],
        batch=config["evaluation"]["batch"],
        impossible=config["impossible_requests"],
        seed=config["seed"],
    wildcard_constraints:
        run="|".join(EVAL_RUNS),
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/evaluation/oneshot_{{run}}.log",
    benchmark:
        f"{BENCH}/evaluation/oneshot_{{run}}.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/evaluate_oneshot.py"


rule evaluate_cnn_transfer:
    input:
        cnn=f"{RESULTS}/models/cnn_primary_to_met/cnn.pt",
        tcga=f"{RESULTS}/bulk/labelled/tcga.h5ad",
        met500=f"{RESULTS}/bulk/labelled/met500.h5ad",
        samples=f"{RESULTS}/bulk/splits/samples.tsv",
    output:
        accuracy=report_item(
            f"{RESULTS}/evaluation/cnn_primary_to_met/accuracy.tsv",
            "cnn_transfer",
            REPORT_ONESHOT,
            "Primary-trained CNN on metastases",
            result="accuracy (table)",
        ),
        predictions=f"{RESULTS}/evaluation/cnn_primary_to_met/predictions.tsv",
        confusion=f"{RESULTS}/evaluation/cnn_primary_to_met/confusion.tsv",
        png=report_item(
            f"{RESULTS}/evaluation/cnn_primary_to_met/confusion.png",
            "cnn_transfer",
            REPORT_ONESHOT,
            "Primary-trained CNN on metastases",
            result="Fig. 3c: confusion matrix",
        ),
        svg=f"{RESULTS}/evaluation/cnn_primary_to_met/confusion.svg",
    params:
        experiment="cnn_primary_to_met",
    threads: 1
    log:
        f"{LOGS}/evaluation/cnn_primary_to_met.log",
    benchmark:
        f"{BENCH}/evaluation/cnn_primary_to_met.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/evaluate_cnn_transfer.py"


rule summarise_oneshot:
    input:
        evaluations=expand(f"{RESULTS}/evaluation/oneshot/{{run}}.tsv", run=list(EVAL_RUNS)),
        siamese_histories=siamese_histories(),
    output:
        table=report_item(
            f"{RESULTS}/evaluation/oneshot_results.tsv",
            "oneshot_table",
            REPORT_ONESHOT,
            "N-way accuracy",
            result="accuracy of every run and method (table)",
        ),
        primary_png=report_item(
            f"{RESULTS}/evaluation/fig3a_primary.png",
            "oneshot_primary",
            REPORT_ONESHOT,
            "N-way accuracy",
            result="Fig. 3a: unseen primary types",
        ),
        primary_svg=f"{RESULTS}/evaluation/fig3a_primary.svg",
        metastatic_png=report_item(
            f"{RESULTS}/evaluation/fig3b_metastatic.png",
            "oneshot_metastatic",
            REPORT_ONESHOT,
            "N-way accuracy",
            result="Fig. 3b: unseen metastatic types",
        ),
        metastatic_svg=f"{RESULTS}/evaluation/fig3b_metastatic.svg",
        curves_png=report_item(
            f"{RESULTS}/evaluation/training_curves.png",
            "training_curves",
            REPORT_ONESHOT,
            "Training",
            result="Siamese training curves",
        ),
        curves_svg=f"{RESULTS}/evaluation/training_curves.svg",
    params:
        primary_runs=[r for r, v in EVAL_RUNS.items() if v["test"] != "met500" and v["test"] not in USER_COHORTS],
        cohort_runs=[r for r, v in EVAL_RUNS.items() if v["test"] in USER_COHORTS],
        metastatic_runs=[r for r, v in EVAL_RUNS.items() if v["test"] == "met500"],
    log:
        f"{LOGS}/evaluation/summarise_oneshot.log",
    benchmark:
        f"{BENCH}/evaluation/summarise_oneshot.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/summarise_oneshot.py"
