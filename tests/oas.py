"""Codat's published OpenAPI documents, loaded once for contract tests.

They are read from CODAT_OAS_DIR (by default shared/codat-oas/ beside this checkout's folder),
never edited and never copied into this repository.
Their only server is https://api.codat.io; a relative server "/" is added to the in-memory copy so
that requests to the local sandbox (any host and port) match the same paths.
"""

import functools
import os
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "Codat-Platform.yaml"
BANK_FEEDS = "Codat-Bank-Feeds.yaml"


def oas_dir() -> Path:
    return Path(os.environ.get("CODAT_OAS_DIR", REPO_ROOT.parent / "shared" / "codat-oas"))


@functools.cache
def load_document(name: str) -> dict:
    path = oas_dir() / name
    if not path.exists():
        if os.environ.get("CI"):
            raise FileNotFoundError(f"Codat OpenAPI document missing: {path}")
        pytest.skip(f"Codat OpenAPI documents not found at {oas_dir()} (set CODAT_OAS_DIR)")
    document = yaml.safe_load(path.read_text())
    document["servers"] = [*document.get("servers", []), {"url": "/"}]
    return document


@functools.cache
def load_openapi(name: str):
    from openapi_core import OpenAPI

    return OpenAPI.from_dict(load_document(name))
