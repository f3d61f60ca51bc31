"""Sphinx configuration of the skasc documentation.

Build (from the repository root)::

    python -m sphinx -W -b html docs docs/_build/html

Nothing is downloaded at build time: no intersphinx inventories, no remote
images.  Cross-references to scikit-learn, numpy or torch objects in the
docstrings therefore render as plain code, not as links.
"""

import os
import sys

# the package is normally installed (``pip install -e .``); the path keeps
# the build working from a bare checkout too
sys.path.insert(0, os.path.abspath(".."))

import skasc  # noqa: E402

project = "skasc"
author = "the skasc developers"
copyright = "the skasc developers, BSD-3-Clause"
release = skasc.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

# -- autodoc / autosummary -------------------------------------------------
# The API page lists objects with autosummary tables *without* :toctree:, and
# documents them with autoclass/autofunction on the same page, so the build
# writes no generated stub files into the source tree.
autosummary_generate = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc sections carry the types
# torch and skorch are real dependencies and installed; nothing is mocked.

# -- numpydoc ---------------------------------------------------------------
numpydoc_show_class_members = False  # methods are listed by autoclass :members:
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- general ----------------------------------------------------------------
templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
pygments_style = "sphinx"
# no intersphinx: the build must work offline, and -W turns a failed fetch
# into an error
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Low-complexity acoustic scene classification, scikit-learn style"}
html_show_sourcelink = False
