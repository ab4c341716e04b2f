"""Report figures: every declared PNG is written, real and readable, for every kind of session."""

import matplotlib.pyplot as plt
import numpy as np

from helpers import CA1_OPTIONS, QUICKPSY_TRIALS, REAL_CA1, REAL_QUICKPSY, write_nwb
from neuroseq.io import ingest_file, write_dataset
from neuroseq.report.figures import missing_parts, session_figures, summary_figures
from neuroseq.summary import summarize_sessions


def session_nc(tmp_path, sid, path, **options):
    ds = ingest_file(path, session_id=sid, **options)
    return write_dataset(
        ds,
        tmp_path / f"{sid}.nc",
        schema="neuroseq.session/1",
        session_id=sid,
        source_file=path,
        params=options,
    ), ds


def check_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = plt.imread(path)
    assert image.shape[0] > 150
    assert image.shape[1] > 300
    assert image[..., :3].std() > 0.01  # not a blank canvas


def test_figures_of_a_full_session(tmp_path):
    nwb = tmp_path / "s.nwb"
    write_nwb(nwb, n_trials=30, duration=60.0)
    path, ds = session_nc(tmp_path, "s", nwb)
    assert missing_parts(ds) == {}
    written = session_figures(path, tmp_path / "figs")
    assert [p.name for p in written] == ["raster.png", "rates.png", "choices.png"]
    for p in written:
        check_png(p)


def test_figures_of_real_sessions_with_missing_parts(real_data, tmp_path):
    path, ds = session_nc(tmp_path, "ca1", REAL_CA1, **CA1_OPTIONS)
    assert missing_parts(ds) == {"choices": "no stimulus and choice in this session's trials"}
    for p in session_figures(path, tmp_path / "ca1"):
        check_png(p)
    path, ds = session_nc(tmp_path, "qp", REAL_QUICKPSY, trials=QUICKPSY_TRIALS)
    assert set(missing_parts(ds)) == {"raster", "rates"}
    for p in session_figures(path, tmp_path / "qp"):
        check_png(p)
    summary = write_dataset(
        summarize_sessions([tmp_path / "ca1.nc", tmp_path / "qp.nc"]),
        tmp_path / "summary.nc",
        schema="neuroseq.summary.sessions/1",
        session_id="all",
        source_file=None,
        params={},
    )
    (png,) = summary_figures(summary, tmp_path / "summary")
    check_png(png)
    assert not list((tmp_path / "summary").glob(".*"))  # no temporary files left
    assert np.isfinite(plt.imread(png)).all()


def test_psychometric_figures(tmp_path):
    from neuroseq.psychometric.analysis import fit_lapse_models, summarize_psychometric
    from neuroseq.report.psychometric import psychometric_figures, psychometric_summary_figure

    rng = np.random.default_rng(0)
    s = rng.choice([-2.0, -1.0, 1.0, 2.0], 300)
    c = (rng.random(300) < 0.1 + 0.8 * (s > 0)).astype(int)
    cond = rng.choice(["a", "b"], 300)
    results = []
    for sid in ("s1", "s2"):
        ds = fit_lapse_models(s, c, cond, n_bootstrap=10, cv_folds=3)
        results.append(
            write_dataset(
                ds,
                tmp_path / f"{sid}.nc",
                schema="neuroseq.psychometric/1",
                session_id=sid,
                source_file=None,
                params={},
            )
        )
        for p in psychometric_figures(results[-1], tmp_path / sid):
            check_png(p)
    from neuroseq.io import read_dataset

    summary = summarize_psychometric([read_dataset(p) for p in results])
    assert summary.winner.values.tolist() == [summary.winner.values[0]] * 2
    path = write_dataset(
        summary,
        tmp_path / "summary.nc",
        schema="neuroseq.summary.psychometric/1",
        session_id="all",
        source_file=None,
        params={},
    )
    (png,) = psychometric_summary_figure(path, tmp_path / "summary")
    check_png(png)
