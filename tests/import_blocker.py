"""Code a test runs first in a child Python so that importing the named modules fails as on a base
install: BLOCKER.format(blocked=[...]) (test_runtime_import.py, test_openvino_runtime.py)."""

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {{name!r}} (blocked: not in a base install)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""
