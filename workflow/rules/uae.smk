# Compressed sensing of population vectors: one job per session (torch: may ask for a
# GPU), a summary across sessions and the report figures.
rule uae:
    input:
        unpack(uae_inputs),
    output:
        f"{RESULTS}/uae/{{session}}.nc",
    log:
        "logs/uae/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
        # ~1 min and < 1 GB per 12-min demo session with the demo config (one thread).
        mem_mb=mem_mb(2000, per_input_mb=150),
        runtime=runtime(30, per_input_mb=5),
    params:
        config=effective_config("uae"),
        transfer=uae_transfer_option,
    shell:
        "neuroseq uae {input.session:q} -c {params.config:q} {params.transfer:q} "
        "--threads {threads} -o {output:q} > {log:q} 2>&1"


rule summarize_uae:
    input:
        results_of("uae"),
    output:
        f"{RESULTS}/summary/uae.nc",
    log:
        "logs/summary/uae.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"


rule uae_figures:
    input:
        f"{RESULTS}/uae/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/uae_error.png",
            caption="../report/uae_error.rst",
            category="Compressed sensing",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "error vs measurements"},
        ),
    log:
        "logs/figures/uae_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq uae-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


rule uae_summary_figures:
    input:
        f"{RESULTS}/summary/uae.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/uae.png",
            caption="../report/uae_summary.rst",
            category="Summary",
            labels={"figure": "compressed sensing across sessions"},
        ),
    log:
        "logs/figures/uae_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq uae-figures --summary {input:q} -o {params.directory:q} > {log:q} 2>&1"
