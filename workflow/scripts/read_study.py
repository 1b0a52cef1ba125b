"""Rule read_study: a 3CA study folder → sparse cells × genes .h5ad with cell metadata."""

from pathlib import Path

from oncoshot.errors import InputError
from oncoshot.io import write_h5ad
from oncoshot.runtime import run
from oncoshot.singlecell import read_study


def study_folder(root: Path, study: str) -> Path:
    """The folder holding the study's Cells.csv: the root itself, ``root/<study>`` or the single
    sub-folder that has one."""
    for candidate in (root, root / study):
        if (candidate / "Cells.csv").exists():
            return candidate
    found = sorted(p.parent for p in root.rglob("Cells.csv"))
    if len(found) != 1:
        raise InputError(root, "Cells.csv", f"expected one study folder in the archive, found {len(found)}")
    return found[0]


def main(sm, log):
    folder = study_folder(Path(sm.input[0]), sm.wildcards.study)
    adata = read_study(folder, tissue=sm.params.tissue, study=sm.wildcards.study)
    log.info("%s: %d cells × %d genes (%s), tissue %s", sm.wildcards.study, adata.n_obs, adata.n_vars,
             adata.uns.get("unit"), sm.params.tissue)
    write_h5ad(adata, sm.output[0])


run(main, snakemake)  # noqa: F821
