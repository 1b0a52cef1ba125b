"""The example prediction job's input files (``resources/predict_example/``), cut from the demo.

``make_example(demo_dir, out_dir, seed)`` writes what a user of the ``predict`` rule would bring:

- ``support.tsv`` — a GDC-hub-style matrix (genes × samples, tab-separated, versioned Ensembl ids
  in the first column, ``_PAR_Y`` rows included, log2(FPKM+1)): ``K_SHOT`` TCGA primary tumours of
  each of the six ``SUPPORT_TYPES`` projects, all types the demo's Siamese models never train on
  (they are test types of every experiment);
- ``support_labels.tsv`` — ``sample_id``, ``type``, with the user's own type names
  (``stomach``, ``liver`` …) rather than TCGA codes;
- ``queries.h5ad`` — AnnData samples × genes with gene **symbols** as ``var_names``, in linear
  **FPKM**: ``QUERIES_PER_TYPE`` MET500 metastases of each support type plus ``N_ABSENT`` of a type
  that has no support (``testis``, TGCT), with ``ABSENT_GENES`` genes left out (as a different
  annotation would) so that the missing-gene report has something to say;
- ``query_labels.tsv`` — the true types of the queries (optional input of a job; used to check);
- ``README.md``.

Patients: every support and every query comes from a different patient — supports from distinct
TCGA patients (one vial each; patient = first 12 barcode characters), queries from distinct MET500
patients (one library each, chosen as the workflow does: poly-A preferred) — so no two example
samples are twin libraries or vials of one tumour (checked: :func:`make_example` raises otherwise).

Patients, libraries and left-out genes are drawn with ``numpy.random.default_rng(seed)`` from sorted
ids, so the same demo and seed give the same files (the ``.tsv`` files byte for byte).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .bulk import is_par_y, read_matrix, strip_version
from .errors import InputError
from .io import atomic_path, write_h5ad, write_tsv
from .sources.met500 import read_met500_metadata, select_libraries
from .sources.tcga import patient_id, read_probemap, sample_code

#: TCGA project → the user's name for the type (support and queries).
SUPPORT_TYPES = {"STAD": "stomach", "LIHC": "liver", "SARC": "sarcoma", "PAAD": "pancreas",
                 "ESCA": "oesophagus", "MESO": "mesothelioma"}
#: MET500 label of each support project (LIHC is HCC after label merging).
MET500_LABEL = {"STAD": "STAD", "LIHC": "HCC", "SARC": "SARC", "PAAD": "PAAD", "ESCA": "ESCA", "MESO": "MESO"}
ABSENT_TYPE = ("TGCT", "testis")  # MET500 label, user name: queries of a type without support
K_SHOT = 2
QUERIES_PER_TYPE = 4
N_ABSENT = 3
ABSENT_GENES = 30

README = """# Example prediction job (simulated demo data)

Cut from the simulated demo cohort (`resources/demo/`) by
`python workflow/scripts/make_predict_example.py --demo resources/demo --out resources/predict_example`
(library: `workflow/scripts/oncoshot/predict_example.py`). The `example` job of `predict:` in
`config/config.yaml` classifies the queries with the demo's `tcga19` Siamese model; see the README
section "Classify your own samples".

| file | what | format |
|---|---|---|
| `support.tsv` | {k} TCGA primary tumours (distinct patients) of each of 6 types the model never trained on | genes × samples, tab-separated, GDC layout: `Ensembl_ID` column with versioned ids (and `_PAR_Y` rows), log2(FPKM+1) |
| `support_labels.tsv` | the type of each support sample, in the user's own words | `sample_id`, `type` |
| `queries.h5ad` | {q} MET500 metastases (one library each of distinct patients) of each support type + {a} of a type with no support (`testis`) | AnnData samples × genes, gene symbols as `var_names`, linear FPKM; {g} genes left out |
| `query_labels.tsv` | the true types of the queries (optional; adds `true_type` and `correct` to the predictions) | `sample_id`, `type` |

All values are simulated; nothing here describes real tumours.
"""


def _tcga_samples(bulk: Path, project: str) -> pd.DataFrame:
    """Primary tumours (code 01) of a project, one vial per patient (the first barcode)."""
    path = bulk / f"TCGA-{project}.star_fpkm.tsv.gz"
    df = read_matrix(path)
    keep = sorted(s for s in df.columns if sample_code(s, path) == "01")
    first = pd.Series(keep).groupby([patient_id(s, path) for s in keep]).first()
    return df[sorted(first)]


def make_example(demo_dir: str | Path, out_dir: str | Path, seed: int = 20211) -> dict:
    """Write the example files (module docstring) into ``out_dir``; returns a small summary."""
    demo_dir, out_dir = Path(demo_dir), Path(out_dir)
    bulk = demo_dir / "bulk"
    if not bulk.is_dir():
        raise InputError(demo_dir, "bulk/", "not a demo folder (see workflow/scripts/make_demo.py)")
    rng = np.random.default_rng(seed)

    # support: K_SHOT primaries per project, GDC layout as is
    blocks, labels = [], []
    for project, name in SUPPORT_TYPES.items():
        df = _tcga_samples(bulk, project)
        pick = sorted(rng.choice(df.columns.to_numpy(dtype=object), size=K_SHOT, replace=False))  # distinct patients
        blocks.append(df[pick])
        labels += [(s, name) for s in pick]
    support = pd.concat(blocks, axis=1)
    support.index.name = "Ensembl_ID"
    with atomic_path(out_dir / "support.tsv") as tmp:
        support.to_csv(tmp, sep="\t", float_format="%.4f")
    write_tsv(pd.DataFrame(labels, columns=["sample_id", "type"]), out_dir / "support_labels.tsv")

    # queries: MET500 metastases, linear FPKM, symbols
    met = read_matrix(bulk / "MET500_M.mx.log2.txt.gz")
    meta_path = bulk / "MET500_M.meta.plus.txt"
    meta = read_met500_metadata(meta_path)
    libs = select_libraries(meta.loc[list(met.columns)], "one_per_patient", source=meta_path)
    one_per_patient = libs[libs["kept"]].set_index("sample_id")
    wanted = [(MET500_LABEL[p], n, QUERIES_PER_TYPE) for p, n in SUPPORT_TYPES.items()] + [(*ABSENT_TYPE, N_ABSENT)]
    queries = []
    for label, name, n in wanted:
        ids = sorted(one_per_patient.index[one_per_patient["label"] == label])
        queries += [(s, name) for s in sorted(rng.choice(np.array(ids, dtype=object), size=n, replace=False))]
    support_patients = [patient_id(s) for s, _ in labels]
    query_patients = list(one_per_patient.loc[[s for s, _ in queries], "patient"])
    everyone = support_patients + query_patients
    if len(set(everyone)) != len(everyone):
        raise InputError(demo_dir, "patients", "internal error: two example samples share a patient")
    probemap = read_probemap(bulk / "gencode.v36.annotation.gtf.gene.probemap")
    met = met[~is_par_y(met.index)]
    met.index = strip_version(met.index)
    met = met[met.index.isin(probemap.index)]
    genes = np.array(sorted(met.index), dtype=object)
    left_out = set(rng.choice(genes, size=ABSENT_GENES, replace=False))
    genes = [g for g in genes if g not in left_out]
    fpkm = np.clip(np.exp2(met.loc[genes, [s for s, _ in queries]].to_numpy()) - 0.001, 0.0, None)
    import anndata as ad

    adata = ad.AnnData(
        X=np.round(fpkm.T, 3).astype(np.float32),
        obs=pd.DataFrame(index=pd.Index([s for s, _ in queries], name="sample_id")),
        var=pd.DataFrame({"gene_id": genes}, index=pd.Index(probemap.reindex(genes).to_numpy(dtype=str), name="symbol")),
    )
    write_h5ad(adata, out_dir / "queries.h5ad")
    write_tsv(pd.DataFrame(queries, columns=["sample_id", "type"]), out_dir / "query_labels.tsv")
    (out_dir / "README.md").write_text(README.format(k=K_SHOT, q=QUERIES_PER_TYPE, a=N_ABSENT, g=ABSENT_GENES))
    return {"support_samples": len(labels), "support_genes": int(support.shape[0]), "queries": len(queries),
            "query_genes": len(genes), "genes_left_out": sorted(left_out)}
