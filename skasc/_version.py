"""The version of skasc, in a module of its own.

Modules inside the package (the ONNX producer fields, for one) read it from
here rather than from :mod:`skasc`, whose ``__init__`` imports them: an
import of the package from one of its modules would be a loop.
"""

__version__ = "0.1.0"
