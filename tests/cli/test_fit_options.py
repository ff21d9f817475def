"""`manylift fit` sampler options: --plain-gibbs turns off both redundant moves."""

import argparse

from manylift.cli._fit import add_sampler_options, spec_from_args


def _parse(argv):
    p = argparse.ArgumentParser()
    add_sampler_options(p)
    return p.parse_args(argv)


def test_default_sampler_has_both_moves_and_plain_gibbs_has_none():
    spec = spec_from_args(_parse([]))
    assert spec.expansion and spec.interweave
    plain = spec_from_args(_parse(["--plain-gibbs"]))
    assert not plain.expansion and not plain.interweave
    # the priors are the defaults either way
    assert plain.theta_prior_var == spec.theta_prior_var == 1000.0
