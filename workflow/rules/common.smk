# Helpers shared by the rule files (sessions from config, output paths, effective config,
# resources). Conventions every rule follows, so that the same workflow runs on a laptop
# and on a SLURM cluster (profiles/slurm) unchanged:
# - threads: 1 unless the step is measured to gain from more (torch and BLAS run many
#   times slower with two threads than with one on small machines);
# - resources: mem_mb and runtime (minutes) from `mem_mb(...)` and `runtime(...)` below,
#   scaled by the size of the rule's input files where memory or time grows with it, and
#   doubled on each retry; a torch rule adds `gpu=TORCH_GPUS`. Partitions, accounts and
#   cluster-wide defaults belong to the profile, never to a rule;
# - shell commands quote every config-derived value with `:q` ({input:q}, {params.x:q});
# - per-session rules take their session.nc through `ingested` (it waits for ingest).
import functools
import hashlib
import os
import re
from pathlib import Path

import yaml

from neuroseq.config import session_path
from neuroseq.io.remote import is_url
from neuroseq.status import read_status
from neuroseq.nngp.data import workflow_needs
from neuroseq.latent.oivae_data import oivae_groups

RESULTS = config["results_dir"]
SESSIONS = sorted(config["sessions"])
DEMO_DIR = config["demo"]["directory"]
DEMO_FILES = [
    f"{DEMO_DIR}/demo_{i:02d}.nwb" for i in range(1, config["demo"]["n_sessions"] + 1)
]
# Every analysis: what a session must hold for it (see neuroseq.io.session_contents) and
# the names of its per-session figures (PNG unless a name has its own extension). The
# final target asks for the results, summary and figures of the analyses the config
# names, only on the sessions that can feed them.
ANALYSES = {
    "psychometric": ({"choices"}, ("curves", "comparison", "lapses")),
    "decoding": ({"units", "behavior"}, ("traces", "r2", "learning", "table.html")),
    "pruning": ({"units", "behavior"}, ("tickets",)),
    "uae": ({"units"}, ("error",)),
    "nngp": (workflow_needs(config["nngp"]["target"]), ("width", "uncertainty")),
    # oi-VAE: two groups or more (regions with units, body parts); see oivae_ready.
    "oivae": (set(), ("map", "elbo", "recon")),
}
NEEDS = {name: needs for name, (needs, _) in ANALYSES.items()}
CHOSEN = [name for name in ANALYSES if name in config["analyses"]]
# torch rules ask the scheduler for a GPU only when the config says the cluster has them.
TORCH_GPUS = 1 if config["gpus"] else 0


def session_regex():
    """Wildcard constraint: exactly the configured session ids."""
    return "|".join(re.escape(s) for s in SESSIONS) or "NO_SESSIONS"


# ---------------------------------------------------------------- resources


def input_mb(input):
    """Total size in MB of a job's input files that exist locally (0 for URLs)."""
    total = 0
    for f in input:
        path = Path(f)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return total / 1e6


def mem_mb(base, per_input_mb=0.0):
    """A `resources: mem_mb=` function: base + per_input_mb x input MB, x attempt."""

    def mem(wildcards, input, attempt):
        return int((base + per_input_mb * input_mb(input)) * attempt)

    return mem


def runtime(base, per_input_mb=0.0):
    """A `resources: runtime=` function (minutes): base + per_input_mb x input MB, x attempt."""

    def minutes(wildcards, input, attempt):
        return int((base + per_input_mb * input_mb(input)) * attempt)

    return minutes


# ---------------------------------------------------------------- sessions


@functools.lru_cache(maxsize=None)
def _config_file(text):
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(RESULTS) / ".config" / f"config-{digest}.yaml"
    if not path.exists():
        # Atomic: a cluster job parsing the workflow may read it while it is written.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return str(path)


def effective_config(*sections):
    """Write the validated config (defaults filled, --config overrides applied) once.

    Every `neuroseq <step> -c` call reads this file, so the CLI sees exactly what the
    workflow validated. It is rewritten only when its content changes. With section
    names, the file holds only those sections (the rest take their defaults, unused by
    the step), so a change elsewhere, e.g. a session added, does not rerun the step.
    """
    part = {k: config[k] for k in sections} if sections else config
    return _config_file(yaml.safe_dump(part, sort_keys=True))


def ingest_config(wildcards):
    """The config one session's ingest reads: `ingest`, `remote` and its own entry."""
    part = {k: config[k] for k in ("ingest", "remote")}
    part["sessions"] = {wildcards.session: config["sessions"][wildcards.session]}
    return _config_file(yaml.safe_dump(part, sort_keys=True))


def session_input(wildcards):
    """The local file configured for one session, as the ingest rule's input.

    A URL is no local input (ingest streams it; the URL is a param, so changing it reruns
    ingest). A local file that does not exist, and that nothing makes, is no input either:
    ingest then records the session as failed (no such file) instead of stopping the
    whole workflow, and reruns once the file appears.
    """
    path = session_path(config, wildcards.session)
    if is_url(path) or (path not in DEMO_FILES and not Path(path).exists()):
        return []
    return path


def session_source(wildcards):
    """The file or URL of one session, for the ingest command line."""
    return session_path(config, wildcards.session)


def session_dir(session):
    return f"{RESULTS}/sessions/{session}"


def session_nc(session):
    return f"{session_dir(session)}/session.nc"


def session_status_file(session):
    return f"{session_dir(session)}/status.json"


@functools.lru_cache(maxsize=None)
def _read_status(path, mtime_ns):
    return read_status(path)


def ingest_status(session):
    """The status record ingest left for `session` (waits for the ingest checkpoint)."""
    directory = checkpoints.ingest.get(session=session).output[0]
    path = f"{directory}/status.json"
    return _read_status(path, Path(path).stat().st_mtime_ns)


def ingested_sessions():
    """Sessions that ingest accepted (known after ingest)."""
    return [s for s in SESSIONS if ingest_status(s)["status"] == "ok"]


def failed_sessions():
    """Sessions whose input ingest rejected, with the recorded reason."""
    return [s for s in SESSIONS if ingest_status(s)["status"] == "failed"]


def ingested(wildcards):
    """Input of per-session rules: the session.nc, once ingest has made it."""
    checkpoints.ingest.get(session=wildcards.session)
    return session_nc(wildcards.session)


def session_figures(session):
    return [
        f"{RESULTS}/figures/{session}/{name}.png"
        for name in ("raster", "rates", "choices")
    ]


def sessions_for(analysis):
    """Sessions whose session.nc holds what `analysis` needs (known after ingest)."""
    return [
        s
        for s in SESSIONS
        if ingest_status(s)["status"] == "ok"
        and NEEDS[analysis] <= set(ingest_status(s)["contents"])
        and (analysis != "oivae" or oivae_ready(s))
    ]


def oivae_ready(session):
    """oi-VAE needs two groups or more (regions with units, body parts) in the session."""
    groups = ingest_status(session).get("groups") or session_nc(session)
    options = config["oivae"]
    return len(oivae_groups(groups, options["parts"], options["exclude_groups"])) >= 2


def results_of(analysis):
    """An input function: the per-session results of `analysis` (for its summary)."""

    def results(wildcards):
        return [f"{RESULTS}/{analysis}/{s}.nc" for s in sessions_for(analysis)]

    return results


def analysis_figures(analysis, names):
    """One session's figures of an analysis, for the sessions it runs on."""
    return [
        f"{RESULTS}/figures/{s}/{analysis}_{name}{'' if '.' in name else '.png'}"
        for s in sessions_for(analysis)
        for name in names
    ]


def ingested_session_files(wildcards):
    """Every accepted session's session.nc (for the sessions summary)."""
    return [session_nc(s) for s in ingested_sessions()]


def status_files(wildcards):
    """Every session's status record, once all ingests are done."""
    return [session_status_file(s) for s in SESSIONS if ingest_status(s)]


def session_dirs():
    """Every session's ingest output; asked for up front, so all ingests are planned at
    once (what follows each one is planned when its checkpoint completes)."""
    return [session_dir(s) for s in SESSIONS]


def session_outputs(wildcards):
    """What the final target asks of every session: its figures if ingest accepted it,
    else its failure (a job that fails with the recorded reason)."""
    outputs = [f"{RESULTS}/summary/status.html", f"{RESULTS}/summary/status.csv"]
    ok = ingested_sessions()
    if ok:
        outputs += [
            f"{RESULTS}/summary/sessions.nc",
            f"{RESULTS}/figures/summary/sessions.png",
        ]
    for session in ok:
        outputs += [session_nc(session), *session_figures(session)]
    outputs += [f"{RESULTS}/failed/{s}" for s in failed_sessions()]
    return outputs


def analysis_outputs(wildcards):
    """What the final target asks of the analyses, only where a session can feed them."""
    outputs = []
    for analysis in CHOSEN:
        if sessions_for(analysis):
            outputs += [
                f"{RESULTS}/summary/{analysis}.nc",
                f"{RESULTS}/figures/summary/{analysis}.png",
                *analysis_figures(analysis, ANALYSES[analysis][1]),
            ]
            if analysis == "decoding":
                outputs.append(f"{RESULTS}/figures/summary/decoding_table.html")
    return outputs


def output_dir(wildcards, output):
    """The directory of a rule's first output (for commands that take a directory)."""
    return str(Path(output[0]).parent)


# Compressed sensing: the session whose learnt encoder the others re-use (or None).
UAE_SOURCE = config["uae"]["transfer_from"] if "uae" in CHOSEN else None
if UAE_SOURCE is not None and UAE_SOURCE not in SESSIONS:
    raise ValueError(
        f"config uae.transfer_from: expected a session id among {SESSIONS}; "
        f"found {UAE_SOURCE!r}"
    )


def uae_inputs(wildcards):
    """The session, and the transfer source's session.nc when one is configured and
    ingest accepted it with units (else no transfer; the status table says why)."""
    inputs = {"session": ingested(wildcards)}
    if UAE_SOURCE is not None and UAE_SOURCE != wildcards.session:
        source = ingest_status(UAE_SOURCE)
        if source["status"] == "ok" and NEEDS["uae"] <= set(source["contents"]):
            inputs["source"] = session_nc(UAE_SOURCE)
    return inputs


def uae_transfer_option(wildcards, input):
    """The transfer arguments as a list (`:q` quotes each; none without a source)."""
    return ["--transfer-source", input.source] if "source" in input.keys() else []
