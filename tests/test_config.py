import pytest
import yaml

from helpers import REPO
from neuroseq.config import (
    config_schema,
    ingest_options,
    load_config,
    session_path,
    validate_config,
)
from neuroseq.errors import InputError


def test_defaults_are_filled_in_every_section():
    config = validate_config({})
    assert config["ingest"]["bin_size_s"] == 0.02
    assert config["ingest"]["trials"]["choice_coding"] == {
        "right": [1],
        "left": [0],
        "no_response": [-1],
    }
    assert config["ingest"]["behavior"]["resample"] == "auto"
    assert config["demo"]["n_sessions"] == 3


def test_the_demo_config_is_valid_and_the_workflow_uses_the_same_schema():
    config = load_config(REPO / "config" / "config.yaml")
    assert sorted(config["sessions"]) == ["demo_01", "demo_02", "demo_03"]
    workflow_schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert yaml.safe_load(workflow_schema.read_text()) == config_schema()


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"ingest": {"bin_size_s": 0}}, r"config key ingest\.bin_size_s: expected a number > 0"),
        ({"ingest": {"behaviour": {}}}, r"config key ingest: expected only the keys behavior, "),
        (
            {"ingest": {"behavior": {"resample": "cubic"}}},
            r"ingest\.behavior\.resample: expected one of \['auto', 'mean', 'linear'\]; "
            r"found 'cubic'",
        ),
        (
            {"sessions": {"bad id": "x.nwb"}},
            r"config key sessions: .*found 'bad id' does not match",
        ),
        ({"sessions": {"s1": {"ingest": {}}}}, r"config key sessions\.s1"),
    ],
)
def test_invalid_configs_name_the_key(config, pattern):
    with pytest.raises(InputError, match=pattern):
        validate_config(config)


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: config file: expected an existing"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest: [unclosed")
    with pytest.raises(InputError, match=r"bad\.yaml: config file: expected valid YAML"):
        load_config(bad)


def test_session_overrides_merge_into_ingest_and_are_validated():
    config = validate_config(
        {
            "ingest": {"bin_size_s": 0.05, "trials": {"columns": {"stimulus": "contrast"}}},
            "sessions": {
                "a": "a.nwb",
                "b": {"path": "b.nwb", "ingest": {"trials": {"columns": {"choice": "resp"}}}},
                "c": {"path": "c.nwb", "ingest": {"bin_size_s": "fast"}},
            },
        }
    )
    assert session_path(config, "a") == "a.nwb"
    assert session_path(config, "b") == "b.nwb"
    b = ingest_options(config, "b")
    assert b["trials"]["columns"]["choice"] == "resp"
    assert b["trials"]["columns"]["stimulus"] == "contrast"  # the rest is kept
    assert b["bin_size_s"] == 0.05
    assert ingest_options(config, "a")["trials"]["columns"]["choice"] == "choice"
    with pytest.raises(
        InputError,
        match=r"config sessions\.c\.ingest: config key "
        r"ingest\.bin_size_s: expected type number; found 'fast'",
    ):
        ingest_options(config, "c")
    with pytest.raises(InputError, match=r"expected a session id among: a, b, c; found 'd'"):
        session_path(config, "d")
