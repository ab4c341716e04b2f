# One session's file (or URL) -> sessions/{session}/session.nc, and status.json: ok with
# what the session holds, or the bad-input error. A checkpoint: the analyses a session
# gets, and whether it gets any, are known once its status is.
checkpoint ingest:
    input:
        session_input,
    output:
        directory(session_dir("{session}")),
    log:
        "logs/ingest/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        # ~180 MB for a 12-min demo file of 8 MB; ~0.8 GB for a 1-hour, 300-unit file of
        # 109 MB (benchmarks/ingest.py). URLs have no local size: the base covers that.
        mem_mb=mem_mb(2000, per_input_mb=8),
        runtime=runtime(10, per_input_mb=0.1),
    params:
        source=session_source,
        config=ingest_config,
    shell:
        "neuroseq ingest {params.source:q} --session {wildcards.session:q} "
        "-c {params.config:q} -o {output:q}/session.nc --status {output:q}/status.json "
        "> {log:q} 2>&1"


# A session that ingest rejected: this job fails with the recorded reason, so the run
# exits non-zero and names it; with --keep-going every other session still finishes.
rule session_failed:
    input:
        session_dir("{session}"),
    output:
        f"{RESULTS}/failed/{{session}}",
    log:
        "logs/failed/{session}.log",
    localrule: True
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq status --fail {input:q}/status.json 2>&1 | tee {log:q}"


# Every session's outcome, as a table in the report.
rule session_status:
    input:
        status_files,
    output:
        html=report(
            f"{RESULTS}/summary/status.html",
            caption="../report/status.rst",
            category="Summary",
            labels={"figure": "sessions: ingested or failed"},
        ),
        csv=f"{RESULTS}/summary/status.csv",
    log:
        "logs/summary/status.log",
    localrule: True
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq status {input:q} --html {output.html:q} --csv {output.csv:q} > {log:q} 2>&1"
