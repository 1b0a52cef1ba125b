# Marker genes (SPEC §2.4): guided-backpropagation saliency, forward selection, primary vs
# metastatic, overlap and hallmark enrichment, figures.


rule marker_scores:
    input:
        unpack(experiment_inputs),
        siamese=lambda wc: siamese_model(wc.experiment, config["markers"]["init"]),
    output:
        f"{RESULTS}/markers/{{experiment}}/gene_scores.tsv",
    params:
        max_pairs_per_type=config["markers"]["max_pairs_per_type"],
        batch_size=config["markers"]["batch_size"],
        rank_by=config["markers"]["rank_by"],
        saliency=config["markers"]["saliency"],
        seed=config["seed"],
    wildcard_constraints:
        experiment="|".join(config["markers"]["experiments"]),
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/markers/{{experiment}}/marker_scores.log",
    benchmark:
        f"{BENCH}/markers/{{experiment}}/marker_scores.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/marker_scores.py"


rule forward_selection:
    input:
        unpack(experiment_inputs),
        scores=f"{RESULTS}/markers/{{experiment}}/gene_scores.tsv",
    output:
        table=report_item(
            f"{RESULTS}/markers/{{experiment}}/forward_selection.tsv",
            "forward_selection",
            REPORT_MARKERS,
            "{experiment} markers",
            result="forward selection (table)",
        ),
        markers=report_item(
            f"{RESULTS}/markers/{{experiment}}/markers.tsv",
            "markers_table",
            REPORT_MARKERS,
            "{experiment} markers",
            result="marker genes (table)",
        ),
        png=report_item(
            f"{RESULTS}/markers/{{experiment}}/forward_selection.png",
            "forward_selection",
            REPORT_MARKERS,
            "{experiment} markers",
            result="forward selection (Table 2)",
        ),
        svg=f"{RESULTS}/markers/{{experiment}}/forward_selection.svg",
    params:
        step=config["markers"]["selection"]["step"],
        max_k=config["markers"]["selection"]["max_k"],
        n_way=config["markers"]["selection"]["n_way"],
        n_tasks=config["markers"]["selection"]["n_tasks"],
        impossible=config["impossible_requests"],
        seed=config["seed"],
    wildcard_constraints:
        experiment="|".join(config["markers"]["experiments"]),
    log:
        f"{LOGS}/markers/{{experiment}}/forward_selection.log",
    benchmark:
        f"{BENCH}/markers/{{experiment}}/forward_selection.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/forward_selection.py"


rule marker_figures:
    input:
        unpack(experiment_inputs),
        markers=f"{RESULTS}/markers/{{experiment}}/markers.tsv",
    output:
        tsne_train_png=report_item(
            f"{RESULTS}/markers/{{experiment}}/tsne_train.png",
            "tsne_train",
            REPORT_MARKERS,
            "{experiment} markers",
            result="Fig. 4a: t-SNE of training samples",
        ),
        tsne_train_svg=f"{RESULTS}/markers/{{experiment}}/tsne_train.svg",
        tsne_test_png=report_item(
            f"{RESULTS}/markers/{{experiment}}/tsne_test.png",
            "tsne_test",
            REPORT_MARKERS,
            "{experiment} markers",
            result="Fig. 4b: t-SNE of test samples",
        ),
        tsne_test_svg=f"{RESULTS}/markers/{{experiment}}/tsne_test.svg",
        heatmap_png=report_item(
            f"{RESULTS}/markers/{{experiment}}/heatmap.png",
            "marker_heatmap",
            REPORT_MARKERS,
            "{experiment} markers",
            result="Fig. 4c: marker heatmap across types",
        ),
        heatmap_svg=f"{RESULTS}/markers/{{experiment}}/heatmap.svg",
    params:
        seed=config["seed"],
    wildcard_constraints:
        experiment="|".join(config["markers"]["experiments"]),
    log:
        f"{LOGS}/markers/{{experiment}}/marker_figures.log",
    benchmark:
        f"{BENCH}/markers/{{experiment}}/marker_figures.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/marker_figures.py"


rule primary_vs_metastatic:
    input:
        scores=f"{RESULTS}/markers/{config['markers']['primary_experiment']}/gene_scores.tsv",
        markers=f"{RESULTS}/markers/{config['markers']['primary_experiment']}/markers.tsv",
        tcga=f"{RESULTS}/bulk/labelled/tcga.h5ad",
        met500=f"{RESULTS}/bulk/labelled/met500.h5ad",
        samples=f"{RESULTS}/bulk/splits/samples.tsv",
    output:
        table=report_item(
            f"{RESULTS}/markers/primary_vs_metastatic/gnb_accuracy.tsv",
            "gnb",
            REPORT_MARKERS,
            "Primary vs metastatic",
            result="Gaussian NB accuracy by k (table)",
        ),
        png=report_item(
            f"{RESULTS}/markers/primary_vs_metastatic/gnb_accuracy.png",
            "gnb",
            REPORT_MARKERS,
            "Primary vs metastatic",
            result="Gaussian NB accuracy by k",
        ),
        svg=f"{RESULTS}/markers/primary_vs_metastatic/gnb_accuracy.svg",
        tsne_png=[
            report_item(
                f"{RESULTS}/markers/primary_vs_metastatic/tsne_top{k}.png",
                "pvm_tsne",
                REPORT_MARKERS,
                "Primary vs metastatic",
                result=f"Fig. 4d/e: t-SNE on the top {k} primary markers",
            )
            for k in config["markers"]["tsne_top"]
        ],
        tsne_svg=expand(f"{RESULTS}/markers/primary_vs_metastatic/tsne_top{{k}}.svg", k=config["markers"]["tsne_top"]),
    params:
        primary_experiment=config["markers"]["primary_experiment"],
        metastatic_experiment=config["markers"]["metastatic_experiment"],
        ks=config["markers"]["gnb"]["ks"],
        n_folds=config["markers"]["gnb"]["n_folds"],
        tsne_top=config["markers"]["tsne_top"],
        seed=config["seed"],
    log:
        f"{LOGS}/markers/primary_vs_metastatic.log",
    benchmark:
        f"{BENCH}/markers/primary_vs_metastatic.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/primary_vs_metastatic.py"


rule marker_enrichment:
    input:
        primary=f"{RESULTS}/markers/{config['markers']['primary_experiment']}/markers.tsv",
        metastatic=f"{RESULTS}/markers/{config['markers']['metastatic_experiment']}/markers.tsv",
        universe=f"{RESULTS}/bulk/filtered/genes_kept.tsv",
        gene_sets=downloaded("genesets/hallmark_gene_sets.csv"),
    output:
        enrichment=report_item(
            f"{RESULTS}/markers/enrichment.tsv",
            "enrichment",
            REPORT_MARKERS,
            "Overlap and hallmark enrichment",
            result="hallmark enrichment (table)",
        ),
        overlap=report_item(
            f"{RESULTS}/markers/overlap.tsv",
            "overlap",
            REPORT_MARKERS,
            "Overlap and hallmark enrichment",
            result="primary / metastatic marker overlap (table)",
        ),
    log:
        f"{LOGS}/markers/marker_enrichment.log",
    benchmark:
        f"{BENCH}/markers/marker_enrichment.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/marker_enrichment.py"
