"""Hardware target profiles: shipped ones load and cite their figures; bad ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurosheet.core.errors import NeurosheetError
from neurosheet.hardware.targets import Target, list_targets, load_target, weight_qmax

REQUIRED = {"loihi", "loihi2", "truenorth", "spinnaker", "spinnaker2", "brainscales2", "akida",
            "dynapse2", "xylo", "speck"}

GOOD = """
title = "Test chip"
kind = "digital"
recurrent = true
neurons_per_core = { value = 4, source = "a", status = "verified" }
cores_per_chip = { value = 2, source = "a", status = "secondary" }
weight_bits = { value = 8, source = "a", status = "unverified" }

[sources]
a = "a datasheet"
"""


def test_all_required_targets_ship_and_load():
    assert REQUIRED <= set(list_targets())
    for name in list_targets():
        t = load_target(name)
        assert t.name == name
        assert t.neurons_per_core.value >= 1 and t.cores_per_chip.value >= 1
        for field, fig in t.figures().items():
            # every figure names a full citation and a status mark
            assert t.citation(field).endswith(f"[{fig.status}]")
            assert fig.value is not None or fig.status == "unknown"


def test_published_figures_match_the_spec():
    loihi = load_target("loihi")
    assert loihi.neurons_per_core.value == 1024
    assert loihi.max_in_axons_per_core.value == 4096
    assert loihi.synapse_memory.bits_per_core.value == 1_048_576
    assert load_target("truenorth").max_fan_out_cores.value == 1
    assert load_target("dynapse2").max_fan_in.value == 64
    assert load_target("xylo").max_fan_out.value == 64
    assert not load_target("akida").recurrent and not load_target("speck").recurrent


def test_loihi_memory_model_matches_worked_example():
    # deploy-reference 5.2: 8-bit weights + 10 index bits, 26 synapses/axon -> 512 bits,
    # 95 synapses/axon -> two blocks, 1,792 bits.
    mem = load_target("loihi").synapse_memory
    assert mem.index_bits(np.array([1024]))[0] == 10
    assert mem.index_bits(np.array([4]))[0] == 6
    bits = mem.axon_bits(np.array([26, 95]), np.array([18, 18]))
    assert bits.tolist() == [512, 1792]


def test_weight_qmax():
    assert weight_qmax(8) == 127
    assert weight_qmax(6, sign_extra=True) == 63
    assert weight_qmax(1) == 1


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mychip.toml"
    path.write_text(text)
    return path


def test_user_profile_by_path(tmp_path):
    t = load_target(_write(tmp_path, GOOD))
    assert isinstance(t, Target) and t.name == "mychip" and t.neurons_per_chip == 8


@pytest.mark.parametrize("bad, field", [
    (GOOD.replace('value = 4, source', 'value = "four", source'), "neurons_per_core"),
    (GOOD.replace('source = "a", status = "secondary"', 'source = "zz", status = "secondary"'),
     "cores_per_chip.source"),
    (GOOD.replace('status = "unverified"', 'status = "maybe"'), "weight_bits.status"),
    (GOOD.replace('title = "Test chip"', 'title = "Test chip"\nneuron_per_core = 3'),
     "neuron_per_core"),
    (GOOD.replace('value = 2, source', 'source'), "cores_per_chip"),
])
def test_malformed_profile_names_file_and_field(tmp_path, bad, field):
    path = _write(tmp_path, bad)
    with pytest.raises(NeurosheetError) as err:
        load_target(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg and field in msg


def test_invalid_toml_names_file(tmp_path):
    path = _write(tmp_path, "title = ")
    with pytest.raises(NeurosheetError, match=r"mychip\.toml"):
        load_target(path)


def test_unknown_target_suggests_closest():
    with pytest.raises(NeurosheetError, match="did you mean: loihi"):
        load_target("lohi")
