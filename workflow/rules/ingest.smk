checkpoint ingest:
    input:
        session_input,
    output:
        f"{RESULTS}/sessions/{{session}}/session.nc",
    log:
        "logs/ingest/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        config=effective_config(),
    shell:
        "neuroseq ingest {input} --session {wildcards.session} -c {params.config} "
        "-o {output} > {log} 2>&1"
