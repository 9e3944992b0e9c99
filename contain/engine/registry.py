"""Images from registries: pull, push, login and logout over the
Distribution API (OCI distribution-spec; Docker Registry HTTP API V2).

A pull: probe ``GET /v2/`` (it answers which authentication the registry
wants), fetch the manifest by tag or digest with all four manifest types in
``Accept``, choose the platform's manifest from an index, fetch the config,
then hand the layers to the image store, which fetches them in parallel and
unpacks them.  Every byte is checked: manifests, the config and every layer
blob are hashed and compared with the digest that names them (the
``Docker-Content-Digest`` header of a blob only echoes the URL), and each
layer's uncompressed content with the config's diff_id.  Nothing is stored
until all of it matches.

Authentication: none; Basic (with saved credentials); Bearer tokens: the
401's ``WWW-Authenticate`` names a realm, service and scope, the token comes
from ``GET realm?service=..&scope=repository:REPO:pull`` (with Basic
credentials when logged in), is cached per scope until it expires, and a
request is retried once with a fresh one.

TLS: https with the system's CAs plus ``$CONTAIN_CERTS_DIR/HOST:PORT/*.crt``
(default /etc/contain/certs.d, Docker's certs.d layout).  Plain http and
``--tls-verify=false`` only for loopback registries and those named in
``$CONTAIN_INSECURE_REGISTRIES`` (comma-separated HOST[:PORT]).
"""

import os
import sys
import threading
import time

from . import auth
from .. import fastjson
from . import refs as _refs
from .images import (DOCKER_LIST, DOCKER_MANIFEST, INDEX_TYPES, LAYER_TYPES, MANIFEST_TYPES,
                     MAX_JSON, OCI_INDEX, OCI_MANIFEST, ImageStore, choose_platform,
                     host_platform, human_size, parse_platform, short_digest)
from ..errors import ContainError, UsageError

ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+prettyjws",
                 "application/vnd.docker.distribution.manifest.v1+json")
DOCKER_DOMAINS = ("docker.io", "index.docker.io")
DOCKER_API_HOST = "registry-1.docker.io"
CERTS_DIR = "/etc/contain/certs.d"
TIMEOUT = 60
CHUNK = 1 << 20
PUSH_CHUNK = 64 << 20        # a blob larger than this goes up in PATCH chunks of this size
MAX_REDIRECTS = 5
ERROR_CODES = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND", 429: "TOOMANYREQUESTS"}


http = ssl = urllib = None   # imported when a registry is first used: ~30 ms a run need not pay


def _load_net():
    global http, ssl, urllib
    import http.client
    import ssl
    import urllib.parse


class RegistryError(ContainError):
    """'pull 127.0.0.1:5000/app: fetching the manifest latest: MANIFEST_UNKNOWN: ...'"""


# ------------------------------------------------------------------ names
class Location:
    """Where a reference lives: domain (as named), host (the API's),
    repo (the path), name (familiar), tag or digest."""

    def __init__(self, ref):
        name, tag = _refs.parse_reference(ref)
        self.name = name
        self.domain, self.repo = _refs.full_name(name).split("/", 1)
        self.host = DOCKER_API_HOST if self.domain in DOCKER_DOMAINS else self.domain
        self.digest = tag[1:] if tag.startswith("@") else None
        self.tag = None if self.digest else tag

    @property
    def reference(self):
        return self.digest or self.tag

    def __str__(self):
        return _refs.format_reference(f"{self.domain}/{self.repo}",
                                      "@" + self.digest if self.digest else self.tag)


def server_domain(server):
    """'https://index.docker.io/v1/' or 'docker.io' -> 'docker.io'; 'host:5000/' -> 'host:5000'."""
    text = (server or "").strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/", 1)[0]
    if not text:
        raise UsageError("no registry named")
    return "docker.io" if text in DOCKER_DOMAINS else text


def _hostname(netloc):
    host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 or "]" in netloc else netloc
    return host.strip("[]").lower()


def is_loopback(netloc):
    host = _hostname(netloc)
    return host in ("localhost", "::1") or host.startswith("127.")


def insecure_allowed(netloc):
    """May netloc be reached over plain http or without verifying its certificate?"""
    named = [n.strip() for n in os.environ.get("CONTAIN_INSECURE_REGISTRIES", "").split(",")]
    return is_loopback(netloc) or netloc in named or _hostname(netloc) in named


def certs_dir():
    return os.environ.get("CONTAIN_CERTS_DIR") or CERTS_DIR


def _sha256(data):
    import hashlib
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the client
class Registry:
    """One registry, as seen by one command (op: pull, push, login) on one
    repository: connections (one per thread), the challenge, tokens."""

    def __init__(self, domain, op, repo=None, creds=None, tls_verify=True):
        _load_net()
        self.domain, self.op, self.repo, self.creds = domain, op, repo, creds
        self.host = DOCKER_API_HOST if domain in DOCKER_DOMAINS else domain
        if not tls_verify and not insecure_allowed(domain):
            raise UsageError(f"--tls-verify=false is allowed only for loopback registries "
                             f"and those named in CONTAIN_INSECURE_REGISTRIES, not {domain}")
        self.tls_verify = tls_verify
        self.scheme = None
        self.challenge = None            # (scheme, params) from GET /v2/
        self.tokens = {}                 # scope -> (Authorization value, expiry)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._contexts = {}

    # -- errors
    def fail(self, step, code, message="", retry_after=None):
        where = f"{self.domain}/{self.repo}" if self.repo else self.domain
        text = f"{self.op} {where}: {step}: {code}"
        if message:
            text += f": {message}"
        if retry_after:
            text += f" (retry after {retry_after} s)"
        return RegistryError(text)

    def _error(self, resp, step):
        """The RegistryError for an unwanted response (its body is read)."""
        code = message = None
        try:
            first = fastjson.loads(resp.read(1 << 16))["errors"][0]
            code, message = str(first["code"]), str(first.get("message") or "")
        except (ValueError, KeyError, IndexError, TypeError, OSError,
                http.client.HTTPException):
            pass
        code = code or ERROR_CODES.get(resp.status, f"HTTP {resp.status}")
        message = message or resp.reason
        if resp.status == 401:
            message += ("; are the username and password right?" if self.creds else
                        f"; log in first: contain login {self.domain}")
        return self.fail(step, code, message,
                         resp.getheader("Retry-After") if resp.status == 429 else None)

    # -- connections
    def _context(self, netloc):
        ctx = self._contexts.get(netloc)
        if ctx is None and self.scheme is None and self.tls_verify and insecure_allowed(netloc):
            # probing a loopback/insecure registry: a context without the
            # system's CAs (loading them costs ~40 ms) tells TLS from plain
            # http; a TLS server fails it on verification, and gets the real one
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ctx is None:
            ctx = ssl.create_default_context()
            if not self.tls_verify and insecure_allowed(netloc):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            for name in sorted({netloc, self.domain}):
                d = os.path.join(certs_dir(), name)
                for f in sorted(os.listdir(d)) if os.path.isdir(d) else ():
                    if f.endswith(".crt"):
                        ctx.load_verify_locations(os.path.join(d, f))
            self._contexts[netloc] = ctx
        return ctx

    def _conn(self, scheme, netloc):
        pool = self._local.__dict__.setdefault("conns", {})
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=TIMEOUT,
                                                   context=self._context(netloc))
            elif scheme == "http" and insecure_allowed(netloc):
                conn = http.client.HTTPConnection(netloc, timeout=TIMEOUT)
            else:
                raise ContainError(f"refusing {scheme}:// for {netloc} (plain http only for "
                                   "loopback and CONTAIN_INSECURE_REGISTRIES)")
            pool[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme, netloc):
        conn = self._local.__dict__.get("conns", {}).pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def _send(self, method, url, headers, body):
        """One exchange; a kept-alive connection the server closed is reopened once."""
        u = urllib.parse.urlsplit(url)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        for attempt in (0, 1):
            conn = self._conn(u.scheme, u.netloc)
            reused = conn.sock is not None
            try:
                if hasattr(body, "seek"):
                    body.seek(0)
                conn.request(method, path, body=body, headers=headers)
                return conn.getresponse()
            except (http.client.HTTPException, ConnectionError) as e:
                self._drop(u.scheme, u.netloc)
                if not reused or attempt:
                    raise OSError(f"{e.__class__.__name__}: {e}") from None
            except BaseException:
                self._drop(u.scheme, u.netloc)
                raise

    def _exchange(self, method, url, headers, body, step):
        """_send with redirects followed (GET/HEAD), Authorization dropped
        when the host changes, and network errors as one line."""
        netloc = urllib.parse.urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            try:
                resp = self._send(method, url, headers, body)
            except ssl.SSLCertVerificationError as e:
                raise self._untrusted(step, netloc, e) from None
            except OSError as e:
                raise self.fail(step, "CONNECTION",
                                f"{netloc}: {e.strerror or e}") from None
            if resp.status not in (301, 302, 303, 307, 308) or method not in ("GET", "HEAD"):
                return resp
            resp.read()
            url = urllib.parse.urljoin(url, resp.getheader("Location") or "")
            new = urllib.parse.urlsplit(url).netloc
            if new != netloc:
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
                netloc = new
        raise self.fail(step, "REDIRECTS", f"more than {MAX_REDIRECTS} redirects")

    def _untrusted(self, step, netloc, e):
        hint = f"; put its CA in {certs_dir()}/{self.domain}/ca.crt"
        if insecure_allowed(self.domain):
            hint += " or use --tls-verify=false"
        return self.fail(step, "TLS", f"the certificate of {netloc} is not trusted "
                         f"({e.verify_message}){hint}")

    def request(self, method, path, step, scope=None, headers=None, body=None, ok=(200,)):
        """One request to the registry (path under it, or a full URL) with the
        authorization scope needs; a 401 gets fresh credentials and one
        retry.  Returns the response (status in ok), its body unread."""
        if self.scheme is None:
            self.probe(step)
        url = path if "://" in path else f"{self.scheme}://{self.host}{path}"
        for attempt in (0, 1):
            headers = dict(headers or {})
            authorization = self._authorization(scope, step, fresh=attempt > 0)
            if authorization:
                headers["Authorization"] = authorization
            resp = self._exchange(method, url, headers, body, step)
            if resp.status == 401 and attempt == 0 and \
                    self._challenged(resp.getheader("WWW-Authenticate")):
                resp.read()
                continue
            if resp.status not in ok:
                raise self._error(resp, step)
            return resp

    # -- authentication
    def probe(self, step="connecting"):
        """GET /v2/: choose https or (where allowed) http, learn the challenge."""
        for scheme in ("https", "http"):
            if scheme == "http" and not insecure_allowed(self.domain):
                break
            url = f"{scheme}://{self.host}/v2/"
            try:
                try:
                    resp = self._send("GET", url, {}, None)
                except ssl.SSLCertVerificationError:
                    if not insecure_allowed(self.domain):
                        raise
                    self.scheme = scheme          # TLS it is: now with the real CAs
                    resp = self._send("GET", url, {}, None)
            except ssl.SSLCertVerificationError as e:
                raise self._untrusted(step, self.host, e) from None
            except (ssl.SSLError, ConnectionResetError) as e:
                if insecure_allowed(self.domain):
                    continue        # no TLS there: try plain http
                raise self.fail(step, "TLS", f"{self.host}: {e}") from None
            except OSError as e:
                raise self.fail(step, "CONNECTION", f"{self.host}: {e.strerror or e}") from None
            resp.read()
            if resp.status == 401:
                self.challenge = auth.parse_challenge(resp.getheader("WWW-Authenticate"))
            elif resp.status != 200:
                raise self.fail(step, f"HTTP {resp.status}", "GET /v2/ did not answer as a "
                                "registry does")
            self.scheme = scheme
            return
        raise self.fail(step, "TLS", f"{self.host} speaks no TLS, and plain http is "
                        "allowed only for loopback and CONTAIN_INSECURE_REGISTRIES")

    def _challenged(self, header):
        """Take a 401's challenge; True when a retry may succeed."""
        if header:
            self.challenge = auth.parse_challenge(header)
        return self.challenge is not None

    def _authorization(self, scope, step, fresh=False):
        if self.challenge is None:
            return None
        kind, params = self.challenge
        if kind == "basic":
            return auth.basic_header(self.creds) if self.creds else None
        if kind != "bearer":
            raise self.fail(step, "UNSUPPORTED", f"unknown authentication scheme '{kind}'")
        scope = scope or params.get("scope")
        with self._lock:
            cached = self.tokens.get(scope)
        if cached and not fresh and cached[1] > time.monotonic():
            return cached[0]
        return self.token(params, scope, step)

    def token(self, params, scope, step):
        """A Bearer token for scope from the challenge's realm (cached)."""
        realm = params.get("realm")
        if not realm or urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise self.fail(step, "UNAUTHORIZED", f"the challenge names no usable realm "
                            f"({realm!r})")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", scope),
                                   ("account", self.creds and self.creds[0])) if v}
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"Authorization": auth.basic_header(self.creds)} if self.creds else {}
        resp = self._exchange("GET", url, headers, None, "getting a token")
        if resp.status != 200:
            raise self._error(resp, f"getting a token for {scope or 'login'}")
        try:
            data = fastjson.loads(_read_limited(resp, 1 << 20))
            value = data.get("token") or data.get("access_token")
            expires_in = int(data.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not isinstance(value, str) or not value:
            raise self.fail(step, "UNAUTHORIZED", "the token server's answer holds no token")
        header = "Bearer " + value
        with self._lock:
            self.tokens[scope] = (header, time.monotonic() + max(expires_in - 5, 1))
        return header


def _read_limited(resp, limit):
    try:
        data = resp.read(limit + 1)
    except (http.client.HTTPException, OSError) as e:
        raise OSError(f"connection lost ({e})") from None
    if len(data) > limit:
        raise ContainError(f"a response larger than {limit} bytes")
    return data


def _read_small(reg, resp, step, limit=MAX_JSON):
    try:
        return _read_limited(resp, limit)
    except (OSError, ContainError) as e:
        raise reg.fail(step, "READ", str(e)) from None


# ------------------------------------------------------------------ pull
def _get_manifest(reg, scope, reference):
    """(digest, media type, parsed, body) of a manifest or index, verified."""
    step = f"fetching the manifest {reference}"
    resp = reg.request("GET", f"/v2/{reg.repo}/manifests/{reference}", step, scope,
                       {"Accept": ACCEPT})
    body = _read_small(reg, resp, step)
    digest = _sha256(body)
    if reference.startswith("sha256:") and digest != reference:
        raise reg.fail(step, "DIGEST_INVALID", f"the content's digest is {digest}")
    header = resp.getheader("Docker-Content-Digest")
    if header and header.startswith("sha256:") and header != digest:
        raise reg.fail(step, "DIGEST_INVALID", f"the content's digest is {digest}, the "
                       f"registry says {header}")
    try:
        doc = fastjson.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise reg.fail(step, "MANIFEST_INVALID", "not a JSON object")
    ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip()
    mt = doc.get("mediaType") or ctype
    if mt in SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise reg.fail(step, "UNSUPPORTED", "a Docker schema 1 manifest (deprecated since "
                       "2017): push the image again with a current tool")
    if mt not in MANIFEST_TYPES + INDEX_TYPES:
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "config" in doc else mt
    if mt not in MANIFEST_TYPES + INDEX_TYPES:
        raise reg.fail(step, "UNSUPPORTED", f"unknown manifest media type '{mt}'")
    return digest, mt, doc, body


def _get_small_blob(reg, scope, desc, what):
    digest = desc.get("digest") if isinstance(desc, dict) else None
    step = f"fetching the {what} {digest}"
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise reg.fail(step, "MANIFEST_INVALID", "no sha256 digest in the descriptor")
    resp = reg.request("GET", f"/v2/{reg.repo}/blobs/{digest}", step, scope)
    data = _read_small(reg, resp, step)
    if _sha256(data) != digest:
        raise reg.fail(step, "DIGEST_INVALID", f"the content's digest is {_sha256(data)}")
    return data


def _choose_manifest(reg, scope, loc, want, explicit):
    """(top digest, manifest digest, media type, manifest) for want."""
    top, mt, doc, _ = _get_manifest(reg, scope, loc.reference)
    digest = top
    for _ in range(4):
        if mt in MANIFEST_TYPES:
            return top, digest, mt, doc
        leaves = doc.get("manifests")
        if not isinstance(leaves, list) or not all(isinstance(d, dict) for d in leaves):
            raise reg.fail(f"reading the index {digest}", "MANIFEST_INVALID",
                           "no manifests list")

        def platform_of(desc):
            _, _, m, _ = _get_manifest(reg, scope, desc.get("digest"))
            config = fastjson.loads(_get_small_blob(reg, scope, m.get("config"), "config"))
            return {k: config.get(k) for k in ("os", "architecture", "variant")}

        desc = choose_platform(leaves, want, explicit, f"{reg.op} {loc}", platform_of)
        digest, mt, doc, _ = _get_manifest(reg, scope, desc.get("digest"))
    raise reg.fail("reading the index", "MANIFEST_INVALID", "indexes nested too deep")


class _BlobReader:
    """A layer blob as it arrives: stops when told, never reads past the
    size the manifest gave, reports progress.  (The store hashes it.)"""

    def __init__(self, resp, first, layer, stop, progress):
        self.resp, self.pending, self.stop, self.progress = resp, first, stop, progress
        self.size = layer.get("size") if isinstance(layer.get("size"), int) else None
        self.key = short_digest(layer["digest"])
        self.got = len(first)

    def read(self, n=-1):
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        if self.stop.is_set():
            raise OSError("given up: another layer failed")
        want = CHUNK if n is None or n < 0 else n
        if self.size is not None:
            want = max(1, min(want, self.size - self.got + 1))
        try:
            data = self.resp.read(want)
        except (http.client.HTTPException, OSError) as e:
            raise OSError(f"connection lost ({e.__class__.__name__}: {e})") from None
        self.got += len(data)
        if not data and ((self.size is not None and self.got < self.size) or self.resp.length):
            raise OSError(f"connection lost after {self.got} of {self.size} bytes")
        if self.size is not None and self.got > self.size:
            raise OSError(f"the registry sent more than the {self.size} bytes the "
                          "manifest says")
        if self.size:
            self.progress.set(self.key, f"Downloading  {human_size(self.got)}/"
                                        f"{human_size(self.size)}", force=False)
        return data

    def close(self):
        self.resp.close()


class Progress:
    """One line per layer on a terminal, redrawn in place (as docker pull does)."""

    def __init__(self, stream, enabled):
        self.stream, self.enabled = stream, enabled
        self.order, self.last = [], {}
        self.lock = threading.Lock()

    def set(self, key, text, force=True):
        if not self.enabled:
            return
        with self.lock:
            if key not in self.order:
                self.order.append(key)
                self.stream.write(f"{key}: {text}\n")
            else:
                now = time.monotonic()
                if not force and now - self.last.get(key, 0) < 0.1:
                    return
                self.last[key] = now
                up = len(self.order) - self.order.index(key)
                self.stream.write(f"\x1b[{up}A\r\x1b[2K{key}: {text}\x1b[{up}B\r")
            self.stream.flush()

    def on_layer(self, layer, what):
        self.set(short_digest(layer["digest"]),
                 "Already exists" if what == "exists" else "Pull complete")


def pull(root, ref, platform=None, tls_verify=True, quiet=False, out=None, log=None):
    """Pull ref (NAME[:TAG|@DIGEST]) into the image store under root;
    returns the image ID.  platform: 'os/arch[/variant]' (default: the host's)."""
    out = out or sys.stdout
    loc = Location(ref)
    reg = Registry(loc.domain, "pull", loc.repo, auth.credentials(root, loc.domain),
                   tls_verify)
    scope = f"repository:{loc.repo}:pull"
    want = parse_platform(platform) if platform else host_platform()
    top, digest, mt, manifest = _choose_manifest(reg, scope, loc, want, bool(platform))
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not isinstance(manifest.get("config"), dict):
        raise reg.fail(f"reading the manifest {digest}", "MANIFEST_INVALID",
                       "no config and layers")
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") not in LAYER_TYPES or \
                not str(layer.get("digest", "")).startswith("sha256:"):
            raise reg.fail(f"reading the manifest {digest}", "UNSUPPORTED",
                           f"a layer this engine cannot use: {fastjson.dumps(layer)[:200]}")
    config = _get_small_blob(reg, scope, manifest["config"], "config")
    store = ImageStore(root)
    tag_ref = _refs.format_reference(loc.name, loc.tag) if loc.tag else None
    up_to_date = tag_ref and store.tags().get(tag_ref) == _sha256(config)
    progress = Progress(out, not quiet and out.isatty())
    if progress.enabled:
        out.write(f"{loc.reference}: Pulling from {loc.repo}\n")
        for layer in layers:
            progress.set(short_digest(layer["digest"]), "Pulling fs layer")

    def fetch(layer, stop):
        step = f"fetching layer {short_digest(layer['digest'])}"
        resp = reg.request("GET", f"/v2/{loc.repo}/blobs/{layer['digest']}", step, scope)
        try:
            first = resp.read(CHUNK)
        except (http.client.HTTPException, OSError) as e:
            resp.close()
            raise reg.fail(step, "CONNECTION", f"connection lost ({e})") from None
        return _BlobReader(resp, first, layer, stop, progress)

    image_id = store.store_pulled(
        f"pull {loc}", [tag_ref] if tag_ref else [], config,
        [{"digest": x["digest"], "media_type": x["mediaType"], "size": x.get("size")}
         for x in layers], fetch, top, mt, digest_names=[] if tag_ref else [loc.name],
        platform=want if platform else None, log=log, on_layer=progress.on_layer)
    if not quiet:
        out.write(f"Digest: {top}\nStatus: " + ("Image is up to date" if up_to_date else
                                                "Downloaded newer image") + f" for {loc}\n")
    out.write(f"{loc}\n")
    out.flush()
    return image_id


# ------------------------------------------------------------------ push
def _blob_exists(reg, scope, digest):
    resp = reg.request("HEAD", f"/v2/{reg.repo}/blobs/{digest}",
                       f"checking blob {short_digest(digest)}", scope, ok=(200, 404))
    resp.read()
    return resp.status == 200


def _with_digest(url, digest):
    _load_net()
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})


def _upload(reg, scope, blob, chunk=PUSH_CHUNK):
    """POST an upload session, then one PUT (monolithic) or PATCH chunks and
    a closing PUT."""
    step = f"uploading blob {short_digest(blob['digest'])}"
    resp = reg.request("POST", f"/v2/{reg.repo}/blobs/uploads/", step, scope,
                       {"Content-Length": "0"}, b"", ok=(202,))
    resp.read()
    base = f"{reg.scheme}://{reg.host}/"
    url = urllib.parse.urljoin(base, resp.getheader("Location") or "")
    octets = {"Content-Type": "application/octet-stream"}
    with open(blob["path"], "rb") as f:
        if blob["size"] <= chunk:
            resp = reg.request("PUT", _with_digest(url, blob["digest"]), step, scope,
                               dict(octets, **{"Content-Length": str(blob["size"])}), f,
                               ok=(201,))
            resp.read()
            return
        offset = 0
        while offset < blob["size"]:
            data = f.read(chunk)
            resp = reg.request("PATCH", url, step, scope, dict(octets, **{
                "Content-Range": f"{offset}-{offset + len(data) - 1}",
                "Content-Length": str(len(data))}), data, ok=(202,))
            resp.read()
            url = urllib.parse.urljoin(url, resp.getheader("Location") or url)
            offset += len(data)
    resp = reg.request("PUT", _with_digest(url, blob["digest"]), step, scope,
                       {"Content-Length": "0"}, b"", ok=(201,))
    resp.read()


def push(root, ref, tls_verify=True, quiet=False, out=None, log=None, chunk=PUSH_CHUNK):
    """Push the stored image ref (NAME[:TAG]) to its registry; returns the
    manifest's digest."""
    out = out or sys.stdout
    loc = Location(ref)
    if loc.digest:
        raise UsageError(f"push takes NAME[:TAG], not a digest: {ref}")
    store = ImageStore(root)
    image = store.resolve(ref, log=log)
    mt, config, layers = store.push_contents(image)
    reg = Registry(loc.domain, "push", loc.repo, auth.credentials(root, loc.domain),
                   tls_verify)
    scope = f"repository:{loc.repo}:pull,push"
    if not quiet:
        out.write(f"The push refers to repository [{loc.domain}/{loc.repo}]\n")
    for blob in layers + [config]:
        if _blob_exists(reg, scope, blob["digest"]):
            state = "Layer already exists"
        else:
            _upload(reg, scope, blob, chunk)
            state = "Pushed"
        if not quiet:
            out.write(f"{short_digest(blob['digest'])}: {state}\n")
    desc = ("mediaType", "digest", "size")
    import json
    body = json.dumps({"schemaVersion": 2, "mediaType": mt,
                       "config": {k: config[k] for k in desc},
                       "layers": [{k: layer[k] for k in desc} for layer in layers]},
                      indent=3).encode()
    resp = reg.request("PUT", f"/v2/{loc.repo}/manifests/{loc.tag}", "putting the manifest",
                       scope, {"Content-Type": mt}, body, ok=(201,))
    resp.read()
    digest = _sha256(body)
    store.add_repo_digest(image.id, f"{loc.name}@{digest}")
    out.write(f"{loc.tag}: digest: {digest} size: {len(body)}\n")
    out.flush()
    return digest


# ------------------------------------------------------------------ login
def login(root, server, user, password, tls_verify=True):
    """Check user/password against the registry, then save them."""
    domain = server_domain(server)
    if not user or password is None:
        raise UsageError("login needs a username and a password")
    reg = Registry(domain, "login", None, (user, password), tls_verify)
    step = "checking the credentials"
    reg.probe(step)
    if reg.challenge and reg.challenge[0] == "bearer":
        reg.token(reg.challenge[1], None, step)
    elif reg.challenge:
        reg.request("GET", "/v2/", step).read()
    auth.save(root, domain, user, password)
    return domain


def logout(root, server):
    domain = server_domain(server)
    auth.remove(root, domain)
    return domain
