"""State files: the one atomic JSON write, and reading a JSON state file
that may have been damaged (a crash of the machine, a full disk, a hand
edit) into a one-line error that names the file and what to do.

Shared by the core (the user-namespace id ranges) and the engine (container
records, the image and network stores), so it lives here: the core never
imports the engine.
"""

import os

from .. import fastjson
from ..errors import ContainError


def write_atomic(path, data, mode=0o644):
    """Replace path with bytes data: a temporary file renamed over it, so a
    crash leaves the old or the new content, never half of one.  A failed
    write (a full disk) removes its temporary file."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with open(fd, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path, data, mode=0o644, indent=None):
    """Atomically replace path with data as JSON (temp file + rename)."""
    write_atomic(path, fastjson.dumps(data, indent=indent, sort_keys=True).encode(), mode)


def read_json(path):
    """The JSON in path (FileNotFoundError and ValueError pass through)."""
    with open(path) as f:
        return fastjson.load(f)


class DamagedFile(ContainError):
    """A state file that is not what contain wrote: its message names the
    file, what is wrong with it and what to do about it."""

    def __init__(self, path, problem, remedy):
        super().__init__(f"{path} is damaged ({problem}): {remedy}")
        self.path, self.problem, self.remedy = path, problem, remedy


_MISSING = object()


def read_state_json(path, check, remedy, default=_MISSING):
    """The JSON value of a state file, checked.

    check(value) returns None when the value has the expected shape, or a
    few words saying what is wrong.  Empty, truncated, binary or wrong-shape
    content raises DamagedFile naming path, the problem and remedy (what the
    user can do).  A missing file returns default (or raises
    FileNotFoundError without one)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if default is _MISSING:
            raise
        return default
    problem = None
    if not data.strip():
        problem = "it is empty"
    else:
        try:
            value = fastjson.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            problem = f"not valid JSON: {e}"
        else:
            problem = check(value)
    if problem:
        raise DamagedFile(path, problem, remedy)
    return value


def is_dict_of(value, key_ok=None, value_ok=None):
    """None if value is a dict whose keys and values pass the checks,
    else what is wrong (for read_state_json's check)."""
    if not isinstance(value, dict):
        return f"{json_kind(value)} where an object was expected"
    for k, v in value.items():
        if (key_ok and not key_ok(k)) or (value_ok and not value_ok(v)):
            return f"unexpected entry {k!r}"
    return None


def json_kind(value):
    """'an array', 'a string'...: what a JSON value is, for messages."""
    for types, name in ((bool, "a boolean"), (dict, "an object"), (list, "an array"),
                        (str, "a string"), ((int, float), "a number")):
        if isinstance(value, types):
            return name
    return "null"
