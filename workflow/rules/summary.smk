rule summarize_sessions:
    input:
        [session_nc(s) for s in SESSIONS],
    output:
        f"{RESULTS}/summary/sessions.nc",
    log:
        "logs/summary/sessions.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"
