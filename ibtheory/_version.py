"""The package version, defined here once.

``pyproject.toml`` reads it statically (``[tool.setuptools.dynamic] version = {attr = ...}``, no import), so the wheel's
metadata, ``ibtheory.__version__``, ``ibtheory.store.__version__`` (the ``ibtheory_version`` attribute of every saved
file) and ``CITATION.cff`` all carry this one string (``tests/test_packaging.py`` checks that they agree).  A PEP 440
version: ``0.2.0.dev0`` is the work after 0.1.0 that is not yet released (CHANGELOG.md, "Unreleased").
"""

__version__ = "0.2.0.dev0"
