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

import re

from ..errors import UsageError

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = (rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
           r"(?::[0-9]+)?")
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z"
_TAG = r"[\w][\w.-]{0,127}\Z"
_DIGEST = r"sha256:[0-9a-f]{64}\Z"
_HEX64 = r"[0-9a-f]{64}\Z"
NAME_MAX = 255
DEFAULT_TAG = "latest"
DEFAULT_DOMAIN = "docker.io"


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
    if at and not re.match(_DIGEST, digest):
        raise _bad(ref, "the digest must be sha256: and 64 lowercase hex digits")
    name, tag = rest, None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        name, tag = rest[:colon], rest[colon + 1:]
        if not re.match(_TAG, tag, re.ASCII):
            raise _bad(ref, "a tag is up to 128 letters, digits, '_', '.' or '-' "
                            "and cannot start with '.' or '-'")
    if not name:
        raise _bad(ref, "no repository name")
    if len(name) > NAME_MAX:
        raise _bad(ref, f"repository name longer than {NAME_MAX} characters")
    domain, path = _split_domain(name)
    if path != path.lower():
        raise _bad(ref, "repository name must be lowercase")
    if not re.match(_NAME, name):
        raise _bad(ref, "a repository name is lowercase letters, digits and "
                        "separators ('.', '_', '__', '-'), in '/'-separated parts")
    if re.match(_HEX64, name):
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
