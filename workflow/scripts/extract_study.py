"""Rule extract_study: unpack a 3CA study archive, and its separate metadata archive or table when
the study has a ``metadata_url``, safely (no member may leave the folder) into one study folder.

The data archive goes to the folder's root; the metadata (``Meta-data_<Study>.tar.gz``, or a plain
``.csv``) to ``metadata_archive/`` inside it (a plain table is copied there as ``Meta-data.csv``),
where the reader (:func:`oncoshot.sources.threeca.find_layout`) finds it. Both are unpacked into a
staging folder that becomes the output only when everything went through.
"""

import shutil
import tempfile
from pathlib import Path

from oncoshot.download import archive_kind, safe_extract
from oncoshot.errors import DownloadError
from oncoshot.io import give_default_mode
from oncoshot.runtime import run

METADATA_FOLDER = "metadata_archive"


def main(sm, log):
    out = Path(sm.output[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        files = safe_extract(sm.input.data, staging)
        log.info("extracted %d files from %s", len(files), sm.input.data)
        if sm.input.get("metadata"):
            meta = Path(sm.input.metadata)
            target = staging / METADATA_FOLDER
            if archive_kind(meta) is not None:
                more = safe_extract(meta, target)
                log.info("extracted %d metadata files from %s into %s/", len(more), meta, METADATA_FOLDER)
                files += more
            else:
                target.mkdir()
                shutil.copyfile(meta, target / "Meta-data.csv")
                log.info("copied the metadata table %s to %s/Meta-data.csv", meta, METADATA_FOLDER)
                files.append(target / "Meta-data.csv")
        else:
            log.info("no metadata_url configured for %s: only the metadata inside the data archive, if "
                     "any, is used", sm.wildcards.study)
        for f in files:
            log.info("  %s (%d bytes)", Path(f).relative_to(staging), Path(f).stat().st_size)
        if out.exists():
            shutil.rmtree(out)
        give_default_mode(staging, directory=True)  # mkdtemp made it private
        staging.replace(out)
    except OSError as exc:
        raise DownloadError(f"{out}: cannot assemble the study folder: {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


run(main, snakemake)  # noqa: F821
