"""The typed environment helpers of config/settings.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_bool, env_int, env_list


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("True", True), ("no", False), ("", False)]
)
def test_env_bool_parses_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SW_FLAG", raw)
    assert env_bool("SW_FLAG", not expected) is expected


def test_env_bool_refuses_junk_instead_of_reading_it_as_true(monkeypatch):
    monkeypatch.setenv("SW_FLAG", "Flase")
    with pytest.raises(ImproperlyConfigured, match="SW_FLAG='Flase' is not a boolean"):
        env_bool("SW_FLAG", False)


def test_env_bool_and_int_defaults_when_unset(monkeypatch):
    monkeypatch.delenv("SW_FLAG", raising=False)
    assert env_bool("SW_FLAG", True) is True
    assert env_int("SW_FLAG", 7) == 7


def test_env_int_refuses_junk(monkeypatch):
    monkeypatch.setenv("SW_N", "ten")
    with pytest.raises(ImproperlyConfigured, match="is not an integer"):
        env_int("SW_N", 1)


def test_env_list_splits_and_strips(monkeypatch):
    monkeypatch.setenv("SW_HOSTS", " a.example , b.example,, ")
    assert env_list("SW_HOSTS", []) == ["a.example", "b.example"]
