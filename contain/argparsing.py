"""argparse, made quick to start: both command lines (the engine's and
the runtime's runc-compatible one) are built on this parser.

argparse makes a help formatter for every add_argument only to check nargs,
and asks shutil for the terminal's width (importing shutil, bz2 and lzma):
milliseconds on every start of a program that engines run per container.
No abbreviated options either: Docker and runc accept none.
"""

import os
import sys


def _import_argparse():
    """argparse, without gettext: contain speaks English, and argparse's
    only use of gettext is translating its few words.  Importing gettext
    (and with it locale) costs ~0.6 ms, and its catalogue search ~0.5 ms
    per parser built.  A stand-in serves argparse's import alone; later
    importers of gettext get the real module."""
    if "argparse" in sys.modules or "gettext" in sys.modules:
        import argparse
    else:
        stand_in = type(sys)("gettext")
        stand_in.gettext = str
        stand_in.ngettext = lambda singular, plural, n: singular if n == 1 else plural
        sys.modules["gettext"] = stand_in
        try:
            import argparse
        finally:
            del sys.modules["gettext"]
    argparse._ = str
    argparse.ngettext = lambda singular, plural, n: singular if n == 1 else plural
    return argparse


argparse = _import_argparse()


class FastParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def add_subparsers(self, **kwargs):
        # (argparse formats a whole usage line only to name the subparsers
        # "PROG"; our global options take no positionals, so it is PROG)
        kwargs.setdefault("prog", self.prog)
        return super().add_subparsers(**kwargs)

    def _get_formatter(self):
        if getattr(self, "_checking", False):
            # add_argument's checks call only _format_args and (3.14)
            # _expand_help, which need the program's name and nothing else a
            # formatter's __init__ makes (two regular expressions to compile,
            # the terminal's width): a bare one, shared
            if getattr(self, "_check_formatter", None) is None:
                bare = self.formatter_class.__new__(self.formatter_class)
                bare._prog = self.prog
                self._check_formatter = bare
            return self._check_formatter
        return self._new_formatter()

    def _new_formatter(self):
        # the terminal's width from os, not shutil
        try:
            width = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns
            except (OSError, ValueError):
                width = 80
        return self.formatter_class(prog=self.prog, width=width - 2)
