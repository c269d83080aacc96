"""The plugin module named by the ``mattezoo`` entry point.

It only describes the method: registering must stay cheap, because every
``mattezoo list`` calls it. The factory string is imported by
``mattezoo.create_method`` when the method is actually built.
"""

from mattezoo import MethodSpec, hookimpl

GUIDED_MATTING = MethodSpec(
    name="guided_matting",
    family="classical",
    factory="mattezoo_guided_matting.method:build_guided_matting",
    summary="local colour-line alpha refined by the guided filter (example plugin)",
    citation="K. He, J. Sun, X. Tang, Guided Image Filtering, ECCV 2010 / IEEE TPAMI 35(6), 2013",
)


@hookimpl
def mattezoo_register_methods():
    return [GUIDED_MATTING]
