rule oivae:
    input:
        ingested,
    output:
        f"{RESULTS}/oivae/{{session}}.nc",
    log:
        "logs/oivae/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
        # 4 lambdas with relaxed refits: ~1-2 min a 12-min demo session on one thread.
        mem_mb=mem_mb(2000, per_input_mb=150),
        runtime=runtime(30, per_input_mb=5),
    params:
        config=effective_config("oivae"),
    shell:
        "neuroseq oivae {input:q} -c {params.config:q} --threads {threads} -o {output:q} "
        "> {log:q} 2>&1"


rule summarize_oivae:
    input:
        results_of("oivae"),
    output:
        f"{RESULTS}/summary/oivae.nc",
    log:
        "logs/summary/oivae.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"


rule oivae_figures:
    input:
        f"{RESULTS}/oivae/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/oivae_map.png",
            caption="../report/oivae_map.rst",
            category="oi-VAE",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "latent x group map"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/oivae_elbo.png",
            caption="../report/oivae_elbo.rst",
            category="oi-VAE",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "ELBO and lambda path"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/oivae_recon.png",
            caption="../report/oivae_recon.rst",
            category="oi-VAE",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "reconstruction per group"},
        ),
    log:
        "logs/figures/oivae_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq oivae-figures {input:q} -o {params.directory:q} > {log:q} 2>&1"


rule oivae_summary_figures:
    input:
        f"{RESULTS}/summary/oivae.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/oivae.png",
            caption="../report/oivae_summary.rst",
            category="Summary",
            labels={"figure": "oi-VAE across sessions"},
        ),
    log:
        "logs/figures/oivae_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500, per_input_mb=10),
        runtime=runtime(10),
    params:
        directory=output_dir,
    shell:
        "neuroseq oivae-figures --summary {input:q} -o {params.directory:q} > {log:q} 2>&1"
