# OncoMark's published hallmark model (PyPI OncoMark 1.0.0): converted to PyTorch without TensorFlow
# or code from the package (oncoshot.sources.oncomark), and its agreement with our trained model.
# Used when config 'hallmarks.scorer' is 'published' or 'both' (README "The published OncoMark model").


rule oncomark_published_model:
    input:
        wheel=downloaded(f"oncomark/{ONCOMARK_WHEEL}"),
    output:
        model=PUBLISHED_HALLMARK_MODEL,
        summary=report_item(
            f"{RESULTS}/hallmarks/published/model_summary.tsv",
            "published_model",
            REPORT_HALLMARK_MODEL,
            "Published OncoMark model",
            result="converted model (table)",
        ),
    params:
        sha256=ONCOMARK_WHEEL_SHA256,
    log:
        f"{LOGS}/hallmarks/oncomark_published_model.log",
    benchmark:
        f"{BENCH}/hallmarks/oncomark_published_model.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/convert_oncomark.py"


rule hallmark_agreement:
    input:
        activity=f"{RESULTS}/hallmarks/bulk_activity.tsv",
    output:
        table=report_item(
            f"{RESULTS}/hallmarks/agreement.tsv",
            "hallmark_agreement",
            REPORT_HALLMARK_MODEL,
            "Published OncoMark model",
            result="agreement with ours per hallmark (table)",
        ),
        by_type=report_item(
            f"{RESULTS}/hallmarks/agreement_by_type.tsv",
            "hallmark_agreement",
            REPORT_HALLMARK_MODEL,
            "Published OncoMark model",
            result="per-type means side by side (table)",
        ),
        png=report_item(
            f"{RESULTS}/hallmarks/agreement.png",
            "hallmark_agreement",
            REPORT_HALLMARK_MODEL,
            "Published OncoMark model",
            result="agreement with ours",
        ),
        svg=f"{RESULTS}/hallmarks/agreement.svg",
    params:
        n_boot=config["hallmarks"]["agreement_bootstrap"],
        seed=config["seed"],
    log:
        f"{LOGS}/hallmarks/hallmark_agreement.log",
    benchmark:
        f"{BENCH}/hallmarks/hallmark_agreement.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/hallmark_agreement.py"
