#!/usr/bin/env python
"""Copy the README's figures from a finished demo run (results/) into docs/figures/."""

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = {
    "evaluation/fig3a_primary.png": "fig3a_primary.png",
    "evaluation/fig3b_metastatic.png": "fig3b_metastatic.png",
    "evaluation/cnn_primary_to_met/confusion.png": "confusion.png",
    "markers/tcga19/forward_selection.png": "forward_selection.png",
    "hallmarks/cv_auroc.png": "cv_auroc.png",
    "hallmarks/primary_vs_metastatic.png": "primary_vs_metastatic.png",
    "predict/example/probabilities.png": "predict_probabilities.png",
}


def main(results: str = "results") -> int:
    missing = [src for src in FIGURES if not (Path(results) / src).exists()]
    if missing:
        print(f"missing in {results}/ (run `snakemake --cores 2` first): {', '.join(missing)}", file=sys.stderr)
        return 1
    out = REPO / "docs" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for src, name in FIGURES.items():
        shutil.copyfile(Path(results) / src, out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
