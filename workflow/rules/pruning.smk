rule prune:
    input:
        session_nc("{session}"),
    output:
        f"{RESULTS}/pruning/{{session}}.nc",
    log:
        "logs/pruning/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
    params:
        config=effective_config(),
    shell:
        "neuroseq prune {input} -c {params.config} --threads {threads} -o {output} "
        "> {log} 2>&1"


rule summarize_pruning:
    input:
        pruning_results,
    output:
        f"{RESULTS}/summary/pruning.nc",
    log:
        "logs/summary/pruning.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"


rule pruning_figures:
    input:
        f"{RESULTS}/pruning/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/pruning_tickets.png",
            caption="../report/pruning_tickets.rst",
            category="Pruning",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "lottery tickets"},
        ),
    log:
        "logs/figures/pruning_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq pruning-figures {input} -o {params.directory} > {log} 2>&1"


rule pruning_summary_figures:
    input:
        f"{RESULTS}/summary/pruning.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/pruning.png",
            caption="../report/pruning_summary.rst",
            category="Summary",
            labels={"figure": "lottery tickets across sessions"},
        ),
    log:
        "logs/figures/pruning_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq pruning-figures --summary {input} -o {params.directory} > {log} 2>&1"
