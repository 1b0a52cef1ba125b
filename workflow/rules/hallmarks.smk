# Hallmark labels and synthetic bulk (SPEC §3.4–3.5).


rule otsu_labels:
    input:
        scores=expand(f"{RESULTS}/singlecell/scores/{{study}}.tsv", study=list(STUDIES)),
    output:
        labels=f"{RESULTS}/singlecell/labels/labels.tsv",
        thresholds=report_item(
            f"{RESULTS}/singlecell/labels/thresholds.tsv",
            "otsu",
            REPORT_SINGLECELL,
            "Hallmark labels and synthetic bulk",
            result="Otsu thresholds (table)",
        ),
        png=report_item(
            f"{RESULTS}/singlecell/labels/otsu_histograms.png",
            "otsu",
            REPORT_SINGLECELL,
            "Hallmark labels and synthetic bulk",
            result="Otsu thresholds on the UCell scores",
        ),
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
        study=STUDY_PATTERN,
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
        summary=report_item(
            f"{RESULTS}/singlecell/synthetic_bulk_summary.tsv",
            "synthetic_bulk",
            REPORT_SINGLECELL,
            "Hallmark labels and synthetic bulk",
            result="synthetic bulk profiles (table)",
        ),
    log:
        f"{LOGS}/singlecell/combine_synthetic_bulk.log",
    benchmark:
        f"{BENCH}/singlecell/combine_synthetic_bulk.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/combine_synthetic_bulk.py"


# OncoMark N-MTL hallmark model (SPEC §3.6) and the hallmark activity of every bulk sample.


rule train_hallmark_model:
    input:
        f"{RESULTS}/singlecell/synthetic_bulk_train.h5ad",
    output:
        model=f"{RESULTS}/hallmarks/model.pt",
        history=report_item(
            f"{RESULTS}/hallmarks/model_history.tsv",
            "hallmark_history",
            REPORT_HALLMARK_MODEL,
            "Training and validation",
            result="training history (table)",
        ),
    params:
        **HALLMARK_TRAIN_PARAMS,
        seed=config["seed"],
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/hallmarks/train_hallmark_model.log",
    benchmark:
        f"{BENCH}/hallmarks/train_hallmark_model.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/train_hallmark_model.py"


rule cv_hallmark_model:
    input:
        f"{RESULTS}/singlecell/synthetic_bulk_train.h5ad",
    output:
        folds=f"{RESULTS}/hallmarks/cv_folds.tsv",
        summary=report_item(
            f"{RESULTS}/hallmarks/cv_summary.tsv",
            "cv",
            REPORT_HALLMARK_MODEL,
            "Training and validation",
            result="cross-validation metrics (table)",
        ),
        png=report_item(
            f"{RESULTS}/hallmarks/cv_auroc.png",
            "cv",
            REPORT_HALLMARK_MODEL,
            "Training and validation",
            result="cross-validation AUROC per hallmark",
        ),
        svg=f"{RESULTS}/hallmarks/cv_auroc.svg",
    params:
        **HALLMARK_TRAIN_PARAMS,
        n_splits=config["hallmark_model"]["cv_folds"],
        n_repeats=config["hallmark_model"]["cv_repeats"],
        seed=config["seed"],
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/hallmarks/cv_hallmark_model.log",
    benchmark:
        f"{BENCH}/hallmarks/cv_hallmark_model.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/cv_hallmark_model.py"


rule validate_hallmark_model:
    input:
        model=f"{RESULTS}/hallmarks/model.pt",
        validation=f"{RESULTS}/singlecell/synthetic_bulk_validation.h5ad",
    output:
        report_item(
            f"{RESULTS}/hallmarks/heldout_metrics.tsv",
            "heldout",
            REPORT_HALLMARK_MODEL,
            "Training and validation",
            result="held-out studies: metrics (table)",
        ),
    log:
        f"{LOGS}/hallmarks/validate_hallmark_model.log",
    benchmark:
        f"{BENCH}/hallmarks/validate_hallmark_model.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/validate_hallmark_model.py"


rule bulk_hallmark_activity:
    input:
        **hallmark_models(),
        tcga=f"{RESULTS}/bulk/harmonised/tcga.h5ad",
        met500=f"{RESULTS}/bulk/harmonised/met500.h5ad",
        label_map=config["bulk"]["label_map"],
    output:
        activity=report_item(
            f"{RESULTS}/hallmarks/bulk_activity.tsv",
            "bulk_activity",
            REPORT_HALLMARK_MODEL,
            "Hallmark activity of the bulk samples",
            result="activity of every sample (table)",
        ),
        missing=f"{RESULTS}/hallmarks/bulk_missing_genes.tsv",
        comparison=report_item(
            f"{RESULTS}/hallmarks/primary_vs_metastatic.tsv",
            "activity_compare",
            REPORT_HALLMARK_MODEL,
            "Hallmark activity of the bulk samples",
            result="primary vs metastatic (table)",
        ),
        heatmap_png=report_item(
            f"{RESULTS}/hallmarks/activity_by_type.png",
            "activity_heatmap",
            REPORT_HALLMARK_MODEL,
            "Hallmark activity of the bulk samples",
            result="mean activity by cancer type",
        ),
        heatmap_svg=f"{RESULTS}/hallmarks/activity_by_type.svg",
        compare_png=report_item(
            f"{RESULTS}/hallmarks/primary_vs_metastatic.png",
            "activity_compare",
            REPORT_HALLMARK_MODEL,
            "Hallmark activity of the bulk samples",
            result="primary vs metastatic",
        ),
        compare_svg=f"{RESULTS}/hallmarks/primary_vs_metastatic.svg",
    params:
        drop_labels=config["bulk"]["drop_labels"],
        scorers=HALLMARK_SCORERS,
        published_min_coverage=config["hallmarks"]["published"]["min_coverage"],
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/hallmarks/bulk_hallmark_activity.log",
    benchmark:
        f"{BENCH}/hallmarks/bulk_hallmark_activity.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/bulk_hallmark_activity.py"
