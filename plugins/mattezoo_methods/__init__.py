"""mattezoo's built-in methods.

Each module here is one plugin, declared in the ``mattezoo`` entry-point group
of mattezoo's own metadata and in ``mattezoo.plugins.BUILTIN_PLUGINS``; it
registers its methods through the same hooks a third-party package uses.
"""
