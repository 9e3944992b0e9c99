"""Pull, push, login: against a real registry (Debian's docker-registry,
distribution 2.8) on 127.0.0.1, in three authentication modes, over http
and https; images put there with skopeo, with raw API calls and with
`contain push`.  Plus unit tests of names, challenges and credentials."""

import gzip
import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from tests import support
from tests.registry_server import FaultyProxy, RegistryServer, have_registry
from tests.test_images_kit import D, F, Img, W, make_tar, oci_layout, sha

from contain.engine import auth, registry
from contain.errors import UsageError

HAVE_ZSTD_MODULE = importlib.util.find_spec("compression") is not None and \
    importlib.util.find_spec("compression.zstd") is not None
needs_registry = unittest.skipUnless(
    have_registry() and shutil.which("skopeo") and shutil.which("htpasswd") and support.IS_ROOT,
    "needs root, docker-registry, skopeo, htpasswd and openssl")


# ------------------------------------------------------------------ units
class NamesTest(unittest.TestCase):
    def test_docker_hub_names(self):
        loc = registry.Location("busybox")
        self.assertEqual((loc.domain, loc.host, loc.repo, loc.tag),
                         ("docker.io", "registry-1.docker.io", "library/busybox", "latest"))
        self.assertEqual(str(loc), "docker.io/library/busybox:latest")
        self.assertEqual(registry.Location("me/app:v1").repo, "me/app")

    def test_registry_names_and_digests(self):
        loc = registry.Location("127.0.0.1:5000/team/app:v2")
        self.assertEqual((loc.domain, loc.host, loc.repo, loc.tag, loc.name),
                         ("127.0.0.1:5000", "127.0.0.1:5000", "team/app", "v2",
                          "127.0.0.1:5000/team/app"))
        d = "sha256:" + "a" * 64
        loc = registry.Location(f"localhost:5000/app@{d}")
        self.assertEqual((loc.digest, loc.tag, loc.reference), (d, None, d))
        with self.assertRaises(UsageError):
            registry.Location("app:-bad")

    def test_server_names(self):
        self.assertEqual(registry.server_domain("https://index.docker.io/v1/"), "docker.io")
        self.assertEqual(registry.server_domain("127.0.0.1:5000/"), "127.0.0.1:5000")
        self.assertTrue(registry.is_loopback("127.0.0.1:5000"))
        self.assertTrue(registry.is_loopback("localhost"))
        self.assertTrue(registry.is_loopback("[::1]:5000"))
        self.assertFalse(registry.is_loopback("registry.example:5000"))

    def test_tls_verify_false_only_for_loopback_or_named(self):
        with self.assertRaisesRegex(UsageError, "tls-verify=false is allowed only"):
            registry.Registry("registry.example", "pull", "a", tls_verify=False)
        registry.Registry("127.0.0.1:5000", "pull", "a", tls_verify=False)
        os.environ["CONTAIN_INSECURE_REGISTRIES"] = "other.example,registry.example:5000"
        try:
            registry.Registry("registry.example:5000", "pull", "a", tls_verify=False)
        finally:
            del os.environ["CONTAIN_INSECURE_REGISTRIES"]


class ChallengeTest(unittest.TestCase):
    def test_bearer(self):
        kind, params = auth.parse_challenge(
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/busybox:pull,push"')
        self.assertEqual(kind, "bearer")
        self.assertEqual(params, {"realm": "https://auth.docker.io/token",
                                  "service": "registry.docker.io",
                                  "scope": "repository:library/busybox:pull,push"})

    def test_basic_and_escapes(self):
        self.assertEqual(auth.parse_challenge('Basic realm="a \\"b\\", c"'),
                         ("basic", {"realm": 'a "b", c'}))
        self.assertEqual(auth.parse_challenge("Bearer realm=x, error=insufficient_scope"),
                         ("bearer", {"realm": "x", "error": "insufficient_scope"}))


class CredentialsTest(unittest.TestCase):
    def test_docker_shaped_file_of_mode_0600(self):
        root = tempfile.mkdtemp(prefix="contain-auth-")
        self.addCleanup(shutil.rmtree, root)
        auth.save(root, "127.0.0.1:5000", "me", "pa:ss")
        auth.save(root, "docker.io", "hub", "x")
        path = os.path.join(root, "auth.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            data = json.load(f)
        self.assertEqual(data["auths"]["127.0.0.1:5000"], {"auth": "bWU6cGE6c3M="})
        self.assertIn("https://index.docker.io/v1/", data["auths"])
        self.assertEqual(auth.credentials(root, "127.0.0.1:5000"), ("me", "pa:ss"))
        auth.remove(root, "127.0.0.1:5000")
        self.assertIsNone(auth.credentials(root, "127.0.0.1:5000"))
        with self.assertRaisesRegex(Exception, "not logged in"):
            auth.remove(root, "127.0.0.1:5000")

    def test_damaged_file_is_one_clear_error(self):
        root = tempfile.mkdtemp(prefix="contain-auth-")
        self.addCleanup(shutil.rmtree, root)
        with open(os.path.join(root, "auth.json"), "w") as f:
            f.write("{not json")
        with self.assertRaisesRegex(Exception, "damaged"):
            auth.credentials(root, "x")


# ------------------------------------------------------------------ helpers
def layer(files, compress="gzip"):
    return make_tar([D("etc")] + [F(f"etc/{k}", v) for k, v in files.items()], compress)


def raw_upload(server, repo, ref, blobs, manifest, media_type):
    """Put blobs and a manifest into an auth-less http registry, by the API."""
    base = f"http://{server.domain}/v2/{repo}"
    for blob in blobs:
        req = urllib.request.Request(base + "/blobs/uploads/", method="POST", data=b"")
        location = urllib.request.urlopen(req).headers["Location"]
        url = urllib.parse.urljoin(base, location)
        url += ("&" if "?" in url else "?") + "digest=" + sha(blob)
        urllib.request.urlopen(urllib.request.Request(
            url, data=blob, method="PUT", headers={"Content-Type": "application/octet-stream"}))
    req = urllib.request.Request(f"{base}/manifests/{ref}", data=manifest, method="PUT",
                                 headers={"Content-Type": media_type})
    urllib.request.urlopen(req)
    return sha(manifest)


def image_blobs(img):
    return img.layers + [img.config]


def docker_manifest(img):
    m = json.loads(img.manifest())
    m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    m["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    for layer in m["layers"]:
        layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    return json.dumps(m).encode()


class RegistryCase(unittest.TestCase):
    """One registry per class; a fresh state root per test."""
    AUTH = None
    TLS = False

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="contain-reg-", dir=support.WORK)
        cls.server = RegistryServer(os.path.join(cls.work, "registry"), auth=cls.AUTH,
                                    tls=cls.TLS)
        cls.certs = os.path.join(cls.work, "certs.d")
        if cls.TLS:
            os.makedirs(os.path.join(cls.certs, cls.server.domain))
            shutil.copy(cls.server.ca, os.path.join(cls.certs, cls.server.domain, "ca.crt"))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="state-", dir=self.work)
        self.scratch = tempfile.mkdtemp(prefix="scratch-", dir=self.work)

    def contain(self, *args, input=None, env=None):
        extra = {"CONTAIN_ROOT": self.root, "CONTAIN_CERTS_DIR": self.certs}
        extra.update(env or {})
        return support.contain(*args, input=input, timeout=120, extra_env=extra)

    def ok(self, *args, **kw):
        res = self.contain(*args, **kw)
        self.assertEqual(res.returncode, 0, f"contain {' '.join(args)}: {res.stderr}")
        return res

    def login(self):
        self.ok("login", "-u", "admin", "--password-stdin", self.server.domain,
                input="secret\n")

    def put(self, repo_tag, images, **kw):
        """An OCI layout of images (the first tagged 'v') copied by skopeo."""
        d = tempfile.mkdtemp(prefix="layout-", dir=self.scratch)
        images[0].refs = ["v"]
        oci_layout(d, images, **kw)
        self.server.skopeo_copy(f"oci:{d}:v", repo_tag)
        return f"{self.server.domain}/{repo_tag}"

    def store_state(self):
        """(tags, records, layer dirs, tmp entries) of the store."""
        top = os.path.join(self.root, "images")

        def ls(*p):
            try:
                return sorted(os.listdir(os.path.join(top, *p)))
            except FileNotFoundError:
                return []
        tags = {}
        if os.path.exists(os.path.join(top, "tags.json")):
            with open(os.path.join(top, "tags.json")) as f:
                tags = json.load(f)
        return tags, ls("records"), ls("layers"), ls("tmp")

    def inspect(self, ref):
        return json.loads(self.ok("image", "inspect", ref).stdout)[0]


class RoundTrip:
    """Run in every auth mode, over http and https."""

    def test_pull_by_tag_and_digest_then_push_and_pull_back(self):
        img = Img([], [layer({"a": b"one"}), layer({"b": b"two"})])
        ref = self.put("private/app:v1", [img])
        if self.AUTH:
            res = self.contain("pull", ref)
            self.assertEqual(res.returncode, 125)
            self.assertIn("UNAUTHORIZED", res.stderr)
            self.assertIn(f"pull {self.server.domain}/private/app", res.stderr)
            self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
            self.login()
        out = self.ok("pull", ref).stdout
        self.assertIn(f"Status: Downloaded newer image for {ref}", out)
        digest = out.split("Digest: ")[1].split()[0]
        info = self.inspect(ref)
        self.assertEqual(info["Id"], img.id)
        self.assertEqual(info["RepoDigests"], [f"{self.server.domain}/private/app@{digest}"])
        self.assertIn(digest, self.ok("images", "--digests").stdout)
        # by digest, into a fresh store
        self.ok("rmi", ref)
        self.ok("pull", "-q", f"{self.server.domain}/private/app@{digest}")
        self.assertEqual(self.inspect(f"{self.server.domain}/private/app@{digest}")["Id"], img.id)
        # push under another name, remove everything, pull it back
        pushed = f"{self.server.domain}/private/copy:v2"
        self.ok("tag", img.id, pushed)
        out = self.ok("push", pushed).stdout
        self.assertIn("v2: digest: sha256:", out)
        self.ok("rmi", "-f", img.id)
        self.assertEqual(self.store_state()[1], [])
        self.ok("pull", pushed)
        self.assertEqual(self.inspect(pushed)["Id"], img.id)
        self.assertEqual(self.inspect(pushed)["RootFS"]["Layers"],
                         json.loads(img.config)["rootfs"]["diff_ids"])


# ------------------------------------------------------------------ no auth, http: the details
@needs_registry
class PullTest(RegistryCase, RoundTrip):

    def test_two_layers_with_a_whiteout(self):
        low = layer({"a": b"one", "keep": b"k"})
        high = make_tar([D("etc"), W("etc/a"), F("etc/c", b"three")], "gzip")
        ref = self.put("wh/app:v1", [Img([], [low, high])])
        self.ok("pull", ref)
        top, bottom = self.inspect(ref)["GraphDriver"]["Data"]["LowerDir"].split(":")
        with open(os.path.join(bottom, "etc/a"), "rb") as f:
            self.assertEqual(f.read(), b"one")
        st = os.lstat(os.path.join(top, "etc/a"))
        self.assertTrue(stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, "a whiteout")
        with open(os.path.join(top, "etc/c"), "rb") as f:
            self.assertEqual(f.read(), b"three")

    def test_uncompressed_layer(self):
        ref = self.put("plain/app:v1", [Img([], [layer({"p": b"plain"}, None)])])
        self.ok("pull", ref)
        self.assertEqual(len(self.inspect(ref)["RootFS"]["Layers"]), 1)

    def test_oci_index_and_docker_manifest_list_with_platform(self):
        amd = Img([], [layer({"arch": b"amd64"})], arch="amd64")
        arm = Img([], [layer({"arch": b"arm64"})], arch="arm64")
        for img in (amd, arm):
            raw_upload(self.server, "multi/app", img.id.replace(":", "-"),
                       image_blobs(img), img.manifest(), "application/vnd.oci.image.manifest.v1+json")
        oci_index = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": sha(i.manifest()), "size": len(i.manifest()),
                           "platform": {"os": "linux", "architecture": a}}
                          for i, a in ((amd, "amd64"), (arm, "arm64"))]}).encode()
        raw_upload(self.server, "multi/app", "oci", [], oci_index,
                   "application/vnd.oci.image.index.v1+json")
        damd, darm = docker_manifest(amd), docker_manifest(arm)
        for m, tag in ((damd, "d-amd"), (darm, "d-arm")):
            raw_upload(self.server, "multi/app", tag, [], m,
                       "application/vnd.docker.distribution.manifest.v2+json")
        docker_list = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "digest": sha(m), "size": len(m),
                           "platform": {"os": "linux", "architecture": a}}
                          for m, a in ((damd, "amd64"), (darm, "arm64"))]}).encode()
        raw_upload(self.server, "multi/app", "docker", [], docker_list,
                   "application/vnd.docker.distribution.manifest.list.v2+json")
        host = {"x86_64": amd, "aarch64": arm}.get(os.uname().machine)
        for tag, index in (("oci", oci_index), ("docker", docker_list)):
            ref = f"{self.server.domain}/multi/app:{tag}"
            self.ok("pull", "--platform", "linux/arm64", ref)
            info = self.inspect(ref)
            self.assertEqual((info["Id"], info["Architecture"]), (arm.id, "arm64"))
            self.assertIn(f"{self.server.domain}/multi/app@{sha(index)}", info["RepoDigests"])
            if host:
                self.ok("pull", ref)
                self.assertEqual(self.inspect(ref)["Id"], host.id)
            res = self.contain("pull", "--platform", "linux/s390x", ref)
            self.assertEqual(res.returncode, 125)
            self.assertIn("no image for platform linux/s390x (it has: linux/amd64, "
                          "linux/arm64)", res.stderr)

    def test_zstd_layer(self):
        if not shutil.which("zstd"):
            self.skipTest("needs the zstd program to make the layer")
        tar = make_tar([D("etc"), F("etc/z", b"zstd " * 100)])
        blob = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True,
                              check=True).stdout
        img = Img([], [blob])
        config = json.loads(img.config)
        config["rootfs"]["diff_ids"] = [sha(tar)]
        img.config = json.dumps(config).encode()
        img.id = sha(img.config)
        manifest = img.manifest({0: "application/vnd.oci.image.layer.v1.tar+zstd"})
        raw_upload(self.server, "zstd/app", "v1", image_blobs(img), manifest,
                   "application/vnd.oci.image.manifest.v1+json")
        res = self.contain("pull", f"{self.server.domain}/zstd/app:v1")
        if HAVE_ZSTD_MODULE:
            self.assertEqual(res.returncode, 0, res.stderr)
        else:
            self.assertEqual(res.returncode, 125)
            self.assertIn("compression.zstd", res.stderr)
            self.assertEqual(self.store_state(), ({}, [], [], []))

    def test_flipped_blob_is_refused_and_nothing_stored(self):
        good, bad = layer({"g": b"good"}), layer({"b": b"bad" * 1000})
        ref = self.put("flip/app:v1", [Img([], [good, bad])])
        path = self.server.blob_path(sha(bad))
        with open(path, "r+b") as f:
            f.seek(len(bad) // 2)
            byte = f.read(1)
            f.seek(len(bad) // 2)
            f.write(bytes([byte[0] ^ 0xFF]))
        res = self.contain("pull", ref)
        self.assertEqual(res.returncode, 125)
        self.assertRegex(res.stderr, r"does not match its digest|corrupted")
        self.assertEqual(self.store_state(), ({}, [], [], []))

    def test_layer_stored_by_an_earlier_pull_is_not_fetched(self):
        base = layer({"base": b"shared" * 500})
        ref1 = self.put("cache/one:v1", [Img([], [base, layer({"one": b"1"})])])
        ref2 = self.put("cache/two:v1", [Img([], [base, layer({"two": b"2"})])])
        self.ok("pull", ref1)
        with open(self.server.blob_path(sha(base)), "r+b") as f:
            f.write(b"\0\0\0\0")     # were it fetched again, the pull would fail
        self.ok("pull", ref2)
        self.assertEqual(len(self.store_state()[2]), 3)

    def test_two_pulls_sharing_a_layer_at_once(self):
        base = layer({"base": os.urandom(200_000).hex().encode()})
        refs = [self.put(f"share/n{i}:v1", [Img([], [base, layer({str(i): b"x"})])])
                for i in range(2)]
        procs = [subprocess.Popen(support.contain_cmd("pull", "-q", r), env=support.env(
            CONTAIN_ROOT=self.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for r in refs]
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        tags, records, layers, tmp = self.store_state()
        self.assertEqual((len(records), len(layers), tmp), (2, 3, []))

    def test_dropped_connection_leaves_nothing_and_a_retry_completes(self):
        big = layer({"big": os.urandom(3 << 20)}, None)
        self.put("drop/app:v1", [Img([], [big])])
        proxy = FaultyProxy(self.server.port, 1 << 20, "drop")
        self.addCleanup(proxy.stop)
        res = self.contain("pull", f"{proxy.domain}/drop/app:v1")
        self.assertEqual(res.returncode, 125)
        self.assertIn("connection lost", res.stderr)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
        self.assertEqual(self.store_state(), ({}, [], [], []))
        self.ok("pull", f"{self.server.domain}/drop/app:v1")

    def test_killed_pull_leaves_no_image_and_a_retry_completes(self):
        big = layer({"big": os.urandom(3 << 20)}, None)
        self.put("kill/app:v1", [Img([], [big, layer({"s": b"small"})])])
        proxy = FaultyProxy(self.server.port, 1 << 20, "stall")
        self.addCleanup(proxy.stop)
        p = subprocess.Popen(support.contain_cmd("pull", f"{proxy.domain}/kill/app:v1"),
                             env=support.env(CONTAIN_ROOT=self.root),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(proxy.stalled.wait(60), "the pull never reached the big layer")
        time.sleep(0.2)
        p.send_signal(signal.SIGKILL)
        p.wait()
        tags, records, _, _ = self.store_state()
        self.assertEqual((tags, records), ({}, []))
        self.ok("pull", f"{self.server.domain}/kill/app:v1")
        tags, records, layers, tmp = self.store_state()
        self.assertEqual((len(records), len(layers), tmp), (1, 2, []))

    def test_registry_errors_are_one_line_with_the_code(self):
        res = self.contain("pull", f"{self.server.domain}/nothing/here:v1")
        self.assertEqual(res.returncode, 125)
        self.assertRegex(res.stderr, r"^contain: pull 127\.0\.0\.1:\d+/nothing/here: fetching "
                                     r"the manifest v1: (NAME_UNKNOWN|MANIFEST_UNKNOWN)")
        self.put("known/app:v1", [Img([], [layer({"k": b"k"})])])
        res = self.contain("pull", f"{self.server.domain}/known/app:nope")
        self.assertIn("MANIFEST_UNKNOWN", res.stderr)
        self.assertEqual(len(res.stderr.strip().splitlines()), 1)
        res = self.contain("pull", "--tls-verify=false", "registry.example/app")
        self.assertEqual(res.returncode, 125)
        self.assertIn("allowed only for loopback", res.stderr)

    def test_push_docker_schema2_as_loaded_and_in_chunks(self):
        from tests.test_images_kit import docker_archive
        img = Img(["arch/app:v1"], [layer({"d": b"docker"}), layer({"e": os.urandom(50_000)})])
        archive = docker_archive(os.path.join(self.scratch, "a.tar"), [img])
        self.ok("load", "-i", archive)
        ref = f"{self.server.domain}/arch/app:v1"
        self.ok("tag", "arch/app:v1", ref)
        digest = registry.push(self.root, ref, out=open(os.devnull, "w"), chunk=4096)
        req = urllib.request.Request(f"http://{self.server.domain}/v2/arch/app/manifests/v1",
                                     headers={"Accept": registry.ACCEPT})
        with urllib.request.urlopen(req) as resp:
            self.assertEqual(resp.headers["Content-Type"],
                             "application/vnd.docker.distribution.manifest.v2+json")
            self.assertEqual(sha(resp.read()), digest)
        out = self.ok("push", ref).stdout
        self.assertEqual(out.count("Layer already exists"), 3)
        self.ok("rmi", ref, "arch/app:v1")
        self.ok("pull", ref)
        self.assertEqual(self.inspect(ref)["Id"], img.id)

    def test_progress_lines_on_a_terminal_only(self):
        ref = self.put("tty/app:v1", [Img([], [layer({"t": b"t"}), layer({"u": b"u"})])])
        import pty
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.update(support.env(CONTAIN_ROOT=self.root))
            os.execv(support.PYTHON, support.contain_cmd("pull", ref))
        out = support.read_pty(fd, timeout=60)
        os.waitpid(pid, 0)
        self.assertEqual(out.count("Pull complete"), 2, out)
        self.ok("rmi", ref)
        out = self.ok("pull", ref).stdout
        self.assertNotIn("Pull complete", out)
        self.assertEqual(self.ok("pull", "-q", ref).stdout.strip(), ref)

    def test_run_pulls_a_missing_image(self):
        rootfs = support.busybox_rootfs()
        tar = os.path.join(self.scratch, "bb.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        with open(tar, "rb") as f:
            blob = gzip.compress(f.read(), 1)
        ref = self.put("bb/box:v1", [Img([], [blob], {"Cmd": ["sh"]})])
        res = self.contain("run", "--rm", "--pull", "never", ref, "true")
        self.assertEqual(res.returncode, 125)
        self.assertIn("no such image", res.stderr)
        res = self.contain("run", "--rm", ref, "echo", "pulled")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, "pulled\n")
        self.assertIn(f"Unable to find image '{ref}' locally", res.stderr)
        support.assert_no_container_left(self)


# ------------------------------------------------------------------ the other modes
@needs_registry
class PullTLSTest(RegistryCase, RoundTrip):
    TLS = True

    def test_untrusted_certificate_and_tls_verify_false(self):
        ref = self.put("tls/app:v1", [Img([], [layer({"t": b"tls"})])])
        res = self.contain("pull", ref, env={"CONTAIN_CERTS_DIR": self.scratch})
        self.assertEqual(res.returncode, 125)
        self.assertIn("not trusted", res.stderr)
        self.assertIn(f"{self.scratch}/{self.server.domain}/ca.crt", res.stderr)
        self.ok("pull", "--tls-verify=false", ref, env={"CONTAIN_CERTS_DIR": self.scratch})


@needs_registry
class BasicAuthTest(RegistryCase, RoundTrip):
    AUTH = "htpasswd"

    def test_wrong_password_saves_nothing_and_logout(self):
        res = self.contain("login", "-u", "admin", "--password-stdin", self.server.domain,
                           input="wrong\n")
        self.assertEqual(res.returncode, 125)
        self.assertIn("UNAUTHORIZED", res.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "auth.json")))
        self.login()
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.root, "auth.json")).st_mode),
                         0o600)
        self.ok("logout", self.server.domain)
        res = self.contain("logout", self.server.domain)
        self.assertEqual(res.returncode, 125)


@needs_registry
class BasicAuthTLSTest(RegistryCase, RoundTrip):
    AUTH = "htpasswd"
    TLS = True


@needs_registry
class TokenAuthTest(RegistryCase, RoundTrip):
    AUTH = "token"

    def test_private_repository_needs_login_and_tokens_are_scoped(self):
        self.put("private/app:v1", [Img([], [layer({"p": b"private"})])])
        self.put("public/app:v1", [Img([], [layer({"q": b"public"})])])
        self.ok("pull", f"{self.server.domain}/public/app:v1")        # anonymous
        res = self.contain("pull", f"{self.server.domain}/private/app:v1")
        self.assertEqual(res.returncode, 125)
        self.assertIn("UNAUTHORIZED", res.stderr)
        self.assertIn("log in first", res.stderr)
        res = self.contain("login", "-u", "admin", "--password-stdin", self.server.domain,
                           input="wrong\n")
        self.assertEqual(res.returncode, 125)
        self.assertIn("UNAUTHORIZED", res.stderr)
        self.login()
        before = len(self.server.token_server.requests)
        self.ok("pull", f"{self.server.domain}/private/app:v1")
        asked = self.server.token_server.requests[before:]
        self.assertEqual(asked, [("admin", "repository:private/app:pull")])


@needs_registry
class TokenAuthTLSTest(RegistryCase, RoundTrip):
    AUTH = "token"
    TLS = True


if __name__ == "__main__":
    unittest.main()
