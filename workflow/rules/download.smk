# Retrieval of every configured source: http(s), file:// or a local path; sha256-checked, atomic.


wildcard_constraints:
    group="tcga|met500|scrna|genesets|oncomark",


# Downloads run where Snakemake runs, never as cluster jobs: compute nodes often have no internet.
localrules:
    download,


rule download:
    input:
        download_local_input,
    output:
        f"{RESULTS}/downloads/{{group}}/{{filename}}",
    params:
        url=download_url,
        sha256=download_sha256,
        retries=config["download"]["retries"],
        timeout=config["download"]["timeout"],
    log:
        f"{LOGS}/download/{{group}}/{{filename}}.log",
    benchmark:
        f"{BENCH}/download/{{group}}/{{filename}}.tsv"
    retries: 0
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/download.py"
