"""Rule harmonise_tcga: GDC-hub matrices → one samples × genes .h5ad in log2(FPKM+1)."""

from oncoshot.sources.tcga import harmonise_tcga
from oncoshot.io import write_h5ad
from oncoshot.runtime import run


def main(sm, log):
    projects = sm.params.projects
    matrices = dict(zip(projects, sm.input.expression))
    clinical = dict(zip(projects, sm.input.clinical)) if len(sm.input.clinical) else None
    adata = harmonise_tcga(
        matrices,
        sm.input.probemap,
        unit=sm.params.unit,
        clinical=clinical,
        primary_codes=tuple(sm.params.primary_codes),
        blood_projects=tuple(sm.params.blood_projects),
        blood_codes=tuple(sm.params.blood_codes),
        on_gene_mismatch=sm.params.on_gene_mismatch,
    )
    log.info("TCGA: %d primary samples × %d genes from %d projects", *adata.shape, len(projects))
    info = adata.uns["patients"]
    log.info("TCGA: %d primary samples of %d patients (patient = first 12 barcode characters); %d patients "
             "have several primary samples (%d samples), kept together on one side of every split",
             info["n_samples_kept"], info["n_patients"], info["n_patients_with_several_samples"],
             info["n_samples_of_such_patients"])
    write_h5ad(adata, sm.output[0])


run(main, snakemake)  # noqa: F821
