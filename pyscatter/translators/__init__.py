"""Translators: one module per source format, found through the ``pyscatter.translators`` entry points.

>>> from pyscatter.translators import available_translators
>>> "images" in available_translators()
True
"""

from pyscatter.translators.base import (
    ENTRY_POINT_GROUP,
    Translator,
    available_translators,
    expand_sources,
    get_translator,
    guess_translator,
    translate,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Translator",
    "available_translators",
    "expand_sources",
    "get_translator",
    "guess_translator",
    "translate",
]
