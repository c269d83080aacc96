"""The PPT benchmark, mattezoo's main job: ``python -m mattezoo.bench`` (also ``mattezoo bench``).

For every registered method it runs the P3M paper's privacy-preserving-training
protocols B:B, B:N, N:B and N:N (train on Blurred or Normal portraits, test on
Blurred or Normal ones) and writes tables shaped like the paper's Tables 1–4,
figures and a reproducibility record to ``--out``. Modules:

``presets``  quick / standard / paper sizes;   ``plan``    the cells of a run;
``runner``   training, evaluation, the cache;  ``tables``  Tables 1–4 and the PPT gap;
``plots``    figures and image grids;          ``report``  report.md, results.json/.csv;
``record``   versions, commit, device, times;  ``cli``     the command line.
"""

from .cli import main, run_bench
from .plan import make_plan, parse_methods, parse_protocols
from .presets import PRESETS, Preset, get_preset
from .runner import BenchConfig

__all__ = ["PRESETS", "BenchConfig", "Preset", "get_preset", "main", "make_plan", "parse_methods", "parse_protocols", "run_bench"]
