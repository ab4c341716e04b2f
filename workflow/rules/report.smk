rule session_figures:
    input:
        ingested,
    output:
        report(
            f"{RESULTS}/figures/{{session}}/raster.png",
            caption="../report/raster.rst",
            category="Sessions",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "raster and behaviour"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/rates.png",
            caption="../report/rates.rst",
            category="Sessions",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "firing rates"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/choices.png",
            caption="../report/choices.rst",
            category="Sessions",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "choices"},
        ),
    log:
        "logs/figures/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


rule summary_figures:
    input:
        f"{RESULTS}/summary/sessions.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/sessions.png",
            caption="../report/sessions.rst",
            category="Summary",
            labels={"figure": "sessions"},
        ),
    log:
        "logs/figures/summary.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq summary-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"
