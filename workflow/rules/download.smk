# Retrieval of every configured source: http(s), file:// or a local path; sha256-checked, atomic.
#
# The job runs inside Snakemake (`run:`; profiles/default sets force-use-threads, so the local
# executor runs it in a thread rather than a new Python process): the demo has 74 of these jobs,
# and a process per file (start-up, imports) cost more than the copy and checksum themselves.

import sys as _sys

_sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from oncoshot.download import fetch_logged


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
    run:
        fetch_logged(params.url, output[0], log[0], sha256=params.sha256 or None, retries=params.retries,
                     timeout=params.timeout)
