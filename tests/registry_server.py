"""A real registry for the tests: Debian's docker-registry (CNCF distribution
2.8) listening on 127.0.0.1 only, on a free port, with its storage in a
temporary directory.  Three authentication modes:

    none      anyone may pull and push
    htpasswd  Basic authentication (a file made by apache2-utils' htpasswd -B)
    token     Bearer tokens from TokenServer below: a small http.server that
              signs RS256 JWTs with `openssl dgst -sha256 -sign`; the registry
              trusts its certificate through `rootcertbundle`.  Repositories
              under private/ only for logged-in users; push only for them.

Each over plain http or over https with a CA made here by openssl.
(This module holds no tests.)
"""

import base64
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
SERVICE = "contain-test-registry"
ISSUER = "contain-test-issuer"


def have_registry():
    return os.access(REGISTRY, os.X_OK) and bool(shutil.which("openssl"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, input=None):
    res = subprocess.run(["openssl", *args], input=input, capture_output=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {res.stderr.decode()}")
    return res.stdout


def make_ca(d):
    """A CA and a server certificate for 127.0.0.1/localhost under d;
    returns (ca.crt, server.crt, server.key)."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out",
            ca_crt, "-subj", "/CN=contain test CA", "-days", "2")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """GET /token?service=..&scope=repository:NAME:ACTIONS -> {"token": JWT}."""

    def __init__(self, d, users, tls=None):
        self.users = dict(users)
        self.requests = []             # (user or None, scope) per token handed out
        self.key, self.crt = os.path.join(d, "token.key"), os.path.join(d, "token.crt")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", self.crt, "-subj", "/CN=contain test token issuer", "-days", "2")
        der = openssl("x509", "-in", self.crt, "-outform", "DER")
        self.x5c = base64.b64encode(der).decode()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server.handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.realm = f"{self.scheme}://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (_b64url(json.dumps(header).encode()) + "." +
                         _b64url(json.dumps(claims).encode())).encode()
        sig = openssl("dgst", "-sha256", "-sign", self.key, input=signing_input)
        return signing_input.decode() + "." + _b64url(sig)

    def handle(self, req):
        import urllib.parse
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(req.path).query)
        user = None
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) != password:
                body = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                               "message": "wrong username or password"}]})
                req.send_response(401)
                req.send_header("Content-Type", "application/json")
                req.end_headers()
                req.wfile.write(body.encode())
                return
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",")
                       if user or (a == "pull" and not name.startswith("private/"))]
            access.append({"type": kind, "name": name, "actions": granted})
            self.requests.append((user, scope))
        now = int(time.time())
        token = self.sign({"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 300,
                           "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                           "access": access})
        body = json.dumps({"token": token, "expires_in": 300}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


class RegistryServer:
    """docker-registry on 127.0.0.1:<port> with storage under d."""

    def __init__(self, d, auth=None, tls=False, users=None):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.storage = os.path.join(d, "storage")
        self.port = free_port()
        self.domain = f"127.0.0.1:{self.port}"
        self.users = dict(users or {"admin": "secret"})
        self.token_server = None
        self.tls = make_ca(os.path.join(d, "pki")) if tls else None
        self.ca = self.tls[0] if tls else None
        config = ["version: 0.1", "log:", "  level: error", "  accesslog:",
                  "    disabled: true", "storage:", "  filesystem:",
                  f"    rootdirectory: {self.storage}", "  delete:", "    enabled: true",
                  "http:", f"  addr: 127.0.0.1:{self.port}", "  secret: contain-test"]
        if tls:
            config += ["  tls:", f"    certificate: {self.tls[1]}", f"    key: {self.tls[2]}"]
        if auth == "htpasswd":
            path = os.path.join(d, "htpasswd")
            with open(path, "w") as f:
                for user, password in self.users.items():
                    f.write(subprocess.run(["htpasswd", "-Bbn", user, password],
                                           capture_output=True, text=True,
                                           check=True).stdout.strip() + "\n")
            config += ["auth:", "  htpasswd:", "    realm: contain-test", f"    path: {path}"]
        elif auth == "token":
            self.token_server = TokenServer(d, self.users, self.tls[1:] if tls else None)
            config += ["auth:", "  token:", f"    realm: {self.token_server.realm}",
                       f"    service: {SERVICE}", f"    issuer: {ISSUER}",
                       f"    rootcertbundle: {self.token_server.crt}"]
        self.config = os.path.join(d, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(config) + "\n")
        self.log = open(os.path.join(d, "registry.log"), "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout=30):
        scheme = "https" if self.tls else "http"
        ctx = ssl.create_default_context(cafile=self.ca) if self.tls else None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                with open(self.log.name, "rb") as f:
                    raise RuntimeError(f"docker-registry exited: {f.read()[-2000:]!r}")
            try:
                urllib.request.urlopen(f"{scheme}://{self.domain}/v2/", timeout=2, context=ctx)
                return
            except urllib.error.HTTPError:
                return                           # 401: it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("docker-registry did not start listening")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.token_server:
            self.token_server.stop()

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256",
                            hexd[:2], hexd, "data")

    def skopeo_copy(self, src, repo_tag, *extra):
        """skopeo copy SRC docker://127.0.0.1:PORT/REPO:TAG (as admin when auth is on)."""
        cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false", *extra]
        if self.users and (self.token_server or os.path.exists(os.path.join(self.dir,
                                                                            "htpasswd"))):
            user, password = next(iter(self.users.items()))
            cmd.append(f"--dest-creds={user}:{password}")
        res = subprocess.run(cmd + [src, f"docker://{self.domain}/{repo_tag}"],
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"skopeo copy {src} {repo_tag}: {res.stderr}")


class FaultyProxy:
    """A TCP proxy on 127.0.0.1 in front of a registry that, once a
    connection has carried `after` bytes towards the client, either drops it
    (mode 'drop') or stops forwarding and sets `stalled` (mode 'stall')."""

    def __init__(self, target_port, after, mode):
        self.target, self.after, self.mode = target_port, after, mode
        self.stalled = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.domain = f"127.0.0.1:{self.port}"
        self.closing = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True),
                             daemon=True).start()

    def _pump(self, src, dst, to_client):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if to_client and sent + len(data) > self.after:
                    dst.sendall(data[:max(0, self.after - sent)])
                    if self.mode == "stall":
                        self.stalled.set()
                        while not self.closing:
                            time.sleep(0.05)
                    break
                dst.sendall(data)
                sent += len(data) if to_client else 0
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.closing = True
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass
