# Shared helpers: config validation, the download table, target lists.
import os
import re
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def _validate_config(cfg, schema_path):
    """Validate against the JSON schema with messages that name the offending key."""
    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    errors = sorted(
        Draft202012Validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path)
    )
    if errors:
        lines = []
        for err in errors:
            key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
            lines.append(f"  config key '{key}': {err.message}")
        raise WorkflowError("invalid configuration:\n" + "\n".join(lines))
    validate(cfg, schema_path)  # fills in the schema's defaults


_validate_config(config, workflow.source_path("../../config/schema.yaml"))

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def _is_local(url):
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url) or url.startswith("file://")


def _local_path(url):
    return url[len("file://") :] if url.startswith("file://") else url


# OncoMark's published model: the PyPI wheel, pinned (oncoshot.sources.oncomark checks it again).
ONCOMARK_WHEEL = "OncoMark-1.0.0-py3-none-any.whl"
ONCOMARK_WHEEL_SHA256 = "b142240ec6c10bbd66485a8150e54ec61cb7fdb87ef2fd13a17c86d9011cb2eb"


def _download_table(cfg):
    """Map 'group/filename' (the path under results/downloads) to its source URL."""
    table = {}
    tcga = cfg["tcga"]
    for project in tcga["projects"]:
        table[f"tcga/TCGA-{project}.star_fpkm.tsv.gz"] = tcga["expression_url"].format(project=project)
        if tcga.get("clinical_url"):
            table[f"tcga/TCGA-{project}.clinical.tsv.gz"] = tcga["clinical_url"].format(project=project)
    table["tcga/probemap.tsv"] = tcga["probemap_url"]
    met = cfg["met500"]
    table["met500/expression.tsv.gz"] = met["expression_url"]
    table["met500/metadata.tsv"] = met["metadata_url"]
    sc = cfg["singlecell"]
    for study in sc["studies"]:
        table[f"scrna/{_archive_name(study)}"] = study["url"]
        if study.get("metadata_url"):
            table[f"scrna/{_metadata_name(study)}"] = study["metadata_url"]
    table["genesets/hallmark_gene_sets.csv"] = sc["gene_sets_url"]
    table[f"oncomark/{ONCOMARK_WHEEL}"] = cfg["hallmarks"]["published"]["wheel"]
    return table


_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def _url_suffix(study, key, allowed):
    base = os.path.basename(_local_path(study[key]).split("?")[0])
    for suffix in allowed:
        if base.lower().endswith(suffix):
            return suffix
    raise WorkflowError(
        f"config key 'singlecell.studies' ({study['name']}): {key} must end in "
        f"{', '.join(allowed)}, got '{base}'"
    )


def _archive_name(study):
    """File name of a study's archive under results/downloads/scrna (keeps the archive suffix;
    the extraction decides zip or tar by the content, so a zip served as .tar.gz works)."""
    return study["name"] + _url_suffix(study, "url", _ARCHIVE_SUFFIXES)


def _metadata_name(study):
    """File name of a study's separate 3CA metadata (Meta-data_<Study>.tar.gz, or a plain table)."""
    suffix = _url_suffix(study, "metadata_url", _ARCHIVE_SUFFIXES + (".csv", ".csv.gz", ".tsv", ".txt"))
    return f"{study['name']}.metadata{suffix}"


def _study_entry(s):
    entry = dict(s, archive=_archive_name(s), tissue=s.get("tissue") or s["name"].rsplit("_", 1)[-1])
    entry["metadata"] = _metadata_name(s) if s.get("metadata_url") else None
    return entry


DOWNLOADS = _download_table(config)
STUDIES = {s["name"]: _study_entry(s) for s in config["singlecell"]["studies"]}
if len(STUDIES) != len(config["singlecell"]["studies"]):
    raise WorkflowError("config key 'singlecell.studies': study names must be unique")
# the {study} wildcard: exactly the configured names (spaces, hyphens, non-ASCII letters escaped)
STUDY_PATTERN = "|".join(re.escape(name) for name in STUDIES) or "NO_STUDY"


def study_inputs(wildcards):
    """The study's data archive and, when configured, its separate metadata archive or table."""
    study = STUDIES[wildcards.study]
    inputs = {"data": downloaded(f"scrna/{study['archive']}")}
    if study["metadata"]:
        inputs["metadata"] = downloaded(f"scrna/{study['metadata']}")
    return inputs


def studies_with_role(role):
    return [name for name, s in STUDIES.items() if s["role"] == role]


def download_url(wildcards):
    return DOWNLOADS[f"{wildcards.group}/{wildcards.filename}"]


def download_sha256(wildcards):
    """sha256 from config 'checksums', keyed by the source URL or path exactly as configured.

    Keys are whole URLs (not file names) because `--configfile` extends the demo config rather
    than replacing it: demo and real files share names but never URLs.
    """
    pinned = ONCOMARK_WHEEL_SHA256 if wildcards.group == "oncomark" else ""
    return (config.get("checksums") or {}).get(download_url(wildcards), pinned)


def download_local_input(wildcards):
    """Local sources are declared as inputs so that editing them re-runs what depends on them."""
    url = download_url(wildcards)
    # a missing local file is not declared, so that `snakemake -n` still plans the run; the
    # download job then fails with a message naming the path
    return [_local_path(url)] if _is_local(url) and os.path.exists(_local_path(url)) else []


def downloaded(key):
    if key not in DOWNLOADS:
        raise WorkflowError(f"no download configured for '{key}'")
    return f"{RESULTS}/downloads/{key}"


def tcga_expression_files():
    return [downloaded(f"tcga/TCGA-{p}.star_fpkm.tsv.gz") for p in config["tcga"]["projects"]]


def tcga_clinical_files():
    if not config["tcga"].get("clinical_url"):
        return []
    return [downloaded(f"tcga/TCGA-{p}.clinical.tsv.gz") for p in config["tcga"]["projects"]]


COHORTS = ["tcga", "met500"]


# --- Built-in sources, skipped steps, the user's own cohorts (README "Train on your own cohort") --
BUILTIN = bool(config["bulk"]["sources"])  # [tcga, met500] or []: the built-in split needs both
SKIP = dict(config.get("skip") or {})
USER_COHORTS = dict(config.get("cohorts") or {})
BUILTIN_EXPERIMENTS = ["tcga", "met500", "cnn_primary_to_met"]  # also reserved matrix names


def _check_sources_and_skips():
    sources = config["bulk"]["sources"]
    if sources and sorted(sources) != ["met500", "tcga"]:
        raise WorkflowError(
            f"config key 'bulk.sources': {sources}: give both [tcga, met500] (their split needs both) or []"
        )
    if not BUILTIN:
        needed = [k for k in ("met500", "cnn_primary_to_met", "marker_comparison", "singlecell") if k not in SKIP]
        if needed:
            raise WorkflowError(
                "config key 'skip': bulk.sources is [] so these steps cannot run; list each under 'skip' with the "
                "reason: " + ", ".join(needed)
            )
        if not USER_COHORTS:
            raise WorkflowError("config key 'cohorts': bulk.sources is [] and no cohort is configured: nothing to run")
    if "met500" in SKIP and "marker_comparison" not in SKIP:
        raise WorkflowError(
            "config key 'skip.marker_comparison': the primary vs metastatic marker comparison needs the MET500 "
            "experiment, which skip.met500 skips; skip it too, with the reason"
        )
    reserved = set(BUILTIN_EXPERIMENTS) | set(config["splits"]["training_sets"])
    for name, spec in USER_COHORTS.items():
        if name in reserved:
            raise WorkflowError(f"config key 'cohorts.{name}': the name is reserved for a built-in experiment")
        if not spec.get("gene_filter", True) and not spec.get("gene_filter_reason"):
            raise WorkflowError(f"config key 'cohorts.{name}.gene_filter_reason': give the reason for gene_filter: false")


_check_sources_and_skips()


def skipped_steps():
    """(step, reason) of every step this config skips."""
    rows = []
    if not BUILTIN:
        rows.append(("bulk.sources", "[]: the built-in TCGA/MET500 bulk branch is not run"))
    rows += [(f"skip.{k}", v) for k, v in SKIP.items()]
    rows += [
        (f"cohorts.{n}.gene_filter", c["gene_filter_reason"])
        for n, c in USER_COHORTS.items()
        if not c.get("gene_filter", True)
    ]
    return rows


SKIPPED_STEPS = skipped_steps()
if SKIPPED_STEPS:
    from snakemake.logging import logger as _logger

    for _step, _reason in SKIPPED_STEPS:
        _logger.warning(f"OncoShot: skipped {_step}: {_reason}")


def cohort_spec(name):
    """A cohort's config with the defaults filled in (split seed: the top-level seed)."""
    spec = USER_COHORTS[name]
    split = dict(policy="paper", n_test_types=10, validation_fraction=0.5, seed=None)
    split.update(spec.get("split") or {})
    if split["seed"] is None:
        split["seed"] = config["seed"]
    return dict(spec, split=split)


def cohort_files(wildcards):
    spec = USER_COHORTS[wildcards.cohort]
    inputs = dict(expression=spec["expression"]["path"], labels=spec["labels"]["path"])
    if spec.get("exclude_genes"):
        inputs["exclude"] = spec["exclude_genes"]["path"]
    return inputs


def cohort_dir(name):
    return f"{RESULTS}/bulk/cohorts/{name}"


def experiment_data(experiment):
    """The matrices and split table of an experiment (oncoshot.experiments.load_experiment_inputs):
    a cohort's labelled matrix and split table, or the built-in labelled TCGA/MET500 and samples.tsv."""
    if experiment in USER_COHORTS:
        return dict(cohort=f"{cohort_dir(experiment)}/labelled.h5ad", samples=f"{cohort_dir(experiment)}/samples.tsv")
    return dict(
        tcga=f"{RESULTS}/bulk/labelled/tcga.h5ad",
        met500=f"{RESULTS}/bulk/labelled/met500.h5ad",
        samples=f"{RESULTS}/bulk/splits/samples.tsv",
    )


def experiment_inputs(wildcards):
    return experiment_data(wildcards.experiment)


def cohort_targets():
    return [
        f"{cohort_dir(n)}/{f}"
        for n in USER_COHORTS
        for f in ("harmonised.h5ad", "labelled.h5ad", "labels.tsv", "types.tsv", "samples.tsv", "patients.tsv")
    ] + ([f"{LOGS}/skipped_steps.tsv"] if SKIPPED_STEPS else [])


def bulk_targets():
    if not BUILTIN:
        return cohort_targets()
    return [
        f"{RESULTS}/bulk/filtered/genes_kept.tsv",
        f"{RESULTS}/bulk/splits/types.tsv",
        f"{RESULTS}/bulk/splits/samples.tsv",
        f"{RESULTS}/bulk/patients.tsv",
        f"{RESULTS}/bulk/harmonised/met500_libraries.tsv",
    ] + expand(f"{RESULTS}/bulk/labelled/{{cohort}}_labels.tsv", cohort=COHORTS) + cohort_targets()


# --- CancerSiamese experiments -------------------------------------------------------------
EVAL_RUNS = {r["name"]: r for r in config["evaluation"]["runs"]}
SIAMESE_EXPERIMENTS = (
    sorted(set(config["splits"]["training_sets"]) | ({"met500"} if "met500" not in SKIP else set()))
    if BUILTIN
    else []
) + list(USER_COHORTS)
PRETRAIN_EXPERIMENTS = SIAMESE_EXPERIMENTS + (
    ["cnn_primary_to_met"] if BUILTIN and "cnn_primary_to_met" not in SKIP else []
)


def _check_runs():
    for name, run in EVAL_RUNS.items():
        for key in ("model", "test"):
            if run[key] not in SIAMESE_EXPERIMENTS:
                raise WorkflowError(
                    f"config key 'evaluation.runs' ({name}): {key} '{run[key]}' is not one of "
                    f"the experiments {SIAMESE_EXPERIMENTS}"
                )
        if (run["model"] in USER_COHORTS or run["test"] in USER_COHORTS) and run["model"] != run["test"]:
            raise WorkflowError(
                f"config key 'evaluation.runs' ({name}): a cohort's model is tested on that cohort only "
                f"(model '{run['model']}', test '{run['test']}': their genes differ)"
            )


_check_runs()


def siamese_model(experiment, init):
    return f"{RESULTS}/models/{experiment}/siamese_{init}.pt"


def siamese_inputs(wildcards):
    inputs = experiment_data(wildcards.experiment)
    if wildcards.init == "transfer":
        inputs["cnn"] = f"{RESULTS}/models/{wildcards.experiment}/cnn.pt"
    return inputs


def metric_model(experiment):
    return f"{RESULTS}/models/{experiment}/whitened_cosine.pt"


def evaluation_inputs(wildcards):
    run = EVAL_RUNS[wildcards.run]
    inputs = dict(
        siamese=siamese_model(run["model"], run["init"]),
        cnn=f"{RESULTS}/models/{run['model']}/cnn.pt",
        **experiment_data(run["test"]),
    )
    if config["metric"]["enabled"]:
        inputs["metric"] = metric_model(run["model"])
    return inputs


def siamese_histories():
    pairs = sorted({(r["model"], r["init"]) for r in EVAL_RUNS.values()})
    return [f"{RESULTS}/models/{m}/siamese_{i}_history.tsv" for m, i in pairs]


def oneshot_targets():
    targets = [f"{RESULTS}/evaluation/oneshot_results.tsv"] if EVAL_RUNS else []
    if "cnn_primary_to_met" in PRETRAIN_EXPERIMENTS:
        targets.append(f"{RESULTS}/evaluation/cnn_primary_to_met/accuracy.tsv")
    return targets


def singlecell_targets():
    if "singlecell" in SKIP:
        return []
    return (
        [
            f"{RESULTS}/singlecell/synthetic_bulk_train.h5ad",
            f"{RESULTS}/singlecell/labels/thresholds.tsv",
        ]
        + expand(f"{RESULTS}/singlecell/qc/{{study}}_summary.tsv", study=list(STUDIES))
    )


def marker_targets():
    m = config["markers"]
    for experiment in m["experiments"]:
        if experiment not in SIAMESE_EXPERIMENTS:
            raise WorkflowError(
                f"config key 'markers.experiments': '{experiment}' is not one of the experiments {SIAMESE_EXPERIMENTS}"
            )
    return (
        (
            [
                f"{RESULTS}/markers/enrichment.tsv",
                f"{RESULTS}/markers/primary_vs_metastatic/gnb_accuracy.tsv",
            ]
            if "marker_comparison" not in SKIP
            else []
        )
        + expand(f"{RESULTS}/markers/{{experiment}}/heatmap.png", experiment=m["experiments"])
    )


HALLMARK_TRAIN_PARAMS = {
    k: config["hallmark_model"][k]
    for k in ("n_top", "lr", "batch_size", "max_epochs", "plateau_patience", "lr_factor", "min_lr", "stop_patience")
}


# hallmarks.scorer: which hallmark model(s) score the bulk samples and the prediction jobs
HALLMARK_SCORERS = {"trained": ["trained"], "published": ["published"], "both": ["trained", "published"]}[
    config["hallmarks"]["scorer"]
]
TRAINED_HALLMARK_MODEL = f"{RESULTS}/hallmarks/model.pt"
PUBLISHED_HALLMARK_MODEL = f"{RESULTS}/hallmarks/published/model.pt"


def hallmark_models():
    """The hallmark model file(s) of the configured scorer(s), keyed ``model`` / ``published``."""
    models = {}
    if "trained" in HALLMARK_SCORERS:
        models["model"] = TRAINED_HALLMARK_MODEL
    if "published" in HALLMARK_SCORERS:
        models["published"] = PUBLISHED_HALLMARK_MODEL
    return models


def hallmark_targets():
    if "singlecell" in SKIP:
        return []
    targets = [f"{RESULTS}/hallmarks/bulk_activity.tsv"]
    if "trained" in HALLMARK_SCORERS:
        targets += [f"{RESULTS}/hallmarks/cv_summary.tsv", f"{RESULTS}/hallmarks/heldout_metrics.tsv"]
    if len(HALLMARK_SCORERS) == 2:
        targets.append(f"{RESULTS}/hallmarks/agreement.tsv")
    return targets


# --- One-shot prediction of the user's own samples (workflow/rules/predict.smk) ---------------
PREDICT_JOBS = config.get("predict") or {}
if "predict" in SKIP:  # jobs whose model this run does not train are skipped (skip.predict: reason)
    PREDICT_JOBS = {n: j for n, j in PREDICT_JOBS.items() if j["model"] in SIAMESE_EXPERIMENTS}


def _check_predict_jobs():
    for name, job in PREDICT_JOBS.items():
        if job["model"] not in SIAMESE_EXPERIMENTS:
            raise WorkflowError(
                f"config key 'predict.{name}.model': '{job['model']}' is not one of the trained "
                f"Siamese experiments {SIAMESE_EXPERIMENTS} (skip.predict: <reason> skips such jobs)"
            )
        _check_predict_files(name, job)


# Prediction jobs are checked here, at start-up, for everything knowable without the models
# (files exist, suffixes and headers readable, label-table columns present), so that a bad job
# fails `snakemake -n` instead of its job after the models are trained. The job itself then
# checks the data (ids, values, labels present in the matrix, gene coverage).
_PREDICT_TEXT_SUFFIXES = {".tsv": "\t", ".txt": "\t", ".csv": ","}


def _predict_error(key, path, problem):
    return WorkflowError(f"config key '{key}': {path}: {problem}")


def _open_text(path):
    import gzip

    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8", errors="replace") if gz else open(
        path, encoding="utf-8", errors="replace"
    )


def _header_fields(key, path, sep):
    import csv

    try:
        with _open_text(path) as fh:
            line = fh.readline().lstrip("\ufeff").rstrip("\r\n")
    except (OSError, EOFError) as exc:
        raise _predict_error(key, path, f"cannot be read ({exc})")
    return next(csv.reader([line], delimiter=sep), [])


def _check_expression_file(key, spec):
    path = spec["path"]
    if not os.path.isfile(path):
        raise _predict_error(f"{key}.path", path, "file does not exist")
    name = os.path.basename(path).lower()
    if name.endswith(".h5ad"):
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise _predict_error(f"{key}.path", path, "named .h5ad but not an HDF5/AnnData file")
        return
    stem = name[:-3] if name.endswith(".gz") else name
    sep = next((sep for suffix, sep in _PREDICT_TEXT_SUFFIXES.items() if stem.endswith(suffix)), None)
    if sep is None:
        raise _predict_error(
            f"{key}.path", path, "unknown format: expected .h5ad, .tsv, .txt or .csv (text files optionally .gz)"
        )
    orientation = spec.get("orientation") or "genes_x_samples"
    rows, cols = ("gene", "sample") if orientation == "genes_x_samples" else ("sample", "gene")
    header = _header_fields(f"{key}.path", path, sep)
    if len(header) < 2:
        raise _predict_error(
            f"{key}.orientation", path,
            f"{orientation}: expected a header line with the {rows}-id column, then one column per {cols} "
            f"(separator {sep!r}); found {len(header)} field(s)",
        )


def _check_label_table(key, path, columns):
    if not os.path.isfile(path):
        raise _predict_error(key, path, "file does not exist")
    header = [h.strip().strip('"') for h in _header_fields(key, path, "\t")]
    missing = [c for c in columns if c not in header]
    if missing:
        raise _predict_error(
            key, path, f"column(s) {missing} not in the header {header[:10]} (tab-separated; "
            f"predict.<job>.sample_column / type_column name them)",
        )


def _check_predict_files(name, job):
    key = f"predict.{name}"
    _check_expression_file(f"{key}.support", job["support"])
    _check_expression_file(f"{key}.queries", job["queries"])
    columns = [job["sample_column"], job["type_column"]]
    _check_label_table(f"{key}.support_labels", job["support_labels"], columns)
    if job.get("query_labels"):
        _check_label_table(f"{key}.query_labels", job["query_labels"], columns)


_check_predict_jobs()
# the {job} wildcard: exactly the configured names (an unknown one goes to predict_unknown_job)
PREDICT_JOB_PATTERN = "|".join(re.escape(name) for name in PREDICT_JOBS) or "NO_JOB"


def _check_predict_targets():
    """`snakemake results/predict/<job>/…` naming no configured job: stop at start-up."""
    import sys

    # the targets as typed (Snakemake sets its DAG settings only after reading the Snakefile);
    # the catch-all rule predict_unknown_job covers targets given any other way
    for target in sys.argv[1:]:
        m = re.match(r"^(?:\./)?results/predict/([^/]+)/", str(target))
        if m and m.group(1) not in PREDICT_JOBS:
            raise WorkflowError(
                f"unknown prediction job '{m.group(1)}' in the target {target}: results/predict/<job>/ must "
                f"name a job under the config key 'predict'; configured jobs: {sorted(PREDICT_JOBS) or 'none'}"
            )


_check_predict_targets()


def unknown_predict_job(wildcards):
    """Input function of the catch-all predict_unknown_job (an error listing the configured jobs)."""
    raise WorkflowError(
        f"unknown prediction job '{wildcards.job}': results/predict/<job>/ must name a job under the "
        f"config key 'predict'; configured jobs: {sorted(PREDICT_JOBS) or 'none'}"
    )


def predict_inputs(wildcards):
    job = PREDICT_JOBS[wildcards.job]
    inputs = dict(
        siamese=siamese_model(job["model"], job["init"]) if job["method"] == "siamese" else metric_model(job["model"]),
        probemap=downloaded("tcga/probemap.tsv"),
        support=job["support"]["path"],
        support_labels=job["support_labels"],
        queries=job["queries"]["path"],
    )
    models = hallmark_models() if "singlecell" not in SKIP else {}  # skipped: no hallmark columns
    if "model" in models:
        inputs["hallmark_model"] = models["model"]
    if "published" in models:
        inputs["published_model"] = models["published"]
    if job.get("query_labels"):
        inputs["query_labels"] = job["query_labels"]
    return inputs


def predict_targets():
    """Predictions of the jobs marked ``in_all`` (the demo's example job)."""
    return [f"{RESULTS}/predict/{name}/predictions.tsv" for name, job in PREDICT_JOBS.items() if job["in_all"]]


def all_targets():
    return (
        bulk_targets()
        + oneshot_targets()
        + marker_targets()
        + singlecell_targets()
        + hallmark_targets()
        + predict_targets()
    )


# --- Snakemake report (`snakemake --report results/report.html`) ----------------------------
# One category per stage; captions are workflow/report/<caption>.rst (reStructuredText + Jinja).
REPORT_BULK = "1. Bulk data"
REPORT_ONESHOT = "2. One-shot classification"
REPORT_MARKERS = "3. Marker genes"
REPORT_SINGLECELL = "4. Single-cell hallmarks"
REPORT_HALLMARK_MODEL = "5. Hallmark model"
REPORT_PREDICT = "6. Your samples (one-shot prediction)"


def report_item(path, caption, category, subcategory, **labels):
    """Mark an output for the report. Labels name the item within its subcategory (first label
    first); wildcards in the subcategory and in label values are filled in per job."""
    return report(
        path, caption=f"../report/{caption}.rst", category=category, subcategory=subcategory, labels=labels
    )


# --- Impossible requests (config 'impossible_requests', oncoshot.policy) ----------------------
# N-way tasks need N test types. The TCGA experiments (splits.training_sets) test on exactly
# splits.n_test_types types, so asking for more is a contradiction in the config itself: it stops
# the workflow here, before anything runs (policy error). MET500's test types depend on the data:
# split_types checks them (TEST_TYPE_REQUIREMENTS), and the rules that draw tasks check again.
IMPOSSIBLE = config["impossible_requests"]


def _test_type_requirements():
    """experiment → [(config key, test types needed, what needs them)]."""
    req = {}
    n_way = config["evaluation"]["n_way"]
    for name, run in EVAL_RUNS.items():
        req.setdefault(run["test"], []).append(
            ["evaluation.n_way", max(n_way), f"{max(n_way)}-way evaluation (run '{name}')"]
        )
    trained = {r["model"] for r in EVAL_RUNS.values()} | set(config["markers"]["experiments"])
    trained |= {job["model"] for job in PREDICT_JOBS.values()}
    val = config["siamese"]["val_n_way"]
    for exp in sorted(trained):
        req.setdefault(exp, []).append(["siamese.val_n_way", val, f"{val}-way Siamese validation of '{exp}'"])
    sel = config["markers"]["selection"]["n_way"]
    for exp in config["markers"]["experiments"]:
        req.setdefault(exp, []).append(
            ["markers.selection.n_way", sel, f"{sel}-way forward selection of '{exp}'"]
        )
    return req


TEST_TYPE_REQUIREMENTS = _test_type_requirements()


def _check_impossible_requests():
    if IMPOSSIBLE != "error":
        return
    n_test = config["splits"]["n_test_types"]
    for exp, reqs in TEST_TYPE_REQUIREMENTS.items():
        if exp not in config["splits"]["training_sets"]:
            continue  # MET500: known once split_types sees the data
        for key, needed, what in reqs:
            if needed > n_test:
                raise WorkflowError(
                    f"config key '{key}': {what} needs {needed} test types, but splits.n_test_types "
                    f"gives experiment '{exp}' {n_test}; lower {key} (or raise splits.n_test_types), "
                    f"or set impossible_requests: reduce to use {n_test} (recorded in the results)"
                )


_check_impossible_requests()


# --- Configured sources in error messages (oncoshot.runtime.run) ------------------------------
def download_sources(*keys):
    """{cached copy under results/downloads: the path or URL as configured}: rules that read
    downloads pass it as params.sources, so that an error names both."""
    return {downloaded(k): DOWNLOADS[k] for k in keys}


def study_sources(wildcards):
    study = STUDIES[wildcards.study]
    keys = [f"scrna/{study['archive']}"] + ([f"scrna/{study['metadata']}"] if study["metadata"] else [])
    return download_sources(*keys)
