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
import sys
from pathlib import Path

from neuroseq import __version__
from neuroseq.config import ingest_options, load_config
from neuroseq.errors import InputError, NeuroseqError

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
    from neuroseq.io.output import write_dataset

    config = load_config(args.config)
    session_id = args.session or Path(args.input).stem
    options = ingest_options(config, args.session)
    ds = ingest_file(args.input, session_id=session_id, **options)
    write_dataset(
        ds,
        args.output,
        schema="neuroseq.session/1",
        session_id=session_id,
        source_file=args.input,
        params=options,
    )
    log.info("wrote %s", args.output)


def _psychometric(args: argparse.Namespace) -> None:
    from neuroseq.io.output import read_dataset, write_dataset
    from neuroseq.psychometric.analysis import SCHEMA, run_psychometric

    options = load_config(args.config)["psychometric"]
    session = read_dataset(args.input, schema="neuroseq.session/1")
    ds = run_psychometric(session, source=args.input, **options)
    write_dataset(
        ds,
        args.output,
        schema=SCHEMA,
        session_id=session.attrs["session_id"],
        source_file=args.input,
        params=options,
        seed=options["seed"],
    )
    log.info("wrote %s (lowest AIC: %s)", args.output, ds.attrs["winner_aic"])


def _decode(args: argparse.Namespace) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    from neuroseq.decoding.evaluate import SCHEMA, run_decoding
    from neuroseq.io.output import read_dataset, write_dataset

    # One thread per process unless the rule asks for more: these machines run torch and
    # BLAS many times slower with two threads than with one.
    torch.set_num_threads(args.threads)
    options = load_config(args.config)["decoding"]
    session = read_dataset(args.input, schema="neuroseq.session/1")
    with threadpool_limits(args.threads):
        ds = run_decoding(session, source=args.input, **options)
    write_dataset(
        ds,
        args.output,
        schema=SCHEMA,
        session_id=session.attrs["session_id"],
        source_file=args.input,
        params=options,
        seed=options["seed"],
    )
    best = ds.r2.mean(("fold", "feature")).to_series().round(3).to_dict()
    log.info("wrote %s (mean R2: %s)", args.output, best)


def _oivae(args: argparse.Namespace) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    from neuroseq.io.output import read_dataset, write_dataset
    from neuroseq.latent.oivae_analysis import SCHEMA, run_oivae

    torch.set_num_threads(args.threads)  # one thread unless the rule asks for more
    options = load_config(args.config)["oivae"]
    session = read_dataset(args.input, schema="neuroseq.session/1")
    with threadpool_limits(args.threads):
        ds = run_oivae(session, source=args.input, **options)
    write_dataset(
        ds,
        args.output,
        schema=SCHEMA,
        session_id=session.attrs["session_id"],
        source_file=args.input,
        params=options,
        seed=options["seed"],
    )
    log.info(
        "wrote %s (lambda %g, %d active latents)",
        args.output,
        float(ds.lambda_chosen),
        int(ds.active.sum()),
    )


def _summarize(args: argparse.Namespace) -> None:
    """Summaries across sessions; what is summarized follows the inputs' schema."""
    from neuroseq.io.output import read_dataset, write_dataset

    kind = read_dataset(args.inputs[0]).attrs.get("neuroseq_schema")
    if kind == "neuroseq.session/1":
        from neuroseq.summary import summarize_sessions

        ds, schema = summarize_sessions(args.inputs), "neuroseq.summary.sessions/1"
    elif kind == "neuroseq.psychometric/1":
        from neuroseq.psychometric.analysis import SUMMARY_SCHEMA, summarize_psychometric

        ds = summarize_psychometric([read_dataset(p, schema=kind) for p in args.inputs])
        schema = SUMMARY_SCHEMA
    elif kind == "neuroseq.decoding/1":
        from neuroseq.decoding.evaluate import summarize_decoding

        ds = summarize_decoding([read_dataset(p, schema=kind) for p in args.inputs])
        schema = "neuroseq.summary.decoding/1"
    elif kind == "neuroseq.oivae/1":
        from neuroseq.latent.oivae_analysis import SUMMARY_SCHEMA as schema
        from neuroseq.latent.oivae_analysis import summarize_oivae

        ds = summarize_oivae([read_dataset(p, schema=kind) for p in args.inputs])
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


#: `neuroseq <analysis>-figures`: the report module, and its per-session and summary makers.
ANALYSIS_FIGURES = {
    "psychometric": (
        "neuroseq.report.psychometric",
        "psychometric_figures",
        "psychometric_summary_figure",
    ),
    "decoding": ("neuroseq.report.decoding", "decoding_figures", "decoding_summary_figure"),
    "oivae": ("neuroseq.report.oivae", "oivae_figures", "oivae_summary_figure"),
}


def _analysis_figures(args: argparse.Namespace) -> None:
    module, per_session, summary = ANALYSIS_FIGURES[args.analysis]
    make = getattr(importlib.import_module(module), summary if args.summary else per_session)
    for path in make(args.input, args.output):
        log.info("wrote %s", path)


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
    p.add_argument("input", type=Path, help="NWB file or CSV trial table")
    p.add_argument("-o", "--output", type=Path, required=True, help="session.nc to write")
    p.add_argument("--session", help="session id in the config (applies its overrides)")

    p = step("psychometric", _psychometric, "lapse models fitted and compared -> psychometric.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="psychometric.nc to write")

    p = step("decode", _decode, "decoders of behaviour from activity -> decoding.nc")
    p.add_argument("input", type=Path, help="session.nc")
    p.add_argument("-o", "--output", type=Path, required=True, help="decoding.nc to write")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        args.func(args)
    except NeuroseqError as exc:
        print(f"neuroseq {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0
