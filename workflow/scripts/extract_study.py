"""Rule extract_study: unpack a 3CA study archive safely (no member may leave the folder)."""

from pathlib import Path

from oncoshot.download import safe_extract
from oncoshot.runtime import run


def main(sm, log):
    files = safe_extract(sm.input[0], sm.output[0])
    log.info("extracted %d files from %s into %s", len(files), sm.input[0], sm.output[0])
    for f in files:
        log.info("  %s (%d bytes)", Path(f).relative_to(sm.output[0]), Path(f).stat().st_size)


run(main, snakemake)  # noqa: F821
