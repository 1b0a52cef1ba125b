"""Results are readable by colleagues: every file the library writes gets the mode a plain write
would get under the user's umask (0o666 / 0o777 less the umask), not the private 0600 / 0700 of
the temporary files it writes through."""

from __future__ import annotations

import os
import stat
import tarfile

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from oncoshot.download import fetch, safe_extract
from oncoshot.experiments import save_model
from oncoshot.io import write_h5ad, write_tsv


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_tables_matrices_models_downloads_and_extracted_folders(tmp_path, umask):
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    write_tsv(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.tsv")
    write_h5ad(ad.AnnData(np.ones((2, 3), dtype=np.float32)), tmp_path / "m.h5ad")
    save_model(tmp_path / "model.pt", kind="cnn", state_dict={}, genes=["g1"], classes=["A", "B"])
    src = tmp_path / "source.txt"
    src.write_text("x\n")
    fetch(str(src), tmp_path / "downloads" / "copy.txt")
    folder = tmp_path / "study"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "Genes.txt").write_text("TP53\n")
    arc = tmp_path / "a.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(folder / "sub" / "Genes.txt", arcname="Data_X/Genes.txt")
    safe_extract(arc, tmp_path / "raw" / "Data_X")
    for f in ("t.tsv", "m.h5ad", "model.pt", "downloads/copy.txt"):
        assert mode(tmp_path / f) == file_mode, (f, oct(mode(tmp_path / f)), oct(file_mode))
    assert mode(tmp_path / "raw" / "Data_X") == dir_mode, oct(mode(tmp_path / "raw" / "Data_X"))
