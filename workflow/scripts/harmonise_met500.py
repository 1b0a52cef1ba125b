"""Rule harmonise_met500: MET500 matrix + metadata → samples × genes .h5ad in log2(FPKM+1), one
library per patient by default (met500.libraries), with the per-library decisions as a table."""

from oncoshot.io import write_h5ad, write_tsv
from oncoshot.runtime import run
from oncoshot.sources.met500 import harmonise_met500


def main(sm, log):
    p = sm.params
    adata = harmonise_met500(
        sm.input.expression,
        sm.input.metadata,
        sm.input.probemap,
        unit=p.unit,
        sample_column=p.sample_column,
        label_column=p.label_column,
        patient_column=p.patient_column,
        library_column=p.library_column,
        patient_policy=p.patient_policy,
        libraries=p.libraries,
        prefer_library=tuple(p.prefer_library),
    )
    info = adata.uns["patients"]
    log.info("MET500: %d libraries of %d patients in the matrix; %d patients have several libraries "
             "(%d libraries)", info["n_samples_in"], info["n_patients"], info["n_patients_with_several_samples"],
             info["n_samples_of_such_patients"])
    log.info("MET500: %s → %d libraries kept, %d dropped (%d patients keep several)", info["policy"],
             info["n_samples_kept"], info["n_libraries_dropped"], info["n_patients_with_several_kept"])
    log.info("MET500: %d samples × %d genes", *adata.shape)
    libraries = adata.uns["libraries"]
    write_tsv(libraries, sm.output.libraries)
    write_h5ad(adata, sm.output.adata)


run(main, snakemake)  # noqa: F821
