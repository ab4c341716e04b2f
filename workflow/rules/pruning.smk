rule prune:
    input:
        ingested,
    output:
        f"{RESULTS}/pruning/{{session}}.nc",
    log:
        "logs/pruning/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
        # ~1 min and < 1 GB per 12-min demo session with the demo config (one thread).
        mem_mb=mem_mb(2000, per_input_mb=150),
        runtime=runtime(30, per_input_mb=5),
    params:
        config=effective_config("pruning"),
    shell:
        "neuroseq prune {input:q} -c {params.config:q} --threads {threads} -o {output:q} "
        "> {log:q} 2>&1"


rule summarize_pruning:
    input:
        results_of("pruning"),
    output:
        f"{RESULTS}/summary/pruning.nc",
    log:
        "logs/summary/pruning.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"


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
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq pruning-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


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
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq pruning-figures --summary {input:q} -o {params.directory:q} > {log:q} 2>&1"
