"""Import Great Expectations without the parts our suites never run.

`import great_expectations` costs ~2.7 CPU-seconds, and the validation process pays it while the
backup's tables are read on the same (two) cores. Half of it is for things only other
expectations, plots and data sources use: scipy.stats (KS-test and KL-divergence expectations),
altair (their charts) and SQLAlchemy (SQL data sources). Measured on the bench machine: 2.70 ->
1.45 CPU-s.

- scipy.stats and altair are imported unconditionally by GX modules but only used inside
  expectations we do not run: they load lazily, on first attribute access, if ever.
- SQLAlchemy is an optional dependency GX probes for (`great_expectations.compatibility`); in
  this process it is reported missing, so GX registers no SQL machinery. Our suites validate
  pandas frames only.

Call `install()` before the first GX import, in a process of its own (the quality worker): the
run's process imports SQLAlchemy for Dagster's storage.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

LAZY_MODULES = frozenset({"scipy.stats", "altair"})
ABSENT_MODULES = ("sqlalchemy",)


class _LazyFinder(importlib.abc.MetaPathFinder):
    """Finds LAZY_MODULES with the regular finders, then defers executing them."""

    def find_spec(self, name, path, target=None):
        if name not in LAZY_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def install() -> None:
    if any(isinstance(finder, _LazyFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _LazyFinder())
    for name in ABSENT_MODULES:
        sys.modules.setdefault(name, None)  # `import sqlalchemy` raises ImportError from now on
