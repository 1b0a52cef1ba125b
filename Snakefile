# OncoShot: CancerSiamese (one-shot cancer typing) and OncoMark (hallmark activity), end to end.
#
#   snakemake --cores 2                               # embedded demo (config/config.yaml)
#   snakemake --cores 8 --configfile config/full.yaml # full reproduction from the real sources
#   snakemake --profile profiles/slurm --configfile config/full.yaml
#   snakemake --cores 2 benchmark                     # benchmark table (results/benchmarks/summary.tsv)
#
# See README.md for what every rule writes.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/bulk.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/markers.smk"
include: "workflow/rules/singlecell.smk"
include: "workflow/rules/hallmarks.smk"
include: "workflow/rules/oncomark.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/predict.smk"


rule all:
    input:
        all_targets(),
    default_target: True
