"""Translators: one module per source format; built-ins and ``pyscatter.translators`` plugins.

>>> from pyscatter.translators import available_translators
>>> "images" in available_translators()
True
"""

from pyscatter.translators.base import (
    BUILTIN_TRANSLATORS,
    ENTRY_POINT_GROUP,
    Translator,
    available_translators,
    expand_sources,
    get_translator,
    guess_translator,
    translate,
    translator_entries,
)

__all__ = [
    "BUILTIN_TRANSLATORS",
    "ENTRY_POINT_GROUP",
    "Translator",
    "available_translators",
    "expand_sources",
    "get_translator",
    "guess_translator",
    "translate",
    "translator_entries",
]
