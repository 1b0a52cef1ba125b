"""Rule harmonise_met500: MET500 matrix + metadata → samples × genes .h5ad in log2(FPKM+1)."""

from oncoshot.bulk import harmonise_met500
from oncoshot.io import write_h5ad
from oncoshot.runtime import run


def main(sm, log):
    adata = harmonise_met500(
        sm.input.expression,
        sm.input.metadata,
        sm.input.probemap,
        unit=sm.params.unit,
        sample_column=sm.params.sample_column,
        label_column=sm.params.label_column,
    )
    log.info("MET500: %d samples × %d genes", *adata.shape)
    write_h5ad(adata, sm.output[0])


run(main, snakemake)  # noqa: F821
