"""Result objects: to_dict() gives the plain numbers results.json needs."""

import json

import numpy as np
import pytest

from manylift._core.atomic import write_json
from manylift.evaluation import (
    auuc,
    blp_test,
    ipw_scores,
    multiarm_policy_value,
    policy_value,
    rank_metric,
    uplift_at_k,
)


def test_to_dict_is_json_ready(simulate, tmp_path):
    sim = simulate(600, seed=1)
    scores = ipw_scores(sim.y, sim.w, sim.e)
    rank = rank_metric(scores, sim.tau, n_bootstrap=20)
    blp = blp_test(sim.y, sim.w, sim.e, sim.tau)
    value = policy_value(sim.y, sim.w, sim.e, sim.tau > 0.5, n_bootstrap=20, versus=np.ones(600))
    multi = multiarm_policy_value(
        sim.y, sim.w, np.column_stack([1 - sim.e, sim.e]), sim.tau > 0.5, n_bootstrap=20
    )
    area = auuc(sim.y, sim.w, sim.tau, n_bootstrap=20)
    at_k = uplift_at_k(sim.y, sim.w, sim.tau)
    payload = {
        "schema_version": 1,
        "validation": {"autoc": rank.to_dict(), "blp_slope": blp.to_dict()["slope"]},
        "policy": {"model": value.to_dict(), "multi": multi.to_dict()},
        "uplift": {"auuc": area.to_dict(), "at_k": at_k.to_dict()},
    }
    write_json(tmp_path / "results.json", payload)
    back = json.loads((tmp_path / "results.json").read_text())
    autoc = back["validation"]["autoc"]
    assert set(autoc) >= {"estimate", "se", "lo", "hi"}
    assert autoc["estimate"] == pytest.approx(rank.estimate)
    assert autoc["lo"] < autoc["estimate"] < autoc["hi"]
    assert back["validation"]["blp_slope"]["estimate"] == pytest.approx(blp.slope)
    assert back["validation"]["blp_slope"]["se"] == pytest.approx(blp.slope_std_err)
    model = back["policy"]["model"]
    assert model["value"] == pytest.approx(value.estimate)
    assert model["difference"] == pytest.approx(value.difference)
    assert back["policy"]["multi"]["arm_shares"] == pytest.approx(list(multi.arm_shares))
    assert back["uplift"]["at_k"]["n_treated"] == at_k.n_treated
