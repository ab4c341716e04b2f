rule decode:
    input:
        ingested,
    output:
        nc=f"{RESULTS}/decoding/{{session}}.nc",
        weights=directory(f"{RESULTS}/decoding/{{session}}_weights"),
    log:
        "logs/decoding/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
        # 0.9 GB peak and 3 min (one CPU thread) for a 12-min demo session.nc of 3.6 MB.
        mem_mb=mem_mb(2000, per_input_mb=150),
        runtime=runtime(15, per_input_mb=3),
    params:
        config=effective_config("decoding"),
    shell:
        "neuroseq decode {input:q} -c {params.config:q} --threads {threads} "
        "-o {output.nc:q} --weights {output.weights:q} > {log:q} 2>&1"


rule summarize_decoding:
    input:
        results_of("decoding"),
    output:
        f"{RESULTS}/summary/decoding.nc",
    log:
        "logs/summary/decoding.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"


rule decoding_figures:
    input:
        f"{RESULTS}/decoding/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/decoding_traces.png",
            caption="../report/decoding_traces.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "held-out traces"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/decoding_r2.png",
            caption="../report/decoding_r2.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "R2 per decoder"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/decoding_learning.png",
            caption="../report/decoding_learning.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "learning curves"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/decoding_table.html",
            caption="../report/decoding_table.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "table of scores"},
        ),
    log:
        "logs/figures/decoding_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq decoding-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


rule decoding_summary_figures:
    input:
        f"{RESULTS}/summary/decoding.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/decoding.png",
            caption="../report/decoding_summary.rst",
            category="Summary",
            labels={"figure": "decoders across sessions"},
        ),
        report(
            f"{RESULTS}/figures/summary/decoding_table.html",
            caption="../report/decoding_summary_table.rst",
            category="Summary",
            labels={"figure": "decoders across sessions, table"},
        ),
    log:
        "logs/figures/decoding_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq decoding-figures --summary {input:q} -o {params.directory:q} > {log:q} 2>&1"
