# neuroseq: NWB recordings -> standardized sessions -> analyses -> summaries -> HTML report.
# All science lives in the `neuroseq` package; every rule calls one `neuroseq <step>` command.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    session=session_regex(),


include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/psychometric.smk"
include: "workflow/rules/decoding.smk"
include: "workflow/rules/uae.smk"
include: "workflow/rules/nngp.smk"
include: "workflow/rules/pruning.smk"
include: "workflow/rules/oivae.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        session_dirs(),
        session_outputs,
        analysis_outputs,
