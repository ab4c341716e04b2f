"""fit_lapse_models / run_psychometric: outputs, real data, an independent fitter."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit, ndtr

from helpers import IBL_TRIALS, QUICKPSY_TRIALS, REAL_IBL, REAL_QUICKPSY, write_nwb
from neuroseq import schema
from neuroseq.cli import main
from neuroseq.errors import InputError
from neuroseq.io import ingest_file, read_dataset
from neuroseq.psychometric import MODELS, PARAMS, LapseModel
from neuroseq.psychometric.analysis import fit_lapse_models, run_psychometric


def independent_nll(s, c):
    """4-parameter psychometric ML fit by Nelder-Mead on trials, unconstrained transforms."""
    span = s.max() - s.min()

    def nll(x):
        mu, log_sigma, a, b = x
        g, lam = 0.5 * expit(a), 0.5 * expit(b)
        p = g + (1 - g - lam) * ndtr((s - mu) / np.exp(log_sigma))
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return -np.sum(c * np.log(p) + (1 - c) * np.log(1 - p))

    best = np.inf
    for mu0 in (0.0, s.mean()):
        for scale in (0.05, 0.2, 0.5):
            for lapse in (-4.0, -1.0):
                res = minimize(
                    nll,
                    [mu0, np.log(scale * span), lapse, lapse],
                    method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000},
                )
                best = min(best, res.fun)
    return best


def ibl_sessions():
    raw = pd.read_csv(REAL_IBL)
    return sorted(raw.session_date.unique())


@pytest.mark.parametrize("date", ["2020-08-21", "2020-08-26", "2020-08-28", "2020-09-03"])
def test_real_ibl_sessions_agree_with_an_independent_fitter(real_data, date):
    ds = ingest_file(REAL_IBL, trials={**IBL_TRIALS, "where": {"session_date": date}})
    ok = ds.choice.values >= 0
    s, c = ds.stimulus.values[ok], ds.choice.values[ok]
    ours = LapseModel(random_state=0).fit(s, c)
    assert ours.nll_ == pytest.approx(independent_nll(s, c), abs=1e-3)
    assert not ours.at_bound_["all"]["sigma"]  # the slope never ends on a bound


def test_real_quickpsy_every_model_with_shared_parameters(real_data):
    ds = ingest_file(
        REAL_QUICKPSY, trials={**QUICKPSY_TRIALS, "where": {"participant": "Participant1"}}
    )
    out = run_psychometric(ds, share={"sigma": "all"}, n_bootstrap=20, cv_folds=3)
    assert list(out.model.values) == list(MODELS)
    assert list(out.condition.values) == ["cond1", "cond2"]
    sigma = out.params.sel(param="sigma")
    assert (sigma.sel(condition="cond1") == sigma.sel(condition="cond2")).all()
    assert int(out.n_trials.sum()) == int((ds.choice >= 0).sum())
    s, c = ds.stimulus.values, ds.choice.values
    for cname in ("cond1", "cond2"):
        sel = ds.condition.values == cname
        single = LapseModel(random_state=0).fit(s[sel], c[sel])
        assert single.nll_ == pytest.approx(independent_nll(s[sel], c[sel]), abs=1e-3)


def test_every_ibl_session_fits_every_model(real_data):
    raw = pd.read_csv(REAL_IBL)
    for date in ibl_sessions():
        ds = ingest_file(REAL_IBL, trials={**IBL_TRIALS, "where": {"session_date": date}})
        out = run_psychometric(ds, n_bootstrap=10, cv_folds=3, n_starts=3)
        assert np.isfinite(out.nll).all()
        dropped = json.loads(out.attrs["dropped_conditions"])
        kept = int(out.n_trials.sum()) + sum(dropped.values())
        assert kept == int(((raw.session_date == date) & (raw.choice != 0)).sum())
        if date >= "2020-08-28":  # biased sessions: the three probabilityLeft blocks
            assert list(out.condition.values) == ["0.2", "0.5", "0.8"]


def synthetic_session(n=400, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.choice([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], n)
    cond = rng.choice(["visual", "auditory"], n)
    c = (rng.random(n) < 0.05 + 0.9 * ndtr(s / 0.8)).astype(np.int8)
    c[:7] = -1
    return s, c, cond


def test_output_has_every_variable_and_passes_its_schema(tmp_path):
    s, c, cond = synthetic_session()
    ds = fit_lapse_models(s, c, cond, n_bootstrap=20, cv_folds=3)
    assert ds.params.dims == ("model", "condition", "param")
    assert list(ds.param.values) == list(PARAMS)
    for model in MODELS:
        own = set(MODELS[model].free) | {"gamma", "lambda", "gamma_plus_lambda", "lapse_asymmetry"}
        values = ds.params.sel(model=model, condition="visual")
        assert set(ds.param.values[values.notnull().values]) >= own
    assert int(ds.n_no_response.sum()) == 7
    assert float(ds.delta_aic.min()) == 0.0
    assert ds.attrs["winner_aic"] == str(ds.model.values[int(np.argmin(ds.aic.values))])
    assert ((ds.gof_p > 0) & (ds.gof_p <= 1)).all()
    lo, hi = ds.params_ci.sel(bound="lower"), ds.params_ci.sel(bound="upper")
    assert bool((lo <= hi).where(lo.notnull(), True).all())
    assert bool((ds.cv_loglik < 0).all())
    ds.attrs.update(
        dict.fromkeys(schema.PROVENANCE, ""), neuroseq_schema="neuroseq.psychometric/1"
    )
    schema.validate(ds)


def test_too_few_trials_is_an_error_and_small_conditions_are_dropped_and_recorded():
    s, c, cond = synthetic_session(20)
    with pytest.raises(InputError, match=r"expected at least 30 trials with a response"):
        fit_lapse_models(s, c, cond, n_bootstrap=10)
    s, c, cond = synthetic_session(400)
    cond = cond.astype(object)
    cond[:3] = "opto"  # a condition whose trials all lack a response
    c[:3] = -1
    cond[10:15] = "tiny"  # and one too small to fit
    ds = fit_lapse_models(s, c, cond, n_bootstrap=10, cv_folds=3)
    assert json.loads(ds.attrs["dropped_conditions"]) == {"opto": 0, "tiny": 5}
    assert list(ds.condition.values) == ["auditory", "visual"]


def test_cli_writes_psychometric_nc_and_refuses_sessions_without_choices(tmp_path):
    nwb = tmp_path / "s.nwb"
    rng = np.random.default_rng(0)
    stim = rng.choice([-2.0, -1.0, 1.0, 2.0], 80)
    write_nwb(
        nwb,
        n_trials=80,
        duration=200.0,
        stimulus=list(stim),
        choices=list((rng.random(80) < ndtr(stim)).astype(int)),
    )
    session = tmp_path / "session.nc"
    assert main(["ingest", str(nwb), "-o", str(session)]) == 0
    config = tmp_path / "c.yaml"
    config.write_text(
        "psychometric: {n_bootstrap: 10, cv_folds: 3, models: [psychometric, fixed_error]}\n"
    )
    out = tmp_path / "psychometric.nc"
    assert main(["psychometric", str(session), "-o", str(out), "-c", str(config)]) == 0
    ds = read_dataset(out, schema="neuroseq.psychometric/1")
    assert list(ds.model.values) == ["psychometric", "fixed_error"]
    assert ds.attrs["session_id"] == "s"  # carried from the NWB file through ingest
    summary = tmp_path / "summary.nc"
    assert main(["summarize", str(out), "-o", str(summary)]) == 0
    assert read_dataset(summary).winner.dims == ("session",)
    lap = tmp_path / "laps.nc"
    assert main(["ingest", str(nwb), "-o", str(lap), "-c", str(_no_choice(tmp_path))]) == 0
    assert main(["psychometric", str(lap), "-o", str(tmp_path / "x.nc")]) == 2
    assert not (tmp_path / "x.nc").exists()


def _no_choice(tmp_path):
    path = tmp_path / "nochoice.yaml"
    path.write_text("ingest: {trials: {columns: {stimulus: null, choice: null}}}\n")
    return path


def test_folds_are_dealt_evenly_within_each_condition_and_stimulus():
    from neuroseq.psychometric.analysis import stratified_folds

    rng = np.random.default_rng(3)
    cond = rng.choice(["a", "b", "c"], 600)
    s = rng.choice([-2.0, -1.0, 1.0, 2.0], 600)
    folds = stratified_folds(cond, s, 5, np.random.default_rng(0))
    for key in set(zip(cond, s, strict=True)):
        sel = (cond == key[0]) & (s == key[1])
        per_fold = np.bincount(folds[sel], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    again = stratified_folds(cond, s, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(folds, again)
