rule decode:
    input:
        session_nc("{session}"),
    output:
        nc=f"{RESULTS}/decoding/{{session}}.nc",
        weights=directory(f"{RESULTS}/decoding/{{session}}_weights"),
    log:
        "logs/decoding/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    resources:
        gpu=TORCH_GPUS,
    params:
        config=effective_config(),
    shell:
        "neuroseq decode {input} -c {params.config} --threads {threads} -o {output.nc} "
        "--weights {output.weights} > {log} 2>&1"


rule summarize_decoding:
    input:
        decoding_results,
    output:
        f"{RESULTS}/summary/decoding.nc",
    log:
        "logs/summary/decoding.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"


rule decoding_figures:
    input:
        f"{RESULTS}/decoding/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/decoding_traces.png",
            caption="../report/decoding_traces.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "held-out traces"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/decoding_r2.png",
            caption="../report/decoding_r2.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "R2 per decoder"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/decoding_learning.png",
            caption="../report/decoding_learning.rst",
            category="Decoding",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "learning curves"},
        ),
    log:
        "logs/figures/decoding_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq decoding-figures {input} -o {params.directory} > {log} 2>&1"


rule decoding_summary_figures:
    input:
        f"{RESULTS}/summary/decoding.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/decoding.png",
            caption="../report/decoding_summary.rst",
            category="Summary",
            labels={"figure": "decoders across sessions"},
        ),
    log:
        "logs/figures/decoding_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq decoding-figures --summary {input} -o {params.directory} > {log} 2>&1"
