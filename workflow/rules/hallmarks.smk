# Hallmark labels and synthetic bulk (SPEC §3.4–3.5).


rule otsu_labels:
    input:
        scores=expand(f"{RESULTS}/singlecell/scores/{{study}}.tsv", study=list(STUDIES)),
    output:
        labels=f"{RESULTS}/singlecell/labels/labels.tsv",
        thresholds=f"{RESULTS}/singlecell/labels/thresholds.tsv",
        png=f"{RESULTS}/singlecell/labels/otsu_histograms.png",
        svg=f"{RESULTS}/singlecell/labels/otsu_histograms.svg",
    params:
        studies=list(STUDIES),
        roles=[s["role"] for s in STUDIES.values()],
    log:
        f"{LOGS}/singlecell/otsu_labels.log",
    benchmark:
        f"{BENCH}/singlecell/otsu_labels.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/otsu_labels.py"


rule synthetic_bulk:
    input:
        adata=f"{RESULTS}/singlecell/qc/{{study}}.h5ad",
        labels=f"{RESULTS}/singlecell/labels/labels.tsv",
    output:
        adata=f"{RESULTS}/singlecell/bulk/{{study}}.h5ad",
        membership=f"{RESULTS}/singlecell/bulk/{{study}}_membership.tsv.gz",
    params:
        mode=lambda wc: "pooled" if STUDIES[wc.study]["role"] == "validation" else "groups",
        cells_per_bulk=config["singlecell"]["cells_per_bulk"],
        seed=config["seed"],
    log:
        f"{LOGS}/singlecell/synthetic_bulk_{{study}}.log",
    benchmark:
        f"{BENCH}/singlecell/synthetic_bulk_{{study}}.tsv"
    resources:
        mem_mb=config["resources"]["singlecell_mem_mb"],
    wildcard_constraints:
        study="|".join(STUDIES) or "NO_STUDY",
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/synthetic_bulk.py"


rule combine_synthetic_bulk:
    input:
        train=expand(f"{RESULTS}/singlecell/bulk/{{study}}.h5ad", study=studies_with_role("train")),
        validation=expand(f"{RESULTS}/singlecell/bulk/{{study}}.h5ad", study=studies_with_role("validation")),
    output:
        train=f"{RESULTS}/singlecell/synthetic_bulk_train.h5ad",
        validation=f"{RESULTS}/singlecell/synthetic_bulk_validation.h5ad",
        summary=f"{RESULTS}/singlecell/synthetic_bulk_summary.tsv",
    log:
        f"{LOGS}/singlecell/combine_synthetic_bulk.log",
    benchmark:
        f"{BENCH}/singlecell/combine_synthetic_bulk.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/combine_synthetic_bulk.py"
