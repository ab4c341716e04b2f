# Helpers shared by the rule files (sessions from config, output paths, effective config).
import hashlib
from pathlib import Path

import yaml

from neuroseq.config import session_path
from neuroseq.io import session_contents
from neuroseq.latent.oivae_data import oivae_groups

RESULTS = config["results_dir"]
SESSIONS = sorted(config["sessions"])
DEMO_DIR = config["demo"]["directory"]
DEMO_FILES = [
    f"{DEMO_DIR}/demo_{i:02d}.nwb" for i in range(1, config["demo"]["n_sessions"] + 1)
]
# What each analysis needs a session to hold (see neuroseq.io.session_contents).
NEEDS = {"psychometric": {"choices"}, "decoding": {"units", "behavior"}, "oivae": set()}
# torch rules ask the scheduler for a GPU only when the config says the cluster has them.
TORCH_GPUS = 1 if config["gpus"] else 0


def effective_config():
    """Write the validated config (defaults filled, --config overrides applied) once.

    Every `neuroseq <step> -c` call reads this file, so the CLI sees exactly what the
    workflow validated. It is rewritten only when its content changes.
    """
    text = yaml.safe_dump(config, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(RESULTS) / ".config" / f"config-{digest}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(path)


def session_input(wildcards):
    """The NWB (or CSV) file configured for one session."""
    return session_path(config, wildcards.session)


def session_nc(session):
    return f"{RESULTS}/sessions/{session}/session.nc"


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
        if NEEDS[analysis]
        <= session_contents(checkpoints.ingest.get(session=s).output[0])
        and (analysis != "oivae" or oivae_ready(s))
    ]


def oivae_ready(session):
    """oi-VAE needs two groups or more (regions with units, body parts) in the session."""
    path = checkpoints.ingest.get(session=session).output[0]
    options = config["oivae"]
    return len(oivae_groups(path, options["parts"], options["exclude_groups"])) >= 2


def psychometric_results(wildcards):
    return [f"{RESULTS}/psychometric/{s}.nc" for s in sessions_for("psychometric")]


def decoding_results(wildcards):
    return [f"{RESULTS}/decoding/{s}.nc" for s in sessions_for("decoding")]


def oivae_results(wildcards):
    return [f"{RESULTS}/oivae/{s}.nc" for s in sessions_for("oivae")]


def analysis_figures(analysis, names):
    """One session's figures of an analysis, for the sessions it runs on."""
    return [
        f"{RESULTS}/figures/{s}/{analysis}_{name}.png"
        for s in sessions_for(analysis)
        for name in names
    ]


def session_outputs():
    """What the final target asks of every session, whatever it holds."""
    outputs = [
        f"{RESULTS}/summary/sessions.nc",
        f"{RESULTS}/figures/summary/sessions.png",
    ]
    for session in SESSIONS:
        outputs += [session_nc(session), *session_figures(session)]
    return outputs


def analysis_outputs(wildcards):
    """What the final target asks of the analyses, only where a session can feed them."""
    outputs = []
    if sessions_for("psychometric"):
        outputs += [
            f"{RESULTS}/summary/psychometric.nc",
            f"{RESULTS}/figures/summary/psychometric.png",
            *analysis_figures("psychometric", ("curves", "comparison", "lapses")),
        ]
    if sessions_for("decoding"):
        outputs += [
            f"{RESULTS}/summary/decoding.nc",
            f"{RESULTS}/figures/summary/decoding.png",
            *analysis_figures("decoding", ("traces", "r2", "learning")),
        ]
    if sessions_for("oivae"):
        outputs += [
            f"{RESULTS}/summary/oivae.nc",
            f"{RESULTS}/figures/summary/oivae.png",
            *analysis_figures("oivae", ("map", "elbo", "recon")),
        ]
    return outputs


def output_dir(wildcards, output):
    """The directory of a rule's first output (for commands that take a directory)."""
    return str(Path(output[0]).parent)
