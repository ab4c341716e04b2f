rule simulate:
    output:
        DEMO_FILES,
    log:
        "logs/simulate.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        config=effective_config(),
        directory=output_dir,
    shell:
        "neuroseq simulate -c {params.config} -o {params.directory} > {log} 2>&1"
