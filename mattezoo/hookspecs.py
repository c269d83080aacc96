"""The hooks a mattezoo plugin can implement.

These docstrings are the hook reference (``docs/writing-a-plugin.md`` points
here, and ``tests/test_hookspecs.py`` checks that each one documents every
argument and has a test). A plugin is any module or object with functions
decorated by :data:`mattezoo.hookimpl`, exposed through the ``mattezoo``
entry-point group::

    [project.entry-points.mattezoo]
    my_methods = "my_package.plugin"

pluggy passes an implementation only the arguments it declares, so arguments
can be added to a spec later without breaking existing plugins.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "mattezoo"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -------------------------------------------------------------------------
# Registration: called once when the method registry is built
# -------------------------------------------------------------------------


@hookspec
def mattezoo_register_methods():
    """Return the matting methods this plugin provides.

    Called once per registry build. Return a list of
    :class:`mattezoo.MethodSpec`; return ``[]`` to register nothing. The
    registry merges the lists of all plugins and raises
    :class:`mattezoo.errors.DuplicateMethodError`, naming both plugins, if two
    plugins return the same name. Do not import heavy model code here: only
    ``spec.factory`` is imported, and only when the method is created.

    :return: ``list[MethodSpec]``

    Example::

        @hookimpl
        def mattezoo_register_methods():
            return [MethodSpec(name="my_method", family="trimap-free",
                               factory="my_package.model:build")]
    """


# -------------------------------------------------------------------------
# Weights: called by create_method when pretrained weights are asked for
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def mattezoo_resolve_weights(spec, tag, cfg):
    """Find the local file that holds the weights ``tag`` of a method.

    Called by :func:`mattezoo.create_method` for ``"name.tag"`` or
    ``pretrained="tag"``, before the ``MATTEZOO_WEIGHTS`` folder is searched.
    The first implementation that returns a path wins; return ``None`` to let
    others (and then the folder search) answer. Nothing may be downloaded at
    run time: answer with files that are already on disk, such as a mirror or
    an offline cache. The file is still checked against ``cfg.sha256``.

    :param spec: the :class:`mattezoo.MethodSpec` being created.
    :param tag: the weight tag asked for, a key of ``spec.weights``.
    :param cfg: the :class:`mattezoo.WeightsCfg` registered for that tag.
    :return: ``pathlib.Path`` or ``str`` of an existing file, or ``None``.

    Example::

        @hookimpl
        def mattezoo_resolve_weights(spec, tag, cfg):
            candidate = Path("/mnt/mirror") / cfg.file
            return candidate if candidate.is_file() else None
    """


# -------------------------------------------------------------------------
# Training: called by the training engine for the method it is asked to train
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def mattezoo_training_recipe(spec):
    """Give the training recipe of a method: its stages and losses.

    Called by :func:`mattezoo.train.train_method` (and ``mattezoo train`` and
    the PPT bench) before ``spec.recipe`` is used, so a plugin can bring the
    recipe of its own method here, or train a method of another plugin its own
    way. The first implementation that returns a recipe wins; return ``None``
    for methods you do not train. A method without any recipe (the classical
    ones) is not trainable.

    :param spec: the :class:`mattezoo.MethodSpec` to be trained.
    :return: a :class:`mattezoo.train.Recipe`, or ``None``.

    Example::

        from mattezoo.train import Recipe, Stage, alpha_loss

        @hookimpl
        def mattezoo_training_recipe(spec):
            if spec.name != "my_method":
                return None
            def loss(model, batch):
                value = alpha_loss(model(batch["image"]), batch["alpha"])
                return {"loss": value}
            return Recipe(stages=(Stage("main", loss),), lr=1e-4)
    """
