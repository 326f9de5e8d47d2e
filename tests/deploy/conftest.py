"""Fixtures for the deployment tests: a real Orthanc PACS started for the session and stopped after it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orthanc_server import OrthancServer  # noqa: E402


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory):
    """One Orthanc for the session (loopback, free ports, temporary storage and index; see orthanc_server.py)."""
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    try:
        server.start()
    except RuntimeError as err:
        pytest.fail(str(err))
    yield server
    server.stop()


@pytest.fixture
def orthanc(orthanc_server):
    """The session's Orthanc, emptied before the test."""
    orthanc_server.clear()
    return orthanc_server
