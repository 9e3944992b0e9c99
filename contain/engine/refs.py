"""Image references: 'busybox', 'busybox:1.36', 'registry:5000/team/app:v2',
'alpine@sha256:...'.  Validated with Docker's grammar (distribution/reference):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := host [ ":" port ]        (first component with '.' or ':', or 'localhost')
    path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" 64 lowercase hex digits

Names are kept in Docker's familiar form: 'docker.io/library/busybox' is
'busybox', 'docker.io/me/app' is 'me/app'.
"""

from ..errors import UsageError

# The grammar above, checked by hand: `re` would compile a page of regular
# expression on every `run IMAGE` (~1.5 ms) for names that are a few letters.
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TAG_FIRST = _ALNUM | {"_"}
_TAG_CHARS = _TAG_FIRST | {".", "-"}
_HEX = frozenset("0123456789abcdef")
NAME_MAX = 255
TAG_MAX = 128
DEFAULT_TAG = "latest"
DEFAULT_DOMAIN = "docker.io"


def _is_path_component(s):
    """[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*"""
    i, n = 0, len(s)
    while True:
        start = i
        while i < n and s[i] in _LOWER_ALNUM:
            i += 1
        if i == start:
            return False        # empty, or a separator where a run of [a-z0-9] must be
        if i == n:
            return True
        if s[i] == "_" and s.startswith("__", i):
            i += 2
        elif s[i] in "._":
            i += 1
        elif s[i] == "-":
            while i < n and s[i] == "-":
                i += 1
        else:
            return False


def _is_domain(s):
    """host [ ":" port ]: host is dot-separated [a-zA-Z0-9] words (inner
    '-' allowed) or an IPv6 address in brackets; port is digits."""
    if s.startswith("["):
        address, bracket, port = s[1:].partition("]")
        if not bracket or not address or any(c not in "0123456789abcdefABCDEF:"
                                             for c in address):
            return False
        if port and not (port[0] == ":" and _is_digits(port[1:])):
            return False
        return True
    host, colon, port = s.partition(":")
    if colon and not _is_digits(port):
        return False
    return all(word and word[0] != "-" and word[-1] != "-"
               and all(c in _ALNUM or c == "-" for c in word) for word in host.split("."))


def _is_digits(s):
    return bool(s) and all(c in "0123456789" for c in s)


def _is_name(name):
    """[ domain "/" ] path-component ( "/" path-component )*"""
    parts = name.split("/")
    if all(_is_path_component(p) for p in parts):
        return True
    return len(parts) > 1 and _is_domain(parts[0]) and \
        all(_is_path_component(p) for p in parts[1:])


def is_tag(tag):
    return 0 < len(tag) <= TAG_MAX and tag[0] in _TAG_FIRST and \
        all(c in _TAG_CHARS for c in tag)


def _is_hex64(s):
    return len(s) == 64 and all(c in _HEX for c in s)


def _bad(ref, why):
    return UsageError(f"invalid reference format: '{ref}': {why}")


def _split_domain(name):
    """(domain or None, rest) the way Docker decides what a domain is."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"
                or first != first.lower()):
        return first, rest
    return None, name


def familiar(name):
    """'docker.io/library/busybox' -> 'busybox', 'index.docker.io/a/b' -> 'a/b'."""
    domain, rest = _split_domain(name)
    if domain in ("docker.io", "index.docker.io"):
        return rest[len("library/"):] if rest.startswith("library/") and \
            rest.count("/") == 1 else rest
    return name


def parse_reference(ref):
    """(name, tag) for ref, with Docker's validation.

    tag is 'latest' when none is given; for a digest reference it is
    '@sha256:<hex>' (the digest wins over a tag given with it, as in Docker).
    Raises UsageError naming the reference when it is not valid.
    """
    if not isinstance(ref, str) or not ref:
        raise _bad(ref or "", "empty reference")
    rest, at, digest = ref.partition("@")
    if at and not (digest.startswith("sha256:") and _is_hex64(digest[7:])):
        raise _bad(ref, "the digest must be sha256: and 64 lowercase hex digits")
    name, tag = rest, None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1:]
        if not is_tag(tag):
            raise _bad(ref, "a tag is up to 128 letters, digits, '_', '.' or '-' "
                            "and cannot start with '.' or '-'")
    if not name:
        raise _bad(ref, "no repository name")
    if len(name) > NAME_MAX:
        raise _bad(ref, f"repository name longer than {NAME_MAX} characters")
    domain, path = _split_domain(name)
    if path != path.lower():
        raise _bad(ref, "repository name must be lowercase")
    if not _is_name(name):
        raise _bad(ref, "a repository name is lowercase letters, digits and "
                        "separators ('.', '_', '__', '-'), in '/'-separated parts")
    if _is_hex64(name):
        raise _bad(ref, "a repository name cannot be a 64-character hexadecimal "
                        "string (that is an image ID)")
    if at:
        return familiar(name), "@" + digest
    return familiar(name), tag or DEFAULT_TAG


def format_reference(name, tag):
    """'name:tag', or 'name@sha256:...' for a digest."""
    return f"{name}{tag}" if tag.startswith("@") else f"{name}:{tag}"


def normalize(ref):
    """The canonical stored form of ref: 'busybox' -> 'busybox:latest'."""
    return format_reference(*parse_reference(ref))


def full_name(name):
    """Docker's fully qualified name: 'busybox' -> 'docker.io/library/busybox'."""
    domain, _ = _split_domain(name)
    if domain:
        return name
    if "/" not in name:
        return f"{DEFAULT_DOMAIN}/library/{name}"
    return f"{DEFAULT_DOMAIN}/{name}"
