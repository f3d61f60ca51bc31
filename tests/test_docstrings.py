"""Every public estimator method documents its Parameters and Returns
(numpydoc), and every public class and function has an Examples section,
which the doctest collection (``--doctest-modules``) then runs."""

import inspect

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import skasc
import skasc.complexity
import skasc.datasets
import skasc.metrics
import skasc.model_selection
import skasc.nn

METHODS = ("fit", "transform", "fit_transform", "predict", "predict_proba", "predict_logits",
           "decision_function", "score")

MODULES = [skasc, skasc.complexity, skasc.datasets, skasc.metrics, skasc.model_selection, skasc.nn]
PUBLIC = list({id(obj): obj for mod in MODULES for name in mod.__all__ if not name.startswith("__")
               for obj in [getattr(mod, name)]}.values())
# OnnxClassifier predicts and scores like the estimators without being one (no fit)
ESTIMATORS = [obj for obj in PUBLIC if inspect.isclass(obj)
              and (hasattr(obj, "get_params") or hasattr(obj, "predict_proba"))]


def _methods():
    for cls in ESTIMATORS:
        for name in METHODS:
            if hasattr(cls, name):
                yield pytest.param(cls, name, id=f"{cls.__name__}.{name}")


@pytest.mark.parametrize(("cls", "method"), list(_methods()))
def test_public_methods_document_parameters_and_returns(cls, method):
    doc = FunctionDoc(getattr(cls, method))
    signature = inspect.signature(getattr(cls, method)).parameters.values()
    params = [p.name for p in signature if p.name != "self"
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    documented = {name.strip() for p in doc["Parameters"] for name in p.name.split(",")}
    missing = [p for p in params if p not in documented]
    assert not missing, f"{cls.__name__}.{method}: parameters not documented: {missing}"
    assert doc["Returns"] or doc["Yields"], f"{cls.__name__}.{method}: no Returns section"


@pytest.mark.parametrize("obj", [o for o in PUBLIC if inspect.isclass(o) or inspect.isfunction(o)],
                         ids=lambda o: o.__name__)
def test_public_objects_have_examples(obj):
    doc = ClassDoc(obj, config={"show_class_members": False}) if inspect.isclass(obj) else FunctionDoc(obj)
    assert any(line.lstrip().startswith(">>> ") for line in doc["Examples"]), \
        f"{obj.__name__}: no Examples section with code"
