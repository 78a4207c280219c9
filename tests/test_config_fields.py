"""config.FIELDS is the one table of a run's settings; the CLI reads its choices from the registries."""

from __future__ import annotations

import dataclasses

import pytest

from toyfdiv import divergences, optim, tasks
from toyfdiv.__main__ import build_parser
from toyfdiv.build import POLICIES
from toyfdiv.config import FIELDS, Config
from toyfdiv.training import ESTIMATORS, SAMPLED_OPTIONS, SCHEDULES


def test_every_config_field_has_one_row_in_order():
    assert list(FIELDS) == [f.name for f in dataclasses.fields(Config)]


def test_choices_come_from_the_registries():
    assert FIELDS["task"].choices == tuple(tasks.names())
    assert FIELDS["kind"].choices == tuple(tasks.TARGET_KINDS)
    assert FIELDS["policy"].choices == tuple(POLICIES)
    assert FIELDS["optimizer"].choices == tuple(optim.names())
    assert FIELDS["schedule"].choices == tuple(SCHEDULES)
    assert FIELDS["estimator"].choices == tuple(ESTIMATORS)
    assert FIELDS["divergence"].choices == tuple(divergences.names())
    assert set(FIELDS["estimator_options"].choices) == set(SAMPLED_OPTIONS) >= {"n", "baseline", "z"}


@pytest.mark.parametrize("name, bad, match", [("lr", 0.0, "lr=0.0 is out of range"), ("steps", -1, "steps=-1"),
                                              ("epsilon", 1.0, "epsilon=1.0"), ("optimizer", "lbfgs", "optimizer='lbfgs'")])
def test_a_field_row_checks_its_value(name, bad, match):
    with pytest.raises(ValueError, match=match):
        FIELDS[name].check(bad)
    with pytest.raises(ValueError, match=match):
        Config(**{name: bad})


def test_cli_sample_size_is_n_and_samples_is_its_deprecated_alias():
    parser = build_parser()
    assert parser.parse_args(["compare", "--n", "8"]).n == 8
    assert parser.parse_args(["compare", "--samples", "8"]).n == 8
    for sub in (["compare"], ["sweep"]):
        action = next(a for a in parser._subparsers._group_actions[0].choices[sub[0]]._actions if a.dest == "optimizer")
        assert list(action.choices) == optim.names()
