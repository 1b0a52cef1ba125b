"""Rule skipped_steps: the steps the config skips (``skip``, ``bulk.sources``, a cohort's
``gene_filter: false``), each with its reason, as a table (also printed at start-up)."""

import pandas as pd

from oncoshot.io import write_tsv
from oncoshot.runtime import run


def main(sm, log):
    rows = pd.DataFrame(sm.params.rows, columns=["step", "reason"])
    for row in rows.itertuples(index=False):
        log.info("skipped: %s — %s", row.step, row.reason)
    write_tsv(rows, sm.output[0])


run(main, snakemake)  # noqa: F821
