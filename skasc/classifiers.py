"""skorch-based classifiers: the paper's network, its teacher ensemble and
the distilled student, with the scikit-learn classifier API.

The public home of the three classes; each is defined in a module of its
own, on the shared base of :mod:`skasc._base` and the prediction contract
of :mod:`skasc._predict`:

* :class:`DwsCNNClassifier` (``skasc._dwscnn_classifier``): the paper's
  depthwise-separable CNN;
* :class:`EnsembleTeacher` (``skasc._ensemble``): the fused teacher, an
  average of several classifiers;
* :class:`DistilledStudent` (``skasc._distillation``): the student trained
  by knowledge distillation from a teacher.

Examples
--------
>>> from skasc.classifiers import DwsCNNClassifier, EnsembleTeacher, DistilledStudent
>>> DistilledStudent().max_epochs, DwsCNNClassifier().max_epochs
(600, 200)
"""

from ._distillation import DistilledStudent
from ._dwscnn_classifier import DwsCNNClassifier
from ._ensemble import EnsembleTeacher

__all__ = ["DwsCNNClassifier", "EnsembleTeacher", "DistilledStudent"]
