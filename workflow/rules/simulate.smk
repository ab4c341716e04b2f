rule simulate:
    output:
        DEMO_FILES,
    log:
        "logs/simulate.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime(10),
    params:
        config=effective_config("demo"),
        directory=output_dir,
    shell:
        "neuroseq simulate -c {params.config:q} -o {params.directory:q} > {log:q} 2>&1"
