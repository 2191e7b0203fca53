"""Every camelCase alias is the very function of its PEP 8 method (same docstring)."""

from __future__ import annotations

import pytest

import runnel  # noqa: F401  (installs the aliases)
from runnel.aliases import ALIASES

ENTRIES = [(cls, camel, snake) for cls, table in ALIASES.items() for camel, snake in table.items()]


@pytest.mark.parametrize("cls,camel,snake", ENTRIES, ids=[f"{c.__name__}.{a}" for c, a, _ in ENTRIES])
def test_alias_is_the_pep8_method(cls, camel, snake):
    alias = cls.__dict__.get(camel)
    assert alias is not None, f"{cls.__name__}.{camel} is not installed"
    target = next(vars(k)[snake] for k in cls.__mro__ if snake in vars(k))
    assert alias is target
    assert getattr(cls, camel) == getattr(cls, snake)  # bound classmethods compare equal
    assert getattr(cls, camel).__doc__ == getattr(cls, snake).__doc__


def test_the_table_is_not_empty_and_names_differ():
    assert ENTRIES
    assert all(camel != snake for _, camel, snake in ENTRIES)
