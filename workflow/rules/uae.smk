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
    params:
        config=effective_config(),
        transfer=uae_transfer_option,
    shell:
        "neuroseq uae {input.session} -c {params.config} {params.transfer} "
        "--threads {threads} -o {output} > {log} 2>&1"


rule summarize_uae:
    input:
        uae_results,
    output:
        f"{RESULTS}/summary/uae.nc",
    log:
        "logs/summary/uae.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"


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
    params:
        directory=output_dir,
    shell:
        "neuroseq uae-figures {input} -o {params.directory} > {log} 2>&1"


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
    params:
        directory=output_dir,
    shell:
        "neuroseq uae-figures --summary {input} -o {params.directory} > {log} 2>&1"
