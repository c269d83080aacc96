"""pytest-benchmark setup shared by every suite in benchmarks/.

Plain ``pytest`` runs each benchmark once as a smoke test (``--benchmark-disable``
is in the default addopts); ``--benchmark-enable`` times them. See README.md.
"""

from __future__ import annotations

import platform

import torch

from mattezoo.extension import status


def pytest_benchmark_update_machine_info(config, machine_info):
    # Comparisons warn when these differ between saved runs.
    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["mattezoo_ext"] = status()
    machine_info["cuda_device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    machine_info["python_impl"] = platform.python_implementation()
