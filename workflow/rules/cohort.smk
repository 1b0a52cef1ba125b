# Your own labelled cohorts (config 'cohorts', README "Train on your own cohort"): read, label,
# exclude genes, optional gene filter, small types dropped → split (paper ranking or seeded
# random; unseen types 50/50 by patient). Each cohort is then an experiment of the same name.


rule harmonise_cohort:
    input:
        unpack(cohort_files),
    output:
        harmonised=f"{RESULTS}/bulk/cohorts/{{cohort}}/harmonised.h5ad",
        labelled=f"{RESULTS}/bulk/cohorts/{{cohort}}/labelled.h5ad",
        labels=report_item(
            f"{RESULTS}/bulk/cohorts/{{cohort}}/labels.tsv",
            "cohort_labels",
            REPORT_BULK,
            "Your cohorts",
            result="types of cohort {cohort}: samples, patients, kept",
        ),
    params:
        spec=lambda wc: cohort_spec(wc.cohort),
        filter_threshold=config["bulk"]["filter_threshold"],
    log:
        f"{LOGS}/bulk/cohorts/harmonise_{{cohort}}.log",
    benchmark:
        f"{BENCH}/bulk/cohorts/harmonise_{{cohort}}.tsv"
    wildcard_constraints:
        cohort="|".join(USER_COHORTS) or "NO_COHORT",
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/harmonise_cohort.py"


rule split_cohort:
    input:
        labelled=f"{RESULTS}/bulk/cohorts/{{cohort}}/labelled.h5ad",
    output:
        types=report_item(
            f"{RESULTS}/bulk/cohorts/{{cohort}}/types.tsv",
            "cohort_splits",
            REPORT_BULK,
            "Your cohorts",
            result="type split of cohort {cohort}",
        ),
        samples=f"{RESULTS}/bulk/cohorts/{{cohort}}/samples.tsv",
        patients=f"{RESULTS}/bulk/cohorts/{{cohort}}/patients.tsv",
    params:
        split=lambda wc: cohort_spec(wc.cohort)["split"],
        min_patients=config["splits"]["min_samples"],
        small_type_policy=config["splits"]["small_type_policy"],
    log:
        f"{LOGS}/bulk/cohorts/split_{{cohort}}.log",
    benchmark:
        f"{BENCH}/bulk/cohorts/split_{{cohort}}.tsv"
    wildcard_constraints:
        cohort="|".join(USER_COHORTS) or "NO_COHORT",
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/split_cohort.py"


rule skipped_steps:
    output:
        f"{LOGS}/skipped_steps.tsv",
    params:
        rows=SKIPPED_STEPS,
    log:
        f"{LOGS}/skipped_steps.log",
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/skipped_steps.py"
