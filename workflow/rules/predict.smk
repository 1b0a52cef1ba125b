# One-shot prediction for the user's own samples (config 'predict', README "Classify your own
# samples"): a trained Siamese model types the queries against the labelled support samples, and
# the hallmark model scores the queries.


rule predict_oneshot:
    input:
        unpack(predict_inputs),
    output:
        predictions=report_item(
            f"{RESULTS}/predict/{{job}}/predictions.tsv", "predict_table", REPORT_PREDICT, "{job}",
            table="predictions",
        ),
        hallmarks=report_item(
            f"{RESULTS}/predict/{{job}}/hallmarks.tsv", "predict_hallmarks", REPORT_PREDICT, "{job}",
            table="hallmark activity",
        ),
        missing=f"{RESULTS}/predict/{{job}}/genes_missing.tsv",
        alignment=f"{RESULTS}/predict/{{job}}/alignment.tsv",
        png=report_item(
            f"{RESULTS}/predict/{{job}}/probabilities.png", "predict_figure", REPORT_PREDICT, "{job}",
            figure="probabilities",
        ),
        svg=f"{RESULTS}/predict/{{job}}/probabilities.svg",
    params:
        support=lambda wc: PREDICT_JOBS[wc.job]["support"],
        queries=lambda wc: PREDICT_JOBS[wc.job]["queries"],
        sample_column=lambda wc: PREDICT_JOBS[wc.job]["sample_column"],
        type_column=lambda wc: PREDICT_JOBS[wc.job]["type_column"],
        min_coverage=lambda wc: PREDICT_JOBS[wc.job]["min_coverage"],
        min_probability=lambda wc: PREDICT_JOBS[wc.job]["min_probability"],
        batch=config["evaluation"]["batch"],
        published_min_coverage=config["hallmarks"]["published"]["min_coverage"],
    wildcard_constraints:
        job=PREDICT_JOB_PATTERN,
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/predict/{{job}}.log",
    benchmark:
        f"{BENCH}/predict/{{job}}.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/predict_oneshot.py"


# `snakemake results/predict/<name>/…` with a name that is no configured job: one error line
# listing the configured jobs (instead of Snakemake's bare MissingRuleException).
rule predict_unknown_job:
    input:
        unknown_predict_job,
    output:
        f"{RESULTS}/predict/{{job}}/{{file}}",
    wildcard_constraints:
        # not a configured job: the lookahead sees the whole path, so it ends at the next '/'
        job=f"(?!(?:{PREDICT_JOB_PATTERN})/)[^/]+",
        file="predictions.tsv|hallmarks.tsv|genes_missing.tsv|alignment.tsv|probabilities.png|probabilities.svg",
    log:
        f"{LOGS}/predict/unknown_{{job}}_{{file}}.log",
    localrule: True
    conda:
        "../../envs/oncoshot.yaml"
    shell:
        "exit 1"
