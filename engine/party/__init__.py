"""Party and administrative rules (../shared/domain/rules.md) as tested functions.

Each module registers what processes need: script helpers (`engine.runtime.helpers.helper`) and
service operators (`engine.runtime.services.builtin`). Every module in this package is imported
here, so a new module needs no list to be kept.
"""
from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")
