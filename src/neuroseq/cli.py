"""`neuroseq <step> ...`: the entry point every workflow rule calls.

Each subcommand reads its inputs, takes its options from the same YAML config as the
workflow (``-c``), calls one package function and writes through the one writer.
Errors on bad input print one line naming the file, the field, what was expected and
what was found, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from neuroseq import __version__
from neuroseq.config import check_session_id, ingest_options, load_config
from neuroseq.errors import InputError, NeuroseqError
from neuroseq.status import write_status

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger("neuroseq")


def _simulate(args: argparse.Namespace) -> None:
    from neuroseq.simulate import simulate_demo

    demo = load_config(args.config)["demo"]
    n = args.n_sessions if args.n_sessions is not None else demo["n_sessions"]
    duration = args.duration if args.duration is not None else demo["duration_s"]
    seed = args.seed if args.seed is not None else demo["seed"]
    for path in simulate_demo(args.output, n_sessions=n, duration_s=duration, seed=seed):
        log.info("wrote %s", path)


def _ingest(args: argparse.Namespace) -> None:
    from neuroseq.io.ingest import ingest_file
    from neuroseq.io.output import session_contents, session_groups, write_dataset
    from neuroseq.io.remote import is_url

    config = load_config(args.config)
    name = urlsplit(args.input).path if is_url(args.input) else args.input
    session_id = args.session if args.session is not None else Path(name).stem
    check_session_id(session_id, source="--session" if args.session is not None else name)
    try:
        options = ingest_options(config, args.session)
        ds = ingest_file(args.input, session_id=session_id, remote=config["remote"], **options)
        write_dataset(
            ds,
            args.output,
            schema="neuroseq.session/1",
            session_id=session_id,
            source_file=args.input,
            params=options,
        )
    except InputError as exc:
        if args.status is None:
            raise
        # Bad input is this session's outcome, not a crash: record it for the workflow,
        # which fails this session's own job with the message and goes on with the rest.
        write_status(
            args.status, session_id=session_id, step="ingest", source=args.input, error=exc
        )
        print(f"neuroseq ingest: error: {exc}", file=sys.stderr)
        log.error("recorded the failure in %s", args.status)
        return
    log.info("wrote %s", args.output)
    if args.status is not None:
        write_status(
            args.status,
            session_id=session_id,
            step="ingest",
            source=args.input,
            contents=session_contents(args.output),
            groups=session_groups(ds),
        )


def _analyse(
    args: argparse.Namespace,
    section: str,
    module: str,
    *,
    torch_threads: bool = True,
    params: dict | None = None,
    workflow_keys: tuple[str, ...] = (),
    **inputs,
) -> xr.Dataset:
    """Run one per-session analysis and write its result.

    Reads the config's ``section`` and the session, calls ``<module>.run_<section>``
    (``module`` also names the output's ``SCHEMA``) with the section's options plus
    ``inputs``, and writes the result with provenance (``params`` adds to the options;
    ``workflow_keys`` are options the workflow reads, recorded but not passed on).
    Torch steps run one thread unless given ``--threads``: these machines run torch and
    BLAS many times slower with two threads than with one.
    """
    from threadpoolctl import threadpool_limits

    from neuroseq.io.output import read_dataset, write_dataset

    analysis = importlib.import_module(module)
    threads = getattr(args, "threads", 1)
    if torch_threads:
        import torch

        torch.set_num_threads(threads)
        # Which GPUs the scheduler gave this job (SLURM sets CUDA_VISIBLE_DEVICES for a
        # job that asked for one), and what torch makes of it: where training ran.
        log.info(
            "CUDA_VISIBLE_DEVICES=%s; torch sees %d CUDA device(s); %d CPU thread(s)",
            os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
            torch.cuda.device_count(),
            threads,
        )
    options = load_config(args.config)[section]
    session = read_dataset(args.input, schema="neuroseq.session/1")
    run = getattr(analysis, f"run_{section}")
    with threadpool_limits(threads):
        run_options = {k: v for k, v in options.items() if k not in workflow_keys}
        ds = run(session, source=args.input, **run_options, **inputs)
    write_dataset(
        ds,
        args.output,
        schema=analysis.SCHEMA,
        session_id=session.attrs["session_id"],
        source_file=args.input,
        params={**options, **(params or {})},
        seed=options["seed"],
    )
    return ds


def _psychometric(args: argparse.Namespace) -> None:
    ds = _analyse(args, "psychometric", "neuroseq.psychometric.analysis", torch_threads=False)
    log.info("wrote %s (lowest AIC: %s)", args.output, ds.attrs["winner_aic"])


def _decode(args: argparse.Namespace) -> None:
    ds = _analyse(args, "decoding", "neuroseq.decoding.evaluate", weights_dir=args.weights)
    best = ds.r2.mean(("fold", "feature")).to_series().round(3).to_dict()
    log.info("wrote %s (mean R2: %s)", args.output, best)


def _uae(args: argparse.Namespace) -> None:
    from neuroseq.io.output import read_dataset

    transfer = None
    if args.transfer_source is not None:
        transfer = read_dataset(args.transfer_source, schema="neuroseq.session/1")
    ds = _analyse(
        args,
        "uae",
        "neuroseq.latent.uae_analysis",
        transfer_source=transfer,
        params={"transfer_source_file": str(args.transfer_source or "")},
        workflow_keys=("transfer_from",),
    )
    errors = ds.recon_error.mean("fold").round(3).to_pandas().to_dict(orient="index")
    log.info("wrote %s (mean recon_error per method and m: %s)", args.output, errors)


def _nngp(args: argparse.Namespace) -> None:
    ds = _analyse(args, "nngp", "neuroseq.nngp.analysis")
    log.info(
        "wrote %s (NNGP %.3f; widest network %.3f)",
        args.output,
        float(ds.nngp_score),
        float(ds.score.isel(width=-1).mean()),
    )


def _oivae(args: argparse.Namespace) -> None:
    ds = _analyse(args, "oivae", "neuroseq.latent.oivae_analysis")
    log.info(
        "wrote %s (lambda %g, %d active latents)",
        args.output,
        float(ds.lambda_chosen),
        int(ds.active.sum()),
    )


#: `neuroseq summarize`: input schema -> (module, summarizing function, summary schema).
SUMMARIES = {
    "neuroseq.psychometric/1": (
        "neuroseq.psychometric.analysis",
        "summarize_psychometric",
        "neuroseq.summary.psychometric/1",
    ),
    "neuroseq.decoding/1": (
        "neuroseq.decoding.evaluate",
        "summarize_decoding",
        "neuroseq.summary.decoding/1",
    ),
    "neuroseq.pruning/1": (
        "neuroseq.pruning.analysis",
        "summarize_pruning",
        "neuroseq.summary.pruning/1",
    ),
    "neuroseq.uae/1": ("neuroseq.latent.uae_analysis", "summarize_uae", "neuroseq.summary.uae/1"),
    "neuroseq.nngp/1": ("neuroseq.nngp.analysis", "summarize_nngp", "neuroseq.summary.nngp/1"),
    "neuroseq.oivae/1": (
        "neuroseq.latent.oivae_analysis",
        "summarize_oivae",
        "neuroseq.summary.oivae/1",
    ),
}


def _summarize(args: argparse.Namespace) -> None:
    """Summaries across sessions; what is summarized follows the inputs' schema."""
    from neuroseq.io.output import read_dataset, write_dataset

    kind = read_dataset(args.inputs[0]).attrs.get("neuroseq_schema")
    if kind == "neuroseq.session/1":
        from neuroseq.summary import summarize_sessions

        ds, schema = summarize_sessions(args.inputs), "neuroseq.summary.sessions/1"
    elif kind in SUMMARIES:
        module, function, schema = SUMMARIES[kind]
        summarize = getattr(importlib.import_module(module), function)
        ds = summarize([read_dataset(p, schema=kind) for p in args.inputs])
    else:
        raise InputError(
            args.inputs[0], "attrs neuroseq_schema", "a session or analysis result", repr(kind)
        )
    write_dataset(
        ds,
        args.output,
        schema=schema,
        session_id="all",
        source_file=None,
        params={"inputs": [str(p) for p in args.inputs]},
    )
    log.info("wrote %s", args.output)


def _figures(args: argparse.Namespace) -> None:
    from neuroseq.report.figures import session_figures

    for path in session_figures(args.input, args.output):
        log.info("wrote %s", path)


def _summary_figures(args: argparse.Namespace) -> None:
    from neuroseq.report.figures import summary_figures

    for path in summary_figures(args.input, args.output):
        log.info("wrote %s", path)


def _status(args: argparse.Namespace) -> int | None:
    import neuroseq.status as status

    records = [status.read_status(p) for p in args.inputs]
    for line in status.status_lines(records):
        print(line)
    if args.html is not None:
        _write_text(args.html, status.status_html(records))
    if args.csv is not None:
        _write_text(args.csv, status.status_frame(records).to_csv(index=False))
    failed = [r for r in records if r["status"] == "failed"]
    if args.fail and failed:
        for r in failed:
            print(
                f"neuroseq status: session {r['session_id']} failed at {r['step']}: "
                f"{r['error']['message']}",
                file=sys.stderr,
            )
        return 1
    return None


def _write_text(path: Path, text: str) -> None:
    from neuroseq.io.output import atomic_write

    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)


#: `neuroseq <analysis>-figures`: the report module, and its per-session and summary makers.
ANALYSIS_FIGURES = {
    "psychometric": (
        "neuroseq.report.psychometric",
        "psychometric_figures",
        "psychometric_summary_figure",
    ),
    "decoding": ("neuroseq.report.decoding", "decoding_figures", "decoding_summary_figure"),
    "pruning": ("neuroseq.report.pruning", "pruning_figures", "pruning_summary_figure"),
    "uae": ("neuroseq.report.uae", "uae_figures", "uae_summary_figure"),
    "nngp": ("neuroseq.report.nngp", "nngp_figures", "nngp_summary_figure"),
    "oivae": ("neuroseq.report.oivae", "oivae_figures", "oivae_summary_figure"),
}


def _analysis_figures(args: argparse.Namespace) -> None:
    module, per_session, summary = ANALYSIS_FIGURES[args.analysis]
    make = getattr(importlib.import_module(module), summary if args.summary else per_session)
    for path in make(args.input, args.output):
        log.info("wrote %s", path)


def _prune(args: argparse.Namespace) -> None:
    ds = _analyse(args, "pruning", "neuroseq.pruning.analysis")
    sparsest = ds.score.isel(sparsity=-1).mean("seed").round(3).to_series().to_dict()
    log.info("wrote %s (R2 at the sparsest round: %s)", args.output, sparsest)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `neuroseq` command."""
    parser = argparse.ArgumentParser(prog="neuroseq", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"neuroseq {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STEP")

    def step(name: str, func, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("-c", "--config", type=Path, help="YAML config (the workflow's schema)")
        p.set_defaults(func=func)
        return p

    p = step("simulate", _simulate, "write the demo NWB sessions with known ground truth")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    p.add_argument("-n", "--n-sessions", type=int, help="default: config demo.n_sessions")
    p.add_argument("--duration", type=float, help="seconds; default: config demo.duration_s")
    p.add_argument("--seed", type=int, help="default: config demo.seed")

    p = step("ingest", _ingest, "NWB file or CSV trial table -> session.nc")
    # A str, not a Path: Path would fold the "//" of an http(s) URL.
    p.add_argument("input", help="NWB file or CSV trial table: a path or an http(s) URL")
    p.add_argument("-o", "--output", type=Path, required=True, help="session.nc to write")
    p.add_argument("--session", help="session id in the config (applies its overrides)")
    p.add_argument(
        "--status",
        type=Path,
        help="write the outcome (ok, or the bad-input error) to this JSON file; bad input "
        "is then recorded there and the command exits 0",
    )

    p = step("psychometric", _psychometric, "lapse models fitted and compared -> psychometric.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="psychometric.nc to write")

    p = step("decode", _decode, "decoders of behaviour from activity -> decoding.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="decoding.nc to write")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument(
        "--weights",
        type=Path,
        help="directory for the trained torch decoders, one state_dict + JSON per decoder "
        "and fold (reload with TransformerDecoder.load)",
    )

    p = step("uae", _uae, "compressed sensing of population vectors (UAE, LASSO, PCA) -> uae.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="uae.nc to write")
    p.add_argument(
        "--transfer-source",
        type=Path,
        help="session.nc of another session: its learnt encoder is applied here and only "
        "the decoder is re-learnt (method uae_transfer)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")

    p = step("nngp", _nngp, "NNGP against finite-width networks on trial targets -> nngp.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="nngp.nc to write")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")

    p = step("oivae", _oivae, "oi-VAE latent-to-group maps along a lambda path -> oivae.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="oivae.nc to write")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")

    for analysis in ANALYSIS_FIGURES:
        p = step(
            f"{analysis}-figures",
            _analysis_figures,
            f"report figures of {analysis}.nc "
            "(or, with --summary, of its summary across sessions)",
        )
        p.add_argument("input", type=Path, help=f"{analysis}.nc or summary/{analysis}.nc")
        p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
        p.add_argument("--summary", action="store_true", help="the input is the summary")
        p.set_defaults(analysis=analysis)

    p = step(
        "summarize",
        _summarize,
        "stack per-session files (session.nc or an analysis's "
        "results) along `session` -> summary.nc",
    )
    p.add_argument("inputs", type=Path, nargs="+", help="files of one schema")
    p.add_argument("-o", "--output", type=Path, required=True, help="summary.nc to write")

    p = step("figures", _figures, "report figures of one session.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")

    p = step("summary-figures", _summary_figures, "report figures of the sessions summary")
    p.add_argument("input", type=Path, help="summary/sessions.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")

    p = step("prune", _prune, "lottery tickets of the decoders by iterative pruning -> pruning.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="pruning.nc to write")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")

    p = step("status", _status, "print (and tabulate) the sessions' status records")
    p.add_argument("inputs", type=Path, nargs="+", help="status.json files")
    p.add_argument("--html", type=Path, help="write an HTML table (the report's)")
    p.add_argument("--csv", type=Path, help="write a CSV table")
    p.add_argument("--fail", action="store_true", help="exit 1 when a session failed")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return args.func(args) or 0
    except NeuroseqError as exc:
        print(f"neuroseq {args.command}: error: {exc}", file=sys.stderr)
        return 2
