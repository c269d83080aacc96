"""A worked mattezoo plugin: the ``guided_matting`` method.

mattezoo finds it through the ``mattezoo`` entry point declared in
pyproject.toml, which points at :mod:`mattezoo_guided_matting.plugin`. Nothing
here is imported until then, and the method itself (:mod:`.method`) only when
``mattezoo.create_method("guided_matting")`` asks for it.
"""

__version__ = "0.1.0"
