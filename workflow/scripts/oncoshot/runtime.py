"""Glue for the thin workflow scripts: logging to the rule's log file, clean failures.

A rule script does::

    from oncoshot.runtime import run
    def main(sm, log): ...
    run(main, snakemake)

``run`` sends ``logging`` records and Python warnings to ``snakemake.log[0]``, and turns an
:class:`~oncoshot.errors.OncoShotError` into one clear line on stderr and in the log, exit 1.
Snakemake then deletes the job's outputs, so no partial output is left behind.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
import warnings
from typing import Any, Callable

from .errors import OncoShotError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_path: str | None, name: str = "oncoshot") -> logging.Logger:
    """Log INFO and above to ``log_path`` (and WARNING and above to stderr)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    fmt = logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S")
    if log_path:
        fh = logging.FileHandler(log_path, mode="w")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    sh = logging.StreamHandler(sys.stderr)
    sh.setLevel(logging.WARNING if log_path else logging.INFO)
    sh.setFormatter(fmt)
    root.addHandler(sh)
    logging.captureWarnings(True)
    warnings.formatwarning = _short_warning
    return logging.getLogger(name)


def _short_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings in the log as 'Category: message' (no source-line context)."""
    return f"{category.__name__}: {message}"


def run(main: Callable[[Any, logging.Logger], None], sm: Any) -> None:
    """Run ``main(snakemake, logger)`` with logging set up and errors reported cleanly."""
    log_path = sm.log[0] if len(sm.log) else None
    logger = setup_logging(log_path, f"oncoshot.{sm.rule}")
    start = time.perf_counter()
    try:
        main(sm, logger)
    except OncoShotError as exc:
        text = name_sources(str(exc), getattr(sm.params, "sources", None))
        logger.error("%s", text)
        print(f"ERROR in rule {sm.rule}: {text}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        logger.error("unexpected failure:\n%s", traceback.format_exc())
        raise
    logger.info("done in %.1f s", time.perf_counter() - start)


def name_sources(text: str, sources: dict | None) -> str:
    """Add the configured source (path or URL as the user wrote it) after every cached copy
    (``results/downloads/…``) an error message names: ``<copy> (configured: <source>)``."""
    if not sources:
        return text
    pairs = {str(k): str(v) for k, v in dict(sources).items() if v and str(v) != str(k)}
    if not pairs:
        return text
    pattern = re.compile("|".join(re.escape(k) for k in sorted(pairs, key=len, reverse=True)) + r"(?![\w-]|\.\w)")
    return pattern.sub(lambda m: f"{m.group(0)} (configured: {pairs[m.group(0)]})", text)


class Progress:
    """Periodic progress lines with elapsed time and ETA for long loops."""

    def __init__(self, logger: logging.Logger, total: int, what: str, every_s: float = 10.0):
        self.logger, self.total, self.what, self.every_s = logger, total, what, every_s
        self.start = time.perf_counter()
        self.last = -1e9

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        self.logger.info(
            "%s %d/%d (%.0f%%) elapsed %s ETA %s%s",
            self.what, done, self.total, 100.0 * done / max(self.total, 1),
            format_duration(elapsed), format_duration(eta), f" {extra}" if extra else "",
        )


def format_duration(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``; ``?`` for NaN or infinite values (an ETA not known yet)."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


NO_CONTROLLER_SLURM_CONF = ("# written by oncoshot.runtime.local_snakemake_env: no SLURM controller\n"
                            "ClusterName=none\nSlurmctldHost=localhost\nSlurmctldPort=1\nMessageTimeout=1\n")


def local_snakemake_env(env: dict[str, str] | None = None, folder: str | os.PathLike | None = None) -> dict[str, str]:
    """The environment for a *local* ``snakemake`` run started by a test or a benchmark.

    Every Snakemake start imports the SLURM executor plugin, which (2.8.0) runs ``scontrol show
    config`` to choose its default status command whenever ``sinfo`` is on the PATH. Where the
    SLURM client is installed but no controller runs (a machine that ran the SLURM test; CI after
    ``tests/slurm/localcluster.sh install``), that call waits for SLURM's ``MessageTimeout``: 9 s
    with a slurm.conf, about 60 s without one, in *every* start, dry runs included. A local run
    never talks to SLURM, so ``SLURM_CONF`` is pointed at a configuration whose controller refuses
    at once (localhost port 1, 1 s timeout), written to ``folder`` (default: a per-user folder in
    the temporary directory). Without a SLURM client the environment is returned unchanged."""
    env = dict(os.environ if env is None else env)
    if shutil.which("sinfo", path=env.get("PATH")) is None:
        return env
    folder = Path(folder) if folder is not None else Path(env.get("TMPDIR", "/tmp")) / f"oncoshot-{os.getuid()}"
    path = folder / "no-controller-slurm.conf"
    if not path.is_file() or path.read_text() != NO_CONTROLLER_SLURM_CONF:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(NO_CONTROLLER_SLURM_CONF)
        tmp.replace(path)
    env["SLURM_CONF"] = str(path)
    return env
