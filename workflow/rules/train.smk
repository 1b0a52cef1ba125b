# CancerSiamese training (SPEC §2.1–2.2): CNN pretraining per experiment, then the Siamese network
# initialised from the pretrained tower (transfer) or from scratch.


rule pretrain_cnn:
    input:
        unpack(experiment_inputs),
    output:
        model=f"{RESULTS}/models/{{experiment}}/cnn.pt",
        history=report_item(
            f"{RESULTS}/models/{{experiment}}/cnn_history.tsv",
            "cnn_history",
            REPORT_ONESHOT,
            "Training",
            result="CNN pretraining history: {experiment}",
        ),
    params:
        validation_fraction=config["pretrain"]["validation_fraction"],
        epochs=config["pretrain"]["epochs"],
        batch_size=config["pretrain"]["batch_size"],
        lr=config["pretrain"]["lr"],
        patience=config["pretrain"]["patience"],
        amp_bf16=config["amp_bf16"],
        seed=config["seed"],
    wildcard_constraints:
        experiment="|".join(PRETRAIN_EXPERIMENTS),
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/models/{{experiment}}/pretrain_cnn.log",
    benchmark:
        f"{BENCH}/models/{{experiment}}/pretrain_cnn.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/pretrain_cnn.py"


rule train_siamese:
    input:
        unpack(siamese_inputs),
    output:
        model=f"{RESULTS}/models/{{experiment}}/siamese_{{init}}.pt",
        history=f"{RESULTS}/models/{{experiment}}/siamese_{{init}}_history.tsv",
    params:
        distance=config["siamese"]["distance"],
        head=config["siamese"]["head"],
        iterations=config["siamese"]["iterations"],
        batch_size=config["siamese"]["batch_size"],
        lr=config["siamese"]["lr"],
        val_every=config["siamese"]["val_every"],
        val_tasks=config["siamese"]["val_tasks"],
        val_n_way=config["siamese"]["val_n_way"],
        amp_bf16=config["amp_bf16"],
        seed=config["seed"],
        impossible=config["impossible_requests"],
        checkpoint=lambda wc: f"{RESULTS}/models/{wc.experiment}/siamese_{wc.init}.ckpt",
    wildcard_constraints:
        experiment="|".join(SIAMESE_EXPERIMENTS),
        init="transfer|scratch",
    threads: config["resources"]["torch_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/models/{{experiment}}/train_siamese_{{init}}.log",
    benchmark:
        f"{BENCH}/models/{{experiment}}/train_siamese_{{init}}.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/train_siamese.py"


rule fit_metric:
    input:
        unpack(experiment_inputs),
    output:
        model=f"{RESULTS}/models/{{experiment}}/whitened_cosine.pt",
        summary=f"{RESULTS}/models/{{experiment}}/whitened_cosine.tsv",
    params:
        n_components=config["metric"]["n_components"],
        shrinkage=config["metric"]["shrinkage"],
        transductive=config["metric"]["transductive"],
        diffusion_neighbours=config["metric"]["diffusion"]["neighbours"],
        diffusion_beta=config["metric"]["diffusion"]["beta"],
        seed=config["seed"],
    wildcard_constraints:
        experiment="|".join(SIAMESE_EXPERIMENTS),
    threads: config["resources"]["torch_threads"]
    log:
        f"{LOGS}/models/{{experiment}}/fit_metric.log",
    benchmark:
        f"{BENCH}/models/{{experiment}}/fit_metric.tsv"
    conda:
        "../../envs/oncoshot.yaml"
    script:
        "../scripts/fit_metric.py"
