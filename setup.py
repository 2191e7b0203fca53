"""The package list: every package under ``src/`` (found, never listed by hand) plus
``runnel.kernels``, whose sources live in ``kernels/`` (``package-dir`` in pyproject.toml).
Everything else about the build is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=find_packages("src") + ["runnel.kernels"])
