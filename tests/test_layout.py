"""The package's two halves: the runtime core (contain/core) executes an OCI
bundle and never imports the engine (contain/engine), which drives it."""

import ast
import os
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = os.path.join(TOP, "contain", "core")


def imported_modules(path):
    """Every module a file imports, as absolute dotted names."""
    package = "contain.core"
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]
    return out


class CoreNeverImportsEngine(unittest.TestCase):
    def test_core_modules_import_no_engine_module(self):
        files = [f for f in os.listdir(CORE) if f.endswith(".py")]
        self.assertIn("init.py", files)
        for name in files:
            for mod in imported_modules(os.path.join(CORE, name)):
                self.assertFalse(mod.startswith("contain.engine"),
                                 f"contain/core/{name} imports {mod}")

    def test_the_check_sees_relative_imports(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write("from ..engine import cli\nfrom . import linux\n")
        try:
            mods = imported_modules(f.name)
        finally:
            os.unlink(f.name)
        self.assertIn("contain.engine.cli", mods)
        self.assertIn("contain.core.linux", mods)
