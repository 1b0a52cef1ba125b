# Single-cell branch (SPEC §3.1–3.3): 3CA study archives (+ metadata) → cells × genes → QC → UCell scores.
# One job per study (wildcard), so a cluster runs the studies in parallel.


rule extract_study:
    input:
        unpack(study_inputs),
    output:
        directory(f"{RESULTS}/singlecell/raw/{{study}}"),
    params:
        sources=study_sources,
    log:
        f"{LOGS}/singlecell/extract_{{study}}.log",
    benchmark:
        f"{BENCH}/singlecell/extract_{{study}}.tsv"
    wildcard_constraints:
        study=STUDY_PATTERN,
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/extract_study.py"


rule read_study:
    input:
        f"{RESULTS}/singlecell/raw/{{study}}",
    output:
        f"{RESULTS}/singlecell/studies/{{study}}.h5ad",
    params:
        tissue=lambda wc: STUDIES[wc.study]["tissue"],
        technologies=lambda wc: STUDIES[wc.study].get("technologies") or [],
    log:
        f"{LOGS}/singlecell/read_{{study}}.log",
    benchmark:
        f"{BENCH}/singlecell/read_{{study}}.tsv"
    resources:
        mem_mb=config["resources"]["singlecell_mem_mb"],
    wildcard_constraints:
        study=STUDY_PATTERN,
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/read_study.py"


rule qc_cells:
    input:
        f"{RESULTS}/singlecell/studies/{{study}}.h5ad",
    output:
        adata=f"{RESULTS}/singlecell/qc/{{study}}.h5ad",
        cells=f"{RESULTS}/singlecell/qc/{{study}}_cells.tsv",
        summary=report_item(
            f"{RESULTS}/singlecell/qc/{{study}}_summary.tsv",
            "qc",
            REPORT_SINGLECELL,
            "Cell QC",
            result="cells kept and dropped (table)",
            study="{study}",
        ),
        png=report_item(
            f"{RESULTS}/singlecell/qc/{{study}}_qc.png",
            "qc",
            REPORT_SINGLECELL,
            "Cell QC",
            result="QC scatter",
            study="{study}",
        ),
        svg=f"{RESULTS}/singlecell/qc/{{study}}_qc.svg",
    params:
        max_mito_fraction=config["singlecell"]["qc"]["max_mito_fraction"],
        min_genes=config["singlecell"]["qc"]["min_genes"],
        max_genes=config["singlecell"]["qc"]["max_genes"],
        normal_markers=config["singlecell"]["qc"]["normal_markers"],
        cell_type_column=config["singlecell"]["qc"]["cell_type_column"],
        keep_cell_types=config["singlecell"]["qc"]["keep_cell_types"],
    log:
        f"{LOGS}/singlecell/qc_{{study}}.log",
    benchmark:
        f"{BENCH}/singlecell/qc_{{study}}.tsv"
    resources:
        mem_mb=config["resources"]["singlecell_mem_mb"],
    wildcard_constraints:
        study=STUDY_PATTERN,
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/qc_cells.py"


rule score_hallmarks:
    input:
        adata=f"{RESULTS}/singlecell/qc/{{study}}.h5ad",
        gene_sets=downloaded("genesets/hallmark_gene_sets.csv"),
    output:
        scores=f"{RESULTS}/singlecell/scores/{{study}}.tsv",
        missing=f"{RESULTS}/singlecell/scores/{{study}}_missing_genes.tsv",
    params:
        max_rank=config["singlecell"]["ucell"]["max_rank"],
        chunk_size=config["singlecell"]["ucell"]["chunk_size"],
        no_signature_genes=config["singlecell"]["ucell"]["no_signature_genes"],
        gene_sets_source=config["singlecell"]["gene_sets_url"],
        sources=download_sources("genesets/hallmark_gene_sets.csv"),
    log:
        f"{LOGS}/singlecell/score_{{study}}.log",
    benchmark:
        f"{BENCH}/singlecell/score_{{study}}.tsv"
    resources:
        mem_mb=config["resources"]["singlecell_mem_mb"],
    wildcard_constraints:
        study=STUDY_PATTERN,
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/score_hallmarks.py"
