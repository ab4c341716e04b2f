rule summarize_sessions:
    input:
        ingested_session_files,
    output:
        f"{RESULTS}/summary/sessions.nc",
    log:
        "logs/summary/sessions.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_input_mb=4),
        runtime=runtime(10),
    shell:
        "neuroseq summarize {input:q} -o {output:q} > {log:q} 2>&1"
