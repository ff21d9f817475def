"""No import circle in the package (the backends used to make one through check_finite),
and every backend satisfies the Backend protocol."""

from __future__ import annotations

import numpy as np
import pytest


def _cycles(graph) -> set[tuple[str, str]]:
    """Pairs (a, b) where a imports b directly and b reaches a again (lazy imports count)."""
    out = set()
    for mod in graph.modules:
        for imp in graph.find_modules_directly_imported_by(mod):
            if imp != mod and graph.chain_exists(importer=imp, imported=mod):
                out.add((mod, imp))
    return out


def test_no_import_circle_in_the_package():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("manylift")
    assert _cycles(graph) == set()
    # the check finds a circle when there is one (not vacuous)
    graph.add_import(importer="manylift.sampler.contract", imported="manylift.sampler.backends")
    assert ("manylift.sampler.contract", "manylift.sampler.backends") in _cycles(graph)


def test_backends_satisfy_the_protocol():
    pytest.importorskip("jax")
    import warnings

    from manylift.pooled.build import build_inputs
    from manylift.sampler.backends import NumpyBackend, get_backend
    from manylift.sampler.contract import Backend
    from manylift.sampler.gibbs_jax import JaxBackend
    from manylift.sampler.sharding import ShardedJaxBackend, make_mesh
    from manylift.sampler.state import ModelSpec
    from manylift.simulate.program import simulate_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, _ = simulate_program(30, 3, 4, rows_per_customer=3, mode="model", random_state=1)
        design = build_inputs(data, holdout=False).design
    backends = [NumpyBackend(design, ModelSpec(), 1), get_backend("numba", design, ModelSpec(), 1),
                JaxBackend(design, ModelSpec(), 1),
                ShardedJaxBackend(design, ModelSpec(), 1, mesh=make_mesh(1))]
    for b in backends:
        assert isinstance(b, Backend), type(b)
    assert not isinstance(np.zeros(1), Backend)
