"""One conformance suite every registered backend passes (Nengo's backend-test pattern).

Parametrized over :data:`neurosheet.spiking.registry.REGISTRY`: a backend added to the registry
is tested here without a line of new test code.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.spiking.conversion import ConversionConfig, convert, decisions, rate_logits
from neurosheet.spiking.demo import random_circuit, random_inputs
from neurosheet.spiking.registry import REGISTRY, backend_names, create_backend, get_spec

# options that make each backend fast and exact enough for a unit test
FAST = {"brian2": {"target": "numpy"}, "snntorch": {"device": "cpu"}, "rate": {"device": "cpu"}}
CONVERSION = ConversionConfig(substeps=50, rate_hz=1000.0, tau_mem_ms=50.0, dtype="float64",
                              gate="off")


@pytest.fixture(scope="module")
def circuit():
    return random_circuit(64, density=0.1, seed=1)


@pytest.fixture(scope="module")
def inputs(circuit):
    return random_inputs(8, 4, circuit.n_inputs, seed=2)


def _logits(name: str, circuit, inputs, run=None) -> tuple[np.ndarray, object]:
    backend = create_backend(name, run, **FAST.get(name, {}))
    if get_spec(name).kind == "rate":
        return backend.logits_fn(circuit)(inputs), None
    sc = convert(circuit, inputs, CONVERSION)
    result = backend.run(sc, inputs)
    return result.logits, (result, sc)


@pytest.mark.parametrize("name", backend_names())
def test_declared_options_are_constructor_keywords(name):
    spec = get_spec(name)
    params = inspect.signature(spec.load().__init__).parameters
    for option in spec.options:
        assert option.name in params, f"{name} declares {option.name!r} but does not take it"


@pytest.mark.parametrize("name", backend_names())
def test_unknown_option_is_refused(name):
    with pytest.raises(NeurosheetError, match="no option"):
        create_backend(name, no_such_option=1)


@pytest.mark.parametrize("name", backend_names())
def test_logits_have_the_readout_shape_and_are_finite(name, circuit, inputs):
    y, _ = _logits(name, circuit, inputs)
    assert y.shape == (inputs.shape[0], inputs.shape[1], circuit.n_outputs)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("name", backend_names())
def test_same_inputs_give_the_same_logits(name, circuit, inputs):
    a, _ = _logits(name, circuit, inputs)
    b, _ = _logits(name, circuit, inputs)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", backend_names())
def test_decisions_follow_the_rate_network(name, circuit, inputs):
    y, _ = _logits(name, circuit, inputs)
    y_rate, _ = rate_logits(circuit, inputs, CONVERSION.substeps)
    assert (decisions(y_rate[2:]) == decisions(y[2:])).mean() >= 0.75


@pytest.mark.parametrize("name", backend_names())
def test_builds_from_a_run_directory(name, circuit, inputs, tmp_path):
    y, _ = _logits(name, circuit, inputs, run=tmp_path)
    assert y.shape[-1] == circuit.n_outputs


@pytest.mark.parametrize("name", backend_names("spiking"))
def test_spiking_backends_count_spikes_on_the_graphs_edges(name, circuit, inputs):
    _, (result, sc) = _logits(name, circuit, inputs)
    t, b, _ = inputs.shape
    assert result.counts.shape == (t, b, circuit.n)
    assert result.counts.min() >= 0 and result.total_spikes > 0
    post, pre = sc.edges()
    g = circuit.graph
    assert len(post) == g.synapses
    dense = np.zeros((g.n, g.n), bool)
    dense[post, pre] = True
    ref = np.zeros((g.n, g.n), bool)
    gp, gq = g.edges()
    ref[gp, gq] = True
    np.testing.assert_array_equal(dense, ref)


def test_registry_names_every_kind():
    assert "rate" in backend_names("rate")
    assert set(backend_names("spiking")) >= {"snntorch", "brian2"}
    assert all(s.name == n for n, s in REGISTRY.items())
