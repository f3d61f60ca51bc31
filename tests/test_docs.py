"""The documentation builds without a single warning (Sphinx -W), offline.

Same command as documented in docs/conf.py and the README, but into a
temporary folder, so the source tree is left untouched.
"""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

pytestmark = pytest.mark.slow


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"Sphinx build failed or warned:\n{proc.stdout}\n{proc.stderr}"
    for page in ("index", "api", "guide/method", "guide/pipeline", "guide/complexity",
                 "guide/scaling", "guide/reproduce", "guide/own_data", "guide/generalization"):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "api.html").read_text(encoding="utf-8")
    # the reference really comes from the docstrings
    for name in ("skasc.DwsCNNClassifier", "skasc.DistilledStudent", "skasc.LogMel", "skasc.FeatureSet",
                 "skasc.nn.DwsCNN", "skasc.complexity.complexity_report", "skasc.datasets.load_tau22",
                 "skasc.metrics.device_report", "skasc.reproduce.reproduce"):
        assert f'id="{name}"' in api, name
    assert "29,591,778" in (out / "guide" / "complexity.html").read_text(encoding="utf-8")
    # nothing fetched at build time
    assert "sphinx.ext.intersphinx" not in (DOCS / "conf.py").read_text()
