"""argparse, made quick to start: both command lines (the engine's and
the runtime's runc-compatible one) are built on this parser.

argparse makes a help formatter for every add_argument only to check nargs,
and asks shutil for the terminal's width (importing shutil, bz2 and lzma):
milliseconds on every start of a program that engines run per container.
No abbreviated options either: Docker and runc accept none.
"""

import argparse
import os
import sys

# contain speaks English: argparse's few words need no translation, and
# gettext's search for a catalogue costs ~0.5 ms per parser built.
argparse._ = str


class FastParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        # one shared formatter for the nargs checks is as good as a new one each
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self):
        if getattr(self, "_checking", False):
            if getattr(self, "_check_formatter", None) is None:
                self._check_formatter = self._new_formatter()
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
