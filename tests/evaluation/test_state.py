"""EvalState: the merge of live states (which replaced fastloss.dask's merge of hex
strings) gives the whole pass's result in any order, leaves merge_states' inputs alone,
survives pickling exactly and counts groups across states."""

import itertools
import pickle

import numpy as np
import pytest

from fastloss.dask import merge_states
from fastloss.evaluation import evaluate
from fastloss.evaluation.chunks import Chunk
from fastloss.evaluation.driver import run_config
from fastloss.evaluation.evaluator import Evaluator
from fastloss.evaluation.readers import InputError
from fastloss.evaluation.state import EvalState
from fastloss.losses.registry import loss_specs

SCE = "sparse_categorical_cross_entropy"
N, C = 3000, 6


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(21)
    x = (r.standard_normal((N, C)) * 3).astype(np.float32)
    x[17, 2] = np.nan
    y = r.integers(0, C, N)
    y[40] = C + 1  # a bad row, skipped and counted
    w = r.uniform(0, 2, N)
    # each range of the tests holds other groups, so their codes differ between states
    g = np.array(["b", "a", "c", "d"])[r.integers(0, 4, N)]
    g[:1024] = np.array(["b", "d"])[r.integers(0, 2, 1024)]
    g[1024:2048] = np.array(["a", "c", "d"])[r.integers(0, 3, 1024)]
    return x, y, w, g


def _evaluator(specs, max_groups=100):
    return Evaluator(specs, tail=(C,), label_tail=(), on_bad_row="skip", sum_tolerance=1e-3,
                     per_class=True, diagnostics=True, max_groups=max_groups,
                     num_classes=None)


def _state(specs, data, a, b, max_groups=100):
    x, y, w, g = data
    ev = _evaluator(specs, max_groups)
    ev.process(Chunk(a, b, pred=x[a:b], label=y[a:b], weight=w[a:b], group=g[a:b]))
    return ev.state


def _document(specs, state):
    ev = _evaluator(specs)
    ev.state = state
    d = ev.result({}, run_config(specs, None, None, ev)).to_dict()
    d.pop("inputs")
    return d


def test_merge_in_any_order_is_the_whole_pass(data):
    specs = loss_specs(SCE, {"from_logits": True})
    x, y, w, g = data
    want = evaluate(x, labels=y, weights=w, groups=g, loss=SCE, from_logits=True,
                    on_bad_row="skip").to_dict()
    want.pop("inputs")
    bounds = [(0, 1024), (1024, 2048), (2048, N)]  # whole segments of 256 rows
    for order in itertools.permutations(range(3)):
        parts = [_state(specs, data, *bounds[i]) for i in order]
        merged = parts[0]
        for p in parts[1:]:
            merged = merged.merge(p)
        assert _document(specs, merged) == want, order


def test_merge_states_leaves_its_inputs_alone(data):
    specs = loss_specs(SCE, {"from_logits": True})
    a, b = _state(specs, data, 0, 1024), _state(specs, data, 1024, 2048)
    da, db = a.to_dict(), b.to_dict()
    m = merge_states(a, b)
    assert m is not a and m is not b
    assert a.to_dict() == da and b.to_dict() == db
    assert m.next_row == 2048 and m.first_row == 0
    assert merge_states(None, b) is b and merge_states(a, None) is a
    # saved states (dicts, as fastloss.dask.merge_states took before EvalState) still merge
    assert merge_states(da, db) == m.to_dict()
    assert merge_states(da, b) == m.to_dict()


def test_pickle_and_dict_round_trips_are_exact(data):
    specs = loss_specs([SCE, "categorical_cross_entropy"], {"from_logits": True})
    st = _state(specs, data, 0, N)
    d = st.to_dict()
    assert pickle.loads(pickle.dumps(st)).to_dict() == d
    assert EvalState.from_dict(d).to_dict() == d
    assert st.copy().to_dict() == d
    with pytest.raises(ValueError, match="not a fastloss evaluate checkpoint"):
        EvalState.from_dict(dict(d, version=99))


def test_max_groups_counts_the_union(data):
    specs = loss_specs(SCE, {"from_logits": True})
    x, y, w, g = data
    g = g.copy()
    g[:1024] = "a"
    g[1024:2048] = "b"
    d = (x, y, w, g)
    a, b = _state(specs, d, 0, 1024, 1), _state(specs, d, 1024, 2048, 1)
    with pytest.raises(InputError, match="more than max_groups=1"):
        a.copy().merge(b, max_groups=1)
    assert a.copy().merge(b, max_groups=2).groups == ["a", "b"]
