"""LightGBM / XGBoost custom objectives reproduce the built-in objectives' models."""

import numpy as np
import pytest

from fastloss import objectives
from testutil import require


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((600, 5))
    logit = X[:, 0] - 0.5 * X[:, 1] + 0.3 * X[:, 2] ** 2
    yb = (rng.random(600) < 1 / (1 + np.exp(-logit))).astype(float)
    ym = np.digitize(logit + 0.5 * rng.standard_normal(600), [-0.5, 0.7]).astype(float)
    w = rng.uniform(0.5, 2, 600)
    return X, yb, ym, w


def test_lightgbm_binary_and_multiclass_match_builtin(data):
    lgb = require("lightgbm")
    X, yb, ym, w = data
    common = dict(learning_rate=0.3, num_leaves=7, min_data_in_leaf=10, verbose=-1,
                  boost_from_average=False, deterministic=True, num_threads=1)
    for y, builtin, custom, extra in [
        (yb, "binary", objectives.lightgbm_binary_logistic, {}),
        (ym, "multiclass", objectives.lightgbm_multiclass_softmax, {"num_class": 3}),
    ]:
        ref = lgb.train({**common, **extra, "objective": builtin},
                        lgb.Dataset(X, y, weight=w), num_boost_round=15)
        ours = lgb.train({**common, **extra, "objective": custom},
                         lgb.Dataset(X, y, weight=w), num_boost_round=15)
        r = ref.predict(X, raw_score=True)
        o = ours.predict(X, raw_score=True)
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-6, err_msg=builtin)


def test_xgboost_binary_and_multiclass_match_builtin(data):
    xgb = require("xgboost")
    X, yb, ym, w = data
    common = dict(eta=0.3, max_depth=3, tree_method="hist", nthread=1)
    for y, builtin, custom, extra in [
        (yb, "binary:logistic", objectives.xgboost_binary_logistic, {}),
        (ym, "multi:softprob", objectives.xgboost_multiclass_softmax, {"num_class": 3}),
    ]:
        k = extra.get("num_class", 1)
        margin = np.zeros((X.shape[0], k)) if k > 1 else np.zeros(X.shape[0])
        d_ref = xgb.DMatrix(X, y, weight=w, base_margin=margin)
        d_our = xgb.DMatrix(X, y, weight=w, base_margin=margin)
        ref = xgb.train({**common, **extra, "objective": builtin}, d_ref, num_boost_round=15)
        ours = xgb.train({**common, **extra, "disable_default_eval_metric": 1}, d_our,
                         num_boost_round=15, obj=custom)
        d_pred = xgb.DMatrix(X, base_margin=margin)
        r = ref.predict(d_pred, output_margin=True)
        o = ours.predict(d_pred, output_margin=True)
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-5, err_msg=builtin)


def test_sklearn_api_form_and_bad_input():
    y = np.array([0.0, 1.0, 1.0])
    p = np.array([0.2, -1.0, 3.0])
    g, h = objectives.lightgbm_binary_logistic(y, p)
    s = 1 / (1 + np.exp(-p))
    np.testing.assert_allclose(g, s - y, rtol=1e-14)
    np.testing.assert_allclose(h, s * (1 - s), rtol=1e-14)
    with pytest.raises(ValueError, match="labels have 2 rows but preds have 3"):
        objectives.lightgbm_binary_logistic(y[:2], p)
    with pytest.raises(ValueError, match=r"y_true\[1\]=5 is out of range \[0, 3\)"):
        objectives.xgboost_multiclass_softmax(np.array([0.0, 5.0]), np.zeros((2, 3)))
