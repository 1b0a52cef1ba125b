# Bulk branch preprocessing (SPEC §1): harmonise → gene filter → label merge → type splits (by
# patient) and the patient report.


rule harmonise_tcga:
    input:
        expression=tcga_expression_files(),
        clinical=tcga_clinical_files(),
        probemap=downloaded("tcga/probemap.tsv"),
    output:
        f"{RESULTS}/bulk/harmonised/tcga.h5ad",
    params:
        projects=config["tcga"]["projects"],
        unit=config["tcga"]["unit"],
        primary_codes=config["tcga"]["primary_codes"],
        blood_projects=config["tcga"]["blood_projects"],
        blood_codes=config["tcga"]["blood_codes"],
        on_gene_mismatch=config["tcga"]["on_gene_mismatch"],
        sources=download_sources(
            *[k for k in DOWNLOADS if k.startswith("tcga/")],
        ),
    log:
        f"{LOGS}/bulk/harmonise_tcga.log",
    benchmark:
        f"{BENCH}/bulk/harmonise_tcga.tsv"
    resources:
        mem_mb=config["resources"]["harmonise_mem_mb"],
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/harmonise_tcga.py"


rule harmonise_met500:
    input:
        expression=downloaded("met500/expression.tsv.gz"),
        metadata=downloaded("met500/metadata.tsv"),
        probemap=downloaded("tcga/probemap.tsv"),
    output:
        adata=f"{RESULTS}/bulk/harmonised/met500.h5ad",
        libraries=report_item(
            f"{RESULTS}/bulk/harmonised/met500_libraries.tsv",
            "bulk_libraries",
            REPORT_BULK,
            "Preprocessing",
            result="MET500 libraries: patient, type, kept or dropped",
        ),
    params:
        unit=config["met500"]["unit"],
        sample_column=config["met500"]["sample_column"],
        label_column=config["met500"]["label_column"],
        patient_column=config["met500"]["patient_column"],
        library_column=config["met500"]["library_column"],
        patient_policy=config["met500"]["patient_policy"],
        libraries=config["met500"]["libraries"],
        prefer_library=config["met500"]["prefer_library"],
        sources=download_sources("met500/expression.tsv.gz", "met500/metadata.tsv", "tcga/probemap.tsv"),
    log:
        f"{LOGS}/bulk/harmonise_met500.log",
    benchmark:
        f"{BENCH}/bulk/harmonise_met500.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/harmonise_met500.py"


rule filter_genes:
    input:
        tcga=f"{RESULTS}/bulk/harmonised/tcga.h5ad",
        met500=f"{RESULTS}/bulk/harmonised/met500.h5ad",
    output:
        tcga=f"{RESULTS}/bulk/filtered/tcga.h5ad",
        met500=f"{RESULTS}/bulk/filtered/met500.h5ad",
        kept=f"{RESULTS}/bulk/filtered/genes_kept.tsv",
        counts=report_item(
            f"{RESULTS}/bulk/filtered/filter_counts.tsv",
            "bulk_filter",
            REPORT_BULK,
            "Preprocessing",
            result="gene filter: genes kept per cohort",
        ),
    params:
        threshold=config["bulk"]["filter_threshold"],
    log:
        f"{LOGS}/bulk/filter_genes.log",
    benchmark:
        f"{BENCH}/bulk/filter_genes.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/filter_genes.py"


rule merge_labels:
    input:
        adata=f"{RESULTS}/bulk/filtered/{{cohort}}.h5ad",
        label_map=config["bulk"]["label_map"],
    output:
        adata=f"{RESULTS}/bulk/labelled/{{cohort}}.h5ad",
        report=report_item(
            f"{RESULTS}/bulk/labelled/{{cohort}}_labels.tsv",
            "bulk_labels",
            REPORT_BULK,
            "Preprocessing",
            result="label merging: {cohort}",
        ),
    params:
        drop_labels=config["bulk"]["drop_labels"],
    log:
        f"{LOGS}/bulk/merge_labels_{{cohort}}.log",
    benchmark:
        f"{BENCH}/bulk/merge_labels_{{cohort}}.tsv"
    wildcard_constraints:
        cohort="tcga|met500",
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/merge_labels.py"


rule split_types:
    input:
        tcga=f"{RESULTS}/bulk/labelled/tcga.h5ad",
        met500=f"{RESULTS}/bulk/labelled/met500.h5ad",
    output:
        types=report_item(
            f"{RESULTS}/bulk/splits/types.tsv",
            "bulk_splits",
            REPORT_BULK,
            "Preprocessing",
            result="type splits",
        ),
        samples=f"{RESULTS}/bulk/splits/samples.tsv",
        patients=report_item(
            f"{RESULTS}/bulk/patients.tsv",
            "bulk_patients",
            REPORT_BULK,
            "Preprocessing",
            result="patients: samples and libraries merged or dropped",
        ),
    params:
        training_sets=config["splits"]["training_sets"],
        n_test_types=config["splits"]["n_test_types"],
        validation_fraction=config["splits"]["validation_fraction"],
        met500_n_train=config["splits"]["met500_n_train"],
        min_samples=config["splits"]["min_samples"],
        small_type_policy=config["splits"]["small_type_policy"],
        seed=config["seed"],
        impossible=config["impossible_requests"],
        requirements=TEST_TYPE_REQUIREMENTS,
    log:
        f"{LOGS}/bulk/split_types.log",
    benchmark:
        f"{BENCH}/bulk/split_types.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/split_types.py"
