rule oivae:
    input:
        session_nc("{session}"),
    output:
        f"{RESULTS}/oivae/{{session}}.nc",
    log:
        "logs/oivae/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
    params:
        config=effective_config(),
    shell:
        "neuroseq oivae {input} -c {params.config} --threads {threads} -o {output} "
        "> {log} 2>&1"


rule summarize_oivae:
    input:
        oivae_results,
    output:
        f"{RESULTS}/summary/oivae.nc",
    log:
        "logs/summary/oivae.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"


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
    params:
        directory=output_dir,
    shell:
        "neuroseq oivae-figures {input} -o {params.directory} > {log} 2>&1"


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
    params:
        directory=output_dir,
    shell:
        "neuroseq oivae-figures --summary {input} -o {params.directory} > {log} 2>&1"
