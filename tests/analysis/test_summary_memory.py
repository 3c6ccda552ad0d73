"""What ``summarize`` leaves to the garbage collector: nothing to collect, its state as found."""

from __future__ import annotations

import gc

import pytest

from cnnkit.analysis import summarize
from cnnkit.errors import ShapeError
from cnnkit.models import create_model
from tests.analysis.models import functional_net


def _models():
    return [
        (create_model("resnet18"), (3, 64, 64)),
        (create_model("mobilenet_v3_small"), (3, 64, 64)),
        (functional_net(), (3, 8, 8)),
    ]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_summary_makes_no_reference_cycles(mode):
    """Its objects are freed by reference counting alone, so moving them to the oldest
    generation (summary._collector_paused) keeps no garbage alive."""
    for model, shape in _models():
        summarize(model, shape, mode=mode)  # first calls fill lazy caches
        gc.collect()
        summary = summarize(model, shape, mode=mode)
        assert summary.total.macs > 0
        del summary
        assert gc.collect() == 0, type(model).__name__


def test_the_collector_is_left_as_found():
    model, shape = _models()[2]
    frozen = [object() for _ in range(3)]  # a caller's own frozen objects (pre-fork servers)
    was_enabled = gc.isenabled()
    try:
        gc.disable()
        summarize(model, shape)
        assert not gc.isenabled() and gc.get_freeze_count() == 0
        gc.enable()
        summarize(model, shape)
        assert gc.isenabled() and gc.get_freeze_count() == 0
        gc.freeze()
        count = gc.get_freeze_count()
        summarize(model, shape)
        assert gc.isenabled() and gc.get_freeze_count() == count  # theirs stay frozen
        with pytest.raises(ShapeError):  # refused: restored as found too
            summarize(create_model("lenet5"), (1, 4, 4))
        assert gc.isenabled() and gc.get_freeze_count() == count
    finally:
        gc.unfreeze()
        gc.enable() if was_enabled else gc.disable()
    assert frozen


def test_a_summary_leaves_no_young_objects_to_traverse():
    """The summary's objects are in the oldest generation, not the young one."""
    model, shape = _models()[0]
    summarize(model, shape)
    gc.collect()
    summary = summarize(model, shape)
    young = {id(o) for o in gc.get_objects(generation=0)}
    assert id(summary) not in young and id(summary.graph) not in young
    assert id(summary) in {id(o) for o in gc.get_objects(generation=2)}
