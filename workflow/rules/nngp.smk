rule nngp:
    input:
        ingested,
    output:
        f"{RESULTS}/nngp/{{session}}.nc",
    log:
        "logs/nngp/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
        # finite networks at 4 widths x 3 seeds x 3 folds: ~1 min a 12-min demo session.
        mem_mb=mem_mb(2000, per_input_mb=150),
        runtime=runtime(30, per_input_mb=5),
    params:
        config=effective_config("nngp"),
    shell:
        "neuroseq nngp {input:q} -c {params.config:q} --threads {threads} -o {output:q} "
        "> {log:q} 2>&1"


rule summarize_nngp:
    input:
        results_of("nngp"),
    output:
        f"{RESULTS}/summary/nngp.nc",
    log:
        "logs/summary/nngp.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"


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
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq nngp-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


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
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq nngp-figures --summary {input:q} -o {params.directory:q} > {log:q} 2>&1"
