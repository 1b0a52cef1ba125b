"""Rule download: fetch one source (http(s), file://, local path) with checksum, atomically."""

from oncoshot.download import fetch
from oncoshot.runtime import run


def main(sm, log):
    path = fetch(
        sm.params.url,
        sm.output[0],
        sha256=sm.params.sha256 or None,
        retries=sm.params.retries,
        timeout=sm.params.timeout,
        logger=log,
    )
    log.info("wrote %s", path)


run(main, snakemake)  # noqa: F821 (injected by Snakemake)
