rule nngp:
    input:
        session_nc("{session}"),
    output:
        f"{RESULTS}/nngp/{{session}}.nc",
    log:
        "logs/nngp/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
    params:
        config=effective_config(),
    shell:
        "neuroseq nngp {input} -c {params.config} --threads {threads} -o {output} "
        "> {log} 2>&1"


rule summarize_nngp:
    input:
        nngp_results,
    output:
        f"{RESULTS}/summary/nngp.nc",
    log:
        "logs/summary/nngp.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"


rule nngp_figures:
    input:
        f"{RESULTS}/nngp/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/nngp_width.png",
            caption="../report/nngp_width.rst",
            category="NNGP",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "score vs width"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/nngp_uncertainty.png",
            caption="../report/nngp_uncertainty.rst",
            category="NNGP",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "predictive std vs error"},
        ),
    log:
        "logs/figures/nngp_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq nngp-figures {input} -o {params.directory} > {log} 2>&1"


rule nngp_summary_figures:
    input:
        f"{RESULTS}/summary/nngp.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/nngp.png",
            caption="../report/nngp_summary.rst",
            category="Summary",
            labels={"figure": "NNGP across sessions"},
        ),
    log:
        "logs/figures/nngp_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq nngp-figures --summary {input} -o {params.directory} > {log} 2>&1"
