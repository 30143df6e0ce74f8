from __future__ import annotations

import pytest

import xrm
from xrm.config import Settings, load_settings


def test_defaults():
    s = Settings()
    assert s.store_path.name == "xrm.duckdb" and s.engine == "duckdb" and s.default_region == "DE"


def test_toml_and_environment(tmp_path, monkeypatch):
    toml = tmp_path / "xrm.toml"
    toml.write_text('store_path = "from-toml.duckdb"\nmemory_limit = "3GB"\n')
    monkeypatch.setenv("XRM_CONFIG", str(toml))
    monkeypatch.setenv("XRM_MEMORY_LIMIT", "5GB")
    s = load_settings()
    assert s.store_path.name == "from-toml.duckdb"
    assert s.memory_limit == "5GB"  # environment beats the file


def test_all_problems_reported_at_once(monkeypatch):
    monkeypatch.setenv("XRM_THREADS", "-1")
    with pytest.raises(xrm.ConfigError) as err:
        load_settings(engine="oracle")
    text = str(err.value)
    assert "threads" in text and "engine" in text and "'oracle'" in text and "xrm config" in text


def test_unknown_setting_refused(tmp_path, monkeypatch):
    toml = tmp_path / "xrm.toml"
    toml.write_text('stor_path = "typo.duckdb"\n')
    monkeypatch.setenv("XRM_CONFIG", str(toml))
    with pytest.raises(xrm.ConfigError, match="stor_path"):
        load_settings()


def test_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, xrm; heavy = [m for m in ('duckdb', 'ibis', 'pyspark', 'pandas', 'pydantic') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_exception_tree():
    assert issubclass(xrm.InputError, ValueError) and issubclass(xrm.InputError, xrm.XrmError)
    assert issubclass(xrm.ConsentDenied, PermissionError)
    assert issubclass(xrm.NotYetImplemented, NotImplementedError)
    assert issubclass(xrm.StoreBusy, xrm.StoreError)
