"""Command-line tools for looking at SMWAP radio traffic: ``ihd decode`` and ``ihd sniff``.

They sit beside the display, not in its pipeline: they use the protocol stack
(:mod:`ihd.smwap`, :mod:`ihd.meter`) the same way the display does, so what they print is
what the display would make of a frame. Each module has ``add_arguments(parser)`` and
``run(args) -> int`` for ``ihd.cli``, and runs on its own with ``python -m``.
"""
