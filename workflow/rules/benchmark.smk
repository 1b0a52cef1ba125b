# The `benchmark` target (not part of `all`): runs the demo end to end from an empty results/ in a
# scratch copy of the workflow, collects the per-rule times of that run, runs the benchmark
# scripts of benchmarks/ and writes one table.  snakemake --cores 2 benchmark


rule benchmark:
    output:
        table=f"{RESULTS}/benchmarks/summary.tsv",
        markdown=f"{RESULTS}/benchmarks/summary.md",
    params:
        script=os.path.join(workflow.basedir, "benchmarks", "run_all.py"),
        work=f"{RESULTS}/benchmarks/summary_work",
        goal_s=config["benchmark"]["goal_s"],
        oneshot_tasks=config["benchmark"]["oneshot_tasks"],
        throughput_iterations=config["benchmark"]["throughput_iterations"],
        torch_threads=config["benchmark"]["torch_threads"],
        real="--real" if config["benchmark"]["real"] else "",
    threads: 64  # Snakemake scales it down to --cores: the demo run inside uses every core given
    log:
        f"{LOGS}/benchmarks/summary.log",
    benchmark:
        f"{BENCH}/summary_benchmark.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    shell:
        "python {params.script:q} --out {output.table:q} --work {params.work:q} --cores {threads}"
        " --threads {params.torch_threads} --goal-s {params.goal_s} --oneshot-tasks {params.oneshot_tasks}"
        " --throughput-iterations {params.throughput_iterations} {params.real} > /dev/null 2> {log:q}"
