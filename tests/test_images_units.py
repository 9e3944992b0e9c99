"""Pure logic of the image area: references, Docker's run rules for an
image config, the overlay option string, platforms, --change, presentation."""

import os
import unittest

from tests import support  # noqa: F401  (puts the project on sys.path)
from contain.engine import images, refs
from contain.errors import ContainError, UsageError


class TestReferences(unittest.TestCase):
    def test_valid_references(self):
        cases = {
            "busybox": ("busybox", "latest"),
            "busybox:1.36": ("busybox", "1.36"),
            "library/busybox:v1": ("library/busybox", "v1"),
            "docker.io/library/busybox:1": ("busybox", "1"),
            "docker.io/me/app": ("me/app", "latest"),
            "localhost:5000/team/app:v2": ("localhost:5000/team/app", "v2"),
            "registry.example.com/a/b/c:x_y.z-1": ("registry.example.com/a/b/c", "x_y.z-1"),
            "my-app__x.y": ("my-app__x.y", "latest"),
            "a" * 200: ("a" * 200, "latest"),
            "app:" + "T" * 128: ("app", "T" * 128),
            "alpine@sha256:" + "a" * 64: ("alpine", "@sha256:" + "a" * 64),
            "alpine:3@sha256:" + "b" * 64: ("alpine", "@sha256:" + "b" * 64),
            "[::1]:5000/app:1": ("[::1]:5000/app", "1"),
        }
        for text, expected in cases.items():
            with self.subTest(text=text):
                self.assertEqual(refs.parse_reference(text), expected)

    def test_invalid_references_name_the_culprit(self):
        for text in ("Busybox", "busybox:", ":tag", "bad name", "app:-x", "app:.x",
                     "app:" + "t" * 129, "a//b", "a/", "-app", "app-", "app..x",
                     "alpine@sha256:abc", "alpine@md5:" + "a" * 64, "a" * 256,
                     "0123456789abcdef" * 4, "", "app:tag:x", "UPPER/Case/x"):
            with self.subTest(text=text):
                with self.assertRaises(UsageError) as cm:
                    refs.parse_reference(text)
                self.assertIn(f"'{text}'", str(cm.exception))
                self.assertNotIn("\n", str(cm.exception))

    def test_normalize_and_full_name(self):
        self.assertEqual(refs.normalize("docker.io/library/busybox"), "busybox:latest")
        self.assertEqual(refs.full_name("busybox"), "docker.io/library/busybox")
        self.assertEqual(refs.full_name("me/app"), "docker.io/me/app")
        self.assertEqual(refs.full_name("quay.io/x/y"), "quay.io/x/y")
        self.assertEqual(refs.format_reference("a", "@sha256:" + "c" * 64),
                         "a@sha256:" + "c" * 64)


class TestApplyImageConfig(unittest.TestCase):
    IMG = {"Entrypoint": ["/entry.sh"], "Cmd": ["serve", "--port", "80"],
           "Env": ["PATH=/opt/bin:/bin", "MODE=prod", "KEEP=1"],
           "WorkingDir": "/app", "User": "app", "StopSignal": "SIGQUIT",
           "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"a": "1", "b": "2"}}

    def test_image_defaults(self):
        r = images.apply_image_config(self.IMG)
        self.assertEqual(r["argv"], ["/entry.sh", "serve", "--port", "80"])
        self.assertEqual(r["workdir"], "/app")
        self.assertEqual(r["user"], "app")
        self.assertEqual(r["stop_signal"], "SIGQUIT")
        self.assertEqual(r["exposed_ports"], ["53/udp", "80/tcp"])
        self.assertEqual(r["env"], ["PATH=/opt/bin:/bin", "MODE=prod", "KEEP=1"])

    def test_user_args_replace_cmd_not_entrypoint(self):
        r = images.apply_image_config(self.IMG, ["debug"])
        self.assertEqual(r["argv"], ["/entry.sh", "debug"])

    def test_entrypoint_override_drops_image_cmd(self):
        r = images.apply_image_config(self.IMG, [], entrypoint="/bin/sh")
        self.assertEqual(r["argv"], ["/bin/sh"])
        r = images.apply_image_config(self.IMG, ["-c", "id"], entrypoint="/bin/sh")
        self.assertEqual(r["argv"], ["/bin/sh", "-c", "id"])
        # one word, as in Docker: not split on spaces
        r = images.apply_image_config(self.IMG, [], entrypoint="/bin/my tool")
        self.assertEqual(r["argv"], ["/bin/my tool"])

    def test_empty_entrypoint_clears_it(self):
        r = images.apply_image_config(self.IMG, ["echo", "hi"], entrypoint="")
        self.assertEqual(r["argv"], ["echo", "hi"])
        with self.assertRaises(UsageError):
            images.apply_image_config(self.IMG, [], entrypoint="")

    def test_cmd_only_image(self):
        img = {"Cmd": ["sh"]}
        self.assertEqual(images.apply_image_config(img)["argv"], ["sh"])
        self.assertEqual(images.apply_image_config(img, ["ls", "/"])["argv"], ["ls", "/"])

    def test_no_command_at_all(self):
        with self.assertRaises(UsageError) as cm:
            images.apply_image_config({})
        self.assertIn("no command", str(cm.exception))

    def test_env_merge_user_wins_in_place(self):
        r = images.apply_image_config(self.IMG, env=["MODE=dev", "NEW=x", "HOSTONLY"],
                                      host_env={"HOSTONLY": "h"})
        self.assertEqual(r["env"], ["PATH=/opt/bin:/bin", "MODE=dev", "KEEP=1", "NEW=x",
                                    "HOSTONLY=h"])
        r = images.apply_image_config(self.IMG, env=["UNSET"], host_env={})
        self.assertNotIn("UNSET", " ".join(r["env"]))

    def test_default_path(self):
        r = images.apply_image_config({"Cmd": ["sh"]})
        self.assertEqual(r["env"], [images.DEFAULT_PATH_ENV])

    def test_workdir_user_labels(self):
        r = images.apply_image_config(self.IMG, workdir="/tmp", user="0:0",
                                      labels={"b": "user", "c": "3"})
        self.assertEqual((r["workdir"], r["user"]), ("/tmp", "0:0"))
        self.assertEqual(r["labels"], {"a": "1", "b": "user", "c": "3"})
        self.assertEqual(images.apply_image_config({"Cmd": ["x"], "WorkingDir": "rel"})
                         ["workdir"], "/rel")
        self.assertEqual(images.apply_image_config({"Cmd": ["x"]})["workdir"], "/")
        with self.assertRaises(UsageError):
            images.apply_image_config(self.IMG, workdir="relative")

    def test_runtime_cfg_form(self):
        cfg = {"argv": [], "entrypoint": None, "env": ["MODE=dev"], "cwd": None,
               "user": None, "stop_signal": None, "labels": {"x": "y"}}
        out = images.apply_image_config(self.IMG, cfg)
        self.assertEqual(out["argv"], ["/entry.sh", "serve", "--port", "80"])
        self.assertEqual(out["cwd"], "/app")
        self.assertEqual(out["user"], "app")
        self.assertEqual(out["stop_signal"], 3)            # SIGQUIT
        self.assertIn("MODE=dev", out["env"])
        self.assertEqual(out["labels"], {"a": "1", "b": "2", "x": "y"})
        self.assertEqual(out["exposed_ports"], ["53/udp", "80/tcp"])
        cfg.update(stop_signal=9, cwd="/w", user="nobody", entrypoint="")
        cfg["argv"] = ["true"]
        out = images.apply_image_config(self.IMG, cfg)
        self.assertEqual((out["argv"], out["stop_signal"], out["cwd"], out["user"]),
                         (["true"], 9, "/w", "nobody"))
        out = images.apply_image_config({"Cmd": ["sh"]}, {"argv": []})
        self.assertIsNone(out["user"])
        self.assertIsNone(out["stop_signal"])


class TestOverlayData(unittest.TestCase):
    def test_topmost_first_absolute(self):
        data, cwd = images.overlay_mount_data(["/s/l/a/diff", "/s/l/b/diff"], "/c/up", "/c/wk")
        self.assertEqual(data, "lowerdir=/s/l/b/diff:/s/l/a/diff,upperdir=/c/up,workdir=/c/wk")
        self.assertIsNone(cwd)

    def test_many_layers_use_short_relative_paths(self):
        base = "/var/lib/contain/images/layers"
        dirs = [f"{base}/{i:012x}/diff" for i in range(150)]
        data, cwd = images.overlay_mount_data(dirs, "/u" * 40, "/w" * 40)
        self.assertEqual(cwd, base)
        self.assertLess(len(data), os.sysconf("SC_PAGE_SIZE"))
        lowers = data.split(",")[0][len("lowerdir="):].split(":")
        self.assertEqual(lowers[0], f"{149:012x}/diff")
        self.assertEqual(lowers[-1], f"{0:012x}/diff")
        self.assertEqual(len(lowers), 150)

    def test_too_many_layers(self):
        dirs = [f"/x/{i:064x}/diff" for i in range(100)]
        with self.assertRaises(ContainError) as cm:
            images.overlay_mount_data(dirs, "/u", "/w")
        self.assertIn("100 layers", str(cm.exception))

    def test_escaping(self):
        data, _ = images.overlay_mount_data(["/a:b/c,d"], "/u", "/w")
        self.assertEqual(data, r"lowerdir=/a\:b/c\,d,upperdir=/u,workdir=/w")

    def test_no_layers(self):
        with self.assertRaises(ContainError):
            images.overlay_mount_data([], "/u", "/w")


class TestPlatforms(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(images.parse_platform("linux/arm64/v8"),
                         {"os": "linux", "architecture": "arm64", "variant": "v8"})
        self.assertEqual(images.parse_platform("linux/x86_64")["architecture"], "amd64")
        for bad in ("linux", "linux/", "a/b/c/d", ""):
            with self.assertRaises(UsageError):
                images.parse_platform(bad)

    def test_matches(self):
        want = images.parse_platform("linux/arm64")
        self.assertTrue(images.platform_matches(want, {"os": "linux", "architecture": "arm64",
                                                       "variant": "v8"}))
        self.assertFalse(images.platform_matches(want, {"os": "linux",
                                                        "architecture": "amd64"}))
        arm7 = images.parse_platform("linux/arm/v7")
        self.assertFalse(images.platform_matches(arm7, {"os": "linux", "architecture": "arm",
                                                        "variant": "v6"}))
        self.assertTrue(images.platform_matches(arm7, {"os": "linux", "architecture": "arm"}))
        self.assertFalse(images.platform_matches(want, {"os": "windows",
                                                        "architecture": "arm64"}))

    def test_host(self):
        host = images.host_platform()
        self.assertEqual(host["os"], "linux")
        self.assertNotIn(host["architecture"], ("x86_64", "aarch64"))


class TestChangesAndPresentation(unittest.TestCase):
    def test_parse_changes(self):
        section = images.parse_changes([
            'CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/run --fast", "ENV A=1 B='x y'",
            "ENV C three words", "WORKDIR /srv", "USER 1000:1000", "EXPOSE 80 53/udp",
            "LABEL k=v 'spaced=a b'", "STOPSIGNAL SIGINT", 'VOLUME ["/data"]'])
        self.assertEqual(section["Cmd"], ["sh", "-c", "echo hi"])
        self.assertEqual(section["Entrypoint"], ["/bin/sh", "-c", "/bin/run --fast"])
        self.assertEqual(section["Env"], ["A=1", "B=x y", "C=three words"])
        self.assertEqual(section["WorkingDir"], "/srv")
        self.assertEqual(section["User"], "1000:1000")
        self.assertEqual(section["ExposedPorts"], {"80/tcp": {}, "53/udp": {}})
        self.assertEqual(section["Labels"], {"k": "v", "spaced": "a b"})
        self.assertEqual(section["StopSignal"], "SIGINT")
        self.assertEqual(section["Volumes"], {"/data": {}})
        for bad in ("RUN make", 'CMD ["unterminated"', "CMD [1, 2]"):
            with self.assertRaises(UsageError):
                images.parse_changes([bad])

    def test_human_size(self):
        self.assertEqual(images.human_size(512), "512B")
        self.assertEqual(images.human_size(4_260_000), "4.26MB")
        self.assertEqual(images.human_size(1_240), "1.24kB")
        self.assertEqual(images.human_size(77_800_000_000), "77.8GB")

    def test_created_epoch(self):
        self.assertEqual(images.created_epoch("1970-01-01T00:01:00Z"), 60)
        self.assertEqual(images.created_epoch("1970-01-01T01:00:00+01:00"), 0)
        self.assertAlmostEqual(images.created_epoch("1970-01-01T00:00:01.123456789Z"),
                               1.123456789)
        self.assertIsNone(images.created_epoch(""))
        self.assertIsNone(images.created_epoch("yesterday"))


if __name__ == "__main__":
    unittest.main()
