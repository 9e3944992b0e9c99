"""Registry credentials and authentication challenges.

Credentials live in <state root>/auth.json, shaped like Docker's
config.json: {"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}}}
(docker.io under "https://index.docker.io/v1/", as Docker writes it).  The
file has mode 0600 and is replaced atomically under a lock.

parse_challenge reads a WWW-Authenticate header (RFC 7235):
'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"'.
"""

import base64
import os

from .state import FileLock
from .. import fastjson
from ..errors import ContainError, NotFound

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def _path(root):
    return os.path.join(root, "auth.json")


def registry_key(domain):
    """The key Docker's config.json uses for a registry."""
    return DOCKER_HUB_KEY if domain in ("docker.io", "index.docker.io") else domain


def _read(root):
    try:
        with open(_path(root), "rb") as f:
            data = fastjson.loads(f.read())
    except FileNotFoundError:
        return {"auths": {}}
    except (OSError, ValueError) as e:
        raise ContainError(f"credentials file {_path(root)} is damaged or unreadable "
                           f"({e}); remove it and log in again") from None
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise ContainError(f"credentials file {_path(root)} is damaged (no 'auths' "
                           "object); remove it and log in again")
    data.setdefault("auths", {})
    return data


def _write(root, data):
    """Replace auth.json atomically; it never exists with a wider mode."""
    path = _path(root)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, fastjson.dumps(data, indent=1, sort_keys=True).encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)


def credentials(root, domain):
    """(user, password) saved for domain, or None."""
    entry = _read(root)["auths"].get(registry_key(domain))
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ContainError(f"credentials for {domain} in {_path(root)} are damaged; "
                           "log in again") from None
    return (user, password) if sep else None


def save(root, domain, user, password):
    os.makedirs(root, mode=0o711, exist_ok=True)
    with FileLock(os.path.join(root, "auth.lock")):
        data = _read(root)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        data["auths"][registry_key(domain)] = {"auth": token}
        _write(root, data)


def remove(root, domain):
    """Forget domain's credentials; NotFound when there were none."""
    os.makedirs(root, mode=0o711, exist_ok=True)
    with FileLock(os.path.join(root, "auth.lock")):
        data = _read(root)
        if data["auths"].pop(registry_key(domain), None) is None:
            raise NotFound(f"not logged in to {domain}")
        _write(root, data)


def basic_header(creds):
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


def parse_challenge(header):
    """(scheme lowercased, {param: value}) from a WWW-Authenticate header."""
    header = (header or "").strip()
    scheme, _, rest = header.partition(" ")
    params, i, n = {}, 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            value = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params
