import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold

from skasc import DwsCNNClassifier
from skasc.model_selection import BudgetRefit, candidate_complexity


def test_candidate_complexity_matches_the_paper():
    assert candidate_complexity(18) == (31_260, 29_591_778)
    params, macs = candidate_complexity(19)
    assert macs > 30_000_000  # one channel more breaks the MAC limit


def test_budget_refit_picks_best_candidate_within_limits():
    rule = BudgetRefit()
    results = {"params": [{"clf__hidden": h} for h in (8, 18, 19, 64)],
               "mean_test_score": [0.30, 0.41, 0.44, 0.60]}
    assert rule(results) == 1
    assert [c["fits"] for c in rule.complexity_] == [True, True, False, False]
    # at int8 memory and a looser MAC budget, width 19 fits
    assert BudgetRefit(max_macs=33_000_000, dtype="int8")(results) == 2
    with pytest.raises(ValueError, match="no candidate fits"):
        BudgetRefit()({"params": [{"clf__hidden": 64}], "mean_test_score": [0.9]})
    with pytest.raises(ValueError, match="no parameter"):
        BudgetRefit()({"params": [{"hidden": 8}], "mean_test_score": [0.9]})


def test_budget_refit_in_grid_search():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = rng.normal(size=(60, 8, 12)).astype(np.float32)
    X[y == 1, :3] += 2
    search = GridSearchCV(DwsCNNClassifier(max_epochs=3, batch_size=16, random_state=0),
                          {"hidden": [4, 18, 32]}, cv=GroupKFold(2),
                          refit=BudgetRefit(param="hidden")).fit(X, y, groups=np.arange(60) // 2)
    # hidden=32 (34.5 M MACs at 1x256x51) is out of budget whatever it scores:
    # the best is the better of 4 and 18
    scores = search.cv_results_["mean_test_score"]
    expected = int(np.argmax(np.where([True, True, False], scores, -np.inf)))
    assert search.best_index_ == expected
    assert search.best_params_ == {"hidden": [4, 18, 32][expected]}
    assert search.best_estimator_.hidden == [4, 18, 32][expected]
