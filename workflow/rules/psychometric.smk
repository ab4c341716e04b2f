rule psychometric:
    input:
        session_nc("{session}"),
    output:
        f"{RESULTS}/psychometric/{{session}}.nc",
    log:
        "logs/psychometric/{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    threads: 1
    params:
        config=effective_config(),
    shell:
        "neuroseq psychometric {input} -c {params.config} -o {output} > {log} 2>&1"


rule summarize_psychometric:
    input:
        psychometric_results,
    output:
        f"{RESULTS}/summary/psychometric.nc",
    log:
        "logs/summary/psychometric.log",
    conda:
        "../envs/neuroseq.yaml"
    shell:
        "neuroseq summarize {input} -o {output} > {log} 2>&1"


rule psychometric_figures:
    input:
        f"{RESULTS}/psychometric/{{session}}.nc",
    output:
        report(
            f"{RESULTS}/figures/{{session}}/psychometric_curves.png",
            caption="../report/psychometric_curves.rst",
            category="Psychometric",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "choices and model curves"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/psychometric_comparison.png",
            caption="../report/psychometric_comparison.rst",
            category="Psychometric",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "model comparison"},
        ),
        report(
            f"{RESULTS}/figures/{{session}}/psychometric_lapses.png",
            caption="../report/psychometric_lapses.rst",
            category="Psychometric",
            subcategory="{session}",
            labels={"session": "{session}", "figure": "lapse parameters"},
        ),
    log:
        "logs/figures/psychometric_{session}.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq psychometric-figures {input} -o {params.directory} > {log} 2>&1"


rule psychometric_summary_figures:
    input:
        f"{RESULTS}/summary/psychometric.nc",
    output:
        report(
            f"{RESULTS}/figures/summary/psychometric.png",
            caption="../report/psychometric_summary.rst",
            category="Summary",
            labels={"figure": "lapse models across sessions"},
        ),
    log:
        "logs/figures/psychometric_summary.log",
    conda:
        "../envs/neuroseq.yaml"
    params:
        directory=output_dir,
    shell:
        "neuroseq psychometric-figures --summary {input} -o {params.directory} > {log} 2>&1"
