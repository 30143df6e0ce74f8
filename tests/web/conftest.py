"""Console fixtures: an app over a real store file (TestClient), users of each role, and a
sample-business store (500 customers, loaded and run through the pipeline) shared by a session."""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xrm.config import Settings
from xrm.store import Store

PASSWORD = "correct horse battery"
# A strict link threshold puts the sample's near-certain pairs in the grey zone, so the identity
# review queue has work for the console (the default links them all at 500 customers).
SAMPLE_IDENTIFY = {"linkage": {"link_probability": 0.995}}
SECRET = "console-tests-secret-key-0123456789abcdef"  # signed links in campaign previews
ROLES = ("admin", "marketer", "viewer")


def console_app(settings: Settings) -> Any:
    from xrm.api import create_app
    from xrm.web import console_router

    app = create_app(settings)
    if not any(getattr(r, "path", "").startswith("/console") for r in app.routes):
        app.include_router(console_router(settings))
    return app


def test_client(app: Any) -> Any:
    with warnings.catch_warnings():
        # Starlette 1.x deprecates its httpx-based TestClient in favour of httpx2 (not installed).
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


test_client.__test__ = False  # type: ignore[attr-defined]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"username": username, "password": password, "csrf": token},
                       follow_redirects=False)


@pytest.fixture
def users_store(settings: Settings) -> Settings:
    """An empty store with one user per role (admin, marketer, viewer), language en."""
    from xrm.web import add_user

    with Store.open(settings) as store:
        for role in ROLES:
            add_user(store, role, PASSWORD, role=role, lang="en")
    return settings


@pytest.fixture
def client(users_store: Settings) -> Iterator[Any]:
    with test_client(console_app(users_store)) as c:
        yield c


@pytest.fixture(scope="session")
def sample_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the sample business (500 customers) loaded and the pipeline run, made once."""
    from xrm.ingest import load_manifest
    from xrm.pipeline import run_pipeline
    from xrm.sample import generate_sample

    root = tmp_path_factory.mktemp("console-sample")
    generate_sample(root / "sample", customers=500, seed=7, show_progress=False)
    path = root / "xrm.duckdb"
    settings = Settings(store_path=path, memory_limit="1GB", threads=2, identify=SAMPLE_IDENTIFY)
    with Store.open(settings) as store:
        load_manifest(store, root / "sample" / "manifest.json", show_progress=False)
        run_pipeline(store)
    return path


@pytest.fixture
def sample_store(sample_store_file: Path, tmp_path: Path) -> Settings:
    """A private copy of the sample store (tests write to it), with one user per role."""
    from xrm.web import add_user

    path = tmp_path / "sample.duckdb"
    shutil.copy(sample_store_file, path)
    settings = Settings(store_path=path, memory_limit="1GB", threads=2, identify=SAMPLE_IDENTIFY,
                        secret_key=SECRET)
    with Store.open(settings) as store:
        for role in ROLES:
            add_user(store, role, PASSWORD, role=role, lang="en")
    return settings
