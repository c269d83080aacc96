"""What a plugin author runs after `pip install .`: mattezoo's own conformance checks."""

import mattezoo
from mattezoo.testing import run_conformance


def test_registered_from_this_package():
    assert mattezoo.get_method("guided_matting").plugin == "guided_matting"


def test_guided_matting_conforms():
    report = run_conformance("guided_matting")
    assert "known-regions" in report.checks
