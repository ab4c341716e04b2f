rule psychometric:
    input:
        ingested,
    output:
        f"{RESULTS}/psychometric/{{session}}.nc",
    log:
        "logs/psychometric/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=runtime(20),
    params:
        config=effective_config("psychometric"),
    shell:
        "neuroseq psychometric {input:q} -c {params.config:q} -o {output:q} > {log:q} 2>&1"


rule summarize_psychometric:
    input:
        results_of("psychometric"),
    output:
        f"{RESULTS}/summary/psychometric.nc",
    log:
        "logs/summary/psychometric.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"


rule psychometric_figures:
    input:
        f"{RESULTS}/psychometric/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/psychometric_curves.png",
            caption="../report/psychometric_curves.rst",
            category="Psychometric",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "choices and model curves"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/psychometric_comparison.png",
            caption="../report/psychometric_comparison.rst",
            category="Psychometric",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "model comparison"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/psychometric_lapses.png",
            caption="../report/psychometric_lapses.rst",
            category="Psychometric",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "lapse parameters"},
        ),
    log:
        "logs/figures/psychometric_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq psychometric-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


rule psychometric_summary_figures:
    input:
        f"{RESULTS}/summary/psychometric.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/psychometric.png",
            caption="../report/psychometric_summary.rst",
            category="Summary",
            labels={"figure": "lapse models across sessions"},
        ),
    log:
        "logs/figures/psychometric_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq psychometric-figures --summary {input:q} -o {params.directory:q} > {log:q} 2>&1"
