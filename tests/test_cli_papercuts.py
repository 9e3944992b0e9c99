"""What trips a Docker user on the command line: several names per command,
error prefixes and exit codes, flag names in messages, abbreviations,
templates, filters, rename, top, info, --version, and the older projects'
command lines (`--cpu`, `--port`, `create IMAGE --options`, `list`)."""

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest

from tests import support
from tests.support import contain, requires_root
from tests.test_lifecycle import Lifecycle

from contain.engine import cli, flags, views
from contain.errors import UsageError

NET = ("--network", "none")


def rootfs():
    return support.busybox_rootfs()


# ------------------------------------------------------------ pure logic
class Container:
    """A stand-in record for the filter logic (the real one re-reads the kernel)."""

    def __init__(self, name, status="running", exit_code=0, labels=None, image=None,
                 image_id=None):
        self.name, self.status, self.exit_code = name, status, exit_code
        self.id = (name.encode().hex() * 64)[:64]
        self.config = {"labels": labels or {}, "image": image,
                       "rootfs": {"image_id": image_id} if image_id else {"path": "/r"}}


class FilterTest(unittest.TestCase):
    def match(self, c, *items, tags=None):
        return views.container_matches(c, views.parse_filters(items, views.PS_FILTERS),
                                       tags or {})

    def test_each_key(self):
        web = Container("web", labels={"tier": "front", "x": ""})
        db = Container("db", "exited", 3, labels={"tier": "back"})
        self.assertTrue(self.match(web, "name=we"))
        self.assertFalse(self.match(db, "name=^we"))
        self.assertTrue(self.match(db, "name=web", "name=db"))      # one key: any value
        self.assertTrue(self.match(web, "id=" + web.id[:6]))
        self.assertFalse(self.match(db, "id=" + web.id[:6]))
        self.assertTrue(self.match(db, "status=exited"))
        self.assertFalse(self.match(web, "status=exited"))
        self.assertTrue(self.match(db, "exited=3"))
        self.assertFalse(self.match(db, "exited=0"))
        self.assertFalse(self.match(web, "exited=0"))               # running: no exit code
        self.assertTrue(self.match(web, "label=tier"))
        self.assertTrue(self.match(web, "label=tier=front", "label=x"))
        self.assertFalse(self.match(web, "label=tier=front", "label=y"))  # labels: all
        self.assertFalse(self.match(db, "label=tier=front"))

    def test_ancestor(self):
        c = Container("a", image="app:1", image_id="sha256:" + "ab" * 32)
        tags = {"app:1": "sha256:" + "ab" * 32, "other:latest": "sha256:" + "cd" * 32}
        self.assertTrue(self.match(c, "ancestor=app:1", tags=tags))
        self.assertTrue(self.match(c, "ancestor=abab", tags=tags))      # an id prefix
        self.assertFalse(self.match(c, "ancestor=other", tags=tags))
        self.assertFalse(self.match(Container("r"), "ancestor=app:1", tags=tags))

    def test_bad_filters_are_usage_errors(self):
        for item in ("colour=red", "status=sleeping", "exited=x", "noequals", "name=("):
            with self.subTest(item=item), self.assertRaises(UsageError):
                views.parse_filters([item], views.PS_FILTERS)
        with self.assertRaises(UsageError):
            views.parse_filters(["dangling=maybe"], views.IMAGE_FILTERS)

    def test_reference_glob(self):
        row = {"Repository": "app", "Tag": "v1"}
        self.assertTrue(views.row_matches_reference(row, ["app"]))
        self.assertTrue(views.row_matches_reference(row, ["ap*:v*"]))
        self.assertFalse(views.row_matches_reference(row, ["app:v2"]))
        self.assertFalse(views.row_matches_reference({"Repository": "<none>", "Tag": "<none>"},
                                                     ["*"]))


class TemplateTest(unittest.TestCase):
    def test_parse_errors_and_unknown_fields(self):
        data = [{"ID": "1", "Names": "web"}]
        for fmt in ("{{.ID", "{{range .}}{{.ID}}{{end}}", "{{printf \"%s\" .ID}}"):
            with self.subTest(fmt=fmt), self.assertRaises(views.TemplateError) as cm:
                views.render_template(fmt, data)
            self.assertIn("template parsing error", str(cm.exception))
            self.assertEqual(cm.exception.exit_code, 1)
        with self.assertRaises(views.TemplateError):
            views.render_template("{{.Foo}}", data)
        # unknown fields are refused even when there is no row to show
        with self.assertRaises(views.TemplateError):
            views.render_template("{{.Foo}}", [], views.PS_FIELDS)
        with self.assertRaises(views.TemplateError):
            views.render_path("{{.State.Nope}}", {"State": {"Status": "running"}})
        self.assertEqual(views.render_template("{{.ID}}:{{ .Names }}", data), "1:web\n")
        # {{json}} is compact, as Go's encoding/json writes it
        self.assertEqual(views.render_path("{{.A.B}} {{json .A}}", {"A": {"B": True}}),
                         'true {"B":true}')


class ImageColumnTest(unittest.TestCase):
    def test_stale_name_shows_the_short_id(self):
        old, new = "sha256:" + "1" * 64, "sha256:" + "2" * 64
        cfg = {"image": "app", "rootfs": {"type": "image", "image_id": old}}
        self.assertEqual(views.image_text(cfg, {"app:latest": old}), "app")
        self.assertEqual(views.image_text(cfg, {"app:latest": new}), "1" * 12)
        self.assertEqual(views.image_text(cfg, {}), "1" * 12)                 # untagged
        self.assertEqual(views.image_text(cfg, {}, no_trunc=True), old)
        self.assertEqual(views.image_text(dict(cfg, image="111111"), {}), "111111")  # by id
        self.assertEqual(views.image_text({"rootfs": {"path": "/r"}}, {}), "/r")


class LegacyCpuTest(unittest.TestCase):
    def test_cpu_is_quota_per_100ms(self):
        self.assertEqual(flags.legacy_cpu(50000, {}), {"cpu_quota": 50000, "cpu_period": 100000})
        self.assertEqual(flags.legacy_cpu(None, {}), {})
        with self.assertRaises(UsageError):
            flags.legacy_cpu(50000, {"cpu_quota": 1000})
        with self.assertRaises(UsageError):
            flags.legacy_cpu(50000, {"cpu_period": 50000})


class ParserTest(unittest.TestCase):
    def walk(self, parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from self.walk(sub, path + [name])
            else:
                yield parser, " ".join(path), action

    def test_every_option_has_help_and_no_parser_abbreviates(self):
        for parser, where, action in self.walk(cli.build_parser(), ["contain"]):
            self.assertFalse(parser.allow_abbrev, where)
            if action.option_strings:
                self.assertTrue(action.help, f"{where} {action.option_strings} has no help")

    def test_aliases_of_the_older_projects(self):
        ns = cli.build_parser(["run"]).parse_args(
            ["run", "--rootfs", "./rootfs", "--memory", "128M", "--cpu", "50000",
             "--pids", "64", "--port", "8080:80", "--", "/bin/sh"])
        self.assertEqual((ns.cpu, ns.pids_limit, ns.publish), (50000, 64, ["8080:80"]))
        self.assertEqual(flags.limits_from_args(ns)["cpu_quota"], 50000)
        ns = cli.build_parser(["list"]).parse_args(["list"])
        self.assertTrue(ns.all)

    def test_abbreviations_are_refused(self):
        for argv in (["run", "--priv", "busybox"], ["run", "--rest", "always", "busybox"],
                     ["ps", "--al"], ["--ro", "/tmp", "ps"]):
            with self.subTest(argv=argv), self.assertRaises(UsageError):
                cli.build_parser(argv).parse_args(argv)


class CommandLineTest(unittest.TestCase):
    """Errors that come before any container exists (no root needed for most)."""

    def test_bare_contain_version_and_single_prefix(self):
        res = contain()
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("usage: contain", res.stdout)
        from contain import __version__
        for args in (("--version",), ("version",)):
            res = contain(*args)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn(f"contain version {__version__}", res.stdout)
        res = contain("ps", "--bogus")
        self.assertEqual(res.returncode, 125)
        self.assertRegex(res.stderr, r"^contain: ps: unknown flag or argument: --bogus")
        self.assertNotIn("contain: contain", res.stderr)
        res = contain("run", "--privileged", "--rootfs")
        self.assertNotIn("contain: contain", res.stderr)
        self.assertIn("contain run --help", res.stderr)

    @requires_root
    def test_flag_errors_name_the_flag(self):
        cases = {("--memory-swap", "abc"): "for --memory-swap",
                 ("--memory-reservation", "abc"): "for --memory-reservation",
                 ("--log-opt", "max-size=abc"): "for --log-opt max-size",
                 ("--cpuset-mems", "999"): "Requested memory nodes are not available",
                 ("--restart", "on-failure:abc"): "retry count must be a non-negative",
                 ("--cpu", "5000", "--cpu-quota", "3000"): "--cpu N means"}
        for flag, wanted in cases.items():
            with self.subTest(flag=flag):
                res = contain("run", *flag, *NET, "--rootfs", rootfs(), "true")
                self.assertEqual(res.returncode, 125, res.stderr)
                self.assertIn(wanted, res.stderr)
                self.assertEqual(res.stderr.count("\n"), 1, res.stderr)

    @requires_root
    def test_bad_templates_exit_1_and_print_nothing(self):
        for args in (("ps", "--format", "{{.ID"), ("ps", "-a", "--format", "{{.Foo}}"),
                     ("images", "--format", "{{range .}}x{{end}}")):
            with self.subTest(args=args):
                res = contain(*args)
                self.assertEqual(res.returncode, 1, res.stderr)
                self.assertEqual(res.stdout, "")
                self.assertRegex(res.stderr, r"^contain: template")

    @requires_root
    def test_info_shows_storage_and_security(self):
        res = contain("info")
        self.assertEqual(res.returncode, 0, res.stderr)
        for line in ("Storage Driver: overlay", f"Image Store: {support.STATE_ROOT}/images",
                     "Security Options:", "Profile: builtin", "no-new-privileges: off",
                     "capabilities: 14 by default", "userns: "):
            self.assertIn(line, res.stdout)
        info = json.loads(contain("info", "-f", "json").stdout)
        self.assertIn("NET_BIND_SERVICE", info["security"]["capabilities"])
        self.assertNotIn("SYS_ADMIN", info["security"]["capabilities"])
        self.assertEqual(info["storage"]["driver"], "overlay")

    def test_busybox_recipe_help_makes_no_directory(self):
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(support.TOP, "images", "busybox.py")
            res = subprocess.run([sys.executable, script, "--help"], cwd=d,
                                 capture_output=True, text=True)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn("images/busybox.py DEST", res.stdout)
            res = subprocess.run([sys.executable, script, "--dest"], cwd=d,
                                 capture_output=True, text=True)
            self.assertEqual(res.returncode, 2)
            self.assertEqual(os.listdir(d), [])


# ------------------------------------------------------- with containers
class WithContainers(Lifecycle):
    def ps(self, *args):
        res = contain("ps", "--format", "{{.Names}}", *args)
        self.assertEqual(res.returncode, 0, res.stderr)
        return sorted(res.stdout.split())


@requires_root
class SeveralNamesTest(WithContainers):
    def test_every_name_is_tried(self):
        self.run_d("pc-s1", "sleep", "100")
        self.run_d("pc-s2", "sleep", "100")
        res = contain("kill", "nosuch", "pc-s1")
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout, "pc-s1\n")
        self.assertEqual(res.stderr, "contain: No such container: nosuch\n")
        self.wait_until(lambda: self.state_of("pc-s1")["Status"] == "exited",
                        what="pc-s1 killed")   # a kill is not waited for, as in Docker
        res = contain("stop", "-t", "1", "nosuch", "pc-s2")
        self.assertEqual((res.returncode, res.stdout), (1, "pc-s2\n"), res.stderr)
        self.assertEqual(self.state_of("pc-s2")["Status"], "exited")
        res = contain("start", "nosuch", "pc-s1")
        self.assertEqual((res.returncode, res.stdout), (1, "pc-s1\n"), res.stderr)
        self.assertEqual(self.state_of("pc-s1")["Status"], "running")
        contain("kill", "pc-s1")
        res = contain("wait", "nosuch", "pc-s1")
        self.assertEqual((res.returncode, res.stdout), (1, "137\n"), res.stderr)
        # the commands that went on before now say "contain:" too, not "daemon"
        for args in (("rm", "nosuch", "pc-s2"), ("update", "--memory", "64m", "nosuch"),
                     ("network", "rm", "nosuchnet"), ("rmi", "nosuchimage")):
            with self.subTest(args=args):
                res = contain(*args)
                self.assertEqual(res.returncode, 1, res.stderr)
                self.assertTrue(res.stderr.startswith("contain: "), res.stderr)
                self.assertNotIn("daemon", res.stderr)
        self.assertNotIn("pc-s2", self.ps("-a"))
        # a bad flag value fails before any name is touched
        res = contain("kill", "-s", "NOSIG", "pc-s1")
        self.assertEqual(res.returncode, 125)


@requires_root
class PsTest(WithContainers):
    def test_exit_code_of_a_running_container_is_0(self):
        self.run_d("pc-up", "sleep", "100")
        res = contain("ps", "--filter", "name=^pc-up$", "--format", "{{.ExitCode}}")
        self.assertEqual(res.stdout, "0\n", res.stderr)
        res = contain("ps", "--filter", "name=^pc-up$", "--format", "json")
        self.assertEqual(json.loads(res.stdout)["ExitCode"], 0)

    def test_filters(self):
        up = self.run_d("pc-f1", "sleep", "100", opts=("-l", "role=web"))
        self.run_d("pc-f2", "sh", "-c", "exit 3", opts=("-l", "role=job"))
        self.assertEqual(contain("wait", "pc-f2").stdout, "3\n")
        self.assertEqual(self.ps("-f", "name=pc-f"), ["pc-f1"])           # running only
        self.assertEqual(self.ps("-a", "-f", "name=pc-f"), ["pc-f1", "pc-f2"])
        self.assertEqual(self.ps("-f", "name=pc-f", "-f", "status=exited"), ["pc-f2"])
        self.assertEqual(self.ps("-a", "-f", "exited=3", "-f", "name=pc-f"), ["pc-f2"])
        self.assertEqual(self.ps("-a", "-f", "label=role=web"), ["pc-f1"])
        self.assertEqual(self.ps("-a", "-f", "id=" + up[:10]), ["pc-f1"])
        res = contain("ps", "-f", "colour=red")
        self.assertEqual(res.returncode, 125)
        self.assertIn("invalid filter 'colour'", res.stderr)
        # list: the older projects' name for ps -a
        res = contain("list", "--format", "{{.Names}}", "-f", "name=pc-f")
        self.assertEqual(sorted(res.stdout.split()), ["pc-f1", "pc-f2"])

    def test_rename(self):
        cid = self.run_d("pc-old", "sleep", "100")
        self.names.append("pc-new")
        self.run_d("pc-other", "sleep", "100")
        res = contain("rename", "pc-old", "pc-other")
        self.assertEqual(res.returncode, 125)
        self.assertIn("already in use", res.stderr)
        self.assertEqual(contain("rename", "pc-old", "bad name!").returncode, 125)
        res = contain("rename", "pc-old", "pc-new")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(contain("inspect", "-f", "{{.Id}}", "pc-new").stdout.strip(), cid)
        self.assertEqual(contain("inspect", "pc-old").returncode, 125)
        self.assertEqual(self.state_of("pc-new")["Status"], "running")

    def test_top(self):
        self.run_d("pc-top", "sleep", "100")
        pid = self.state_of("pc-top")["Pid"]
        res = contain("top", "pc-top")
        self.assertEqual(res.returncode, 0, res.stderr)
        header, *rows = res.stdout.splitlines()
        self.assertEqual(header.split(), ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME",
                                          "CMD"])
        self.assertEqual(len(rows), 1, res.stdout)
        self.assertEqual(rows[0].split()[1], str(pid))
        self.assertTrue(rows[0].endswith("sleep 100"), rows[0])
        res = contain("top", "pc-top", "-o", "pid,comm,stat")
        self.assertEqual(res.stdout.split(), ["PID", "COMMAND", "STAT", str(pid), "sleep", "S"])
        self.assertEqual(contain("top", "pc-top", "aux").returncode, 125)
        contain("kill", "pc-top")
        res = contain("top", "pc-top")
        self.assertEqual(res.returncode, 125)
        self.assertIn("not running", res.stderr)


@requires_root
class OlderProjectsTest(WithContainers):
    def test_run_line_verbatim(self):
        before = set(contain("ps", "-aq", "--no-trunc").stdout.split())
        res = contain("run", "--rootfs", rootfs(), "--memory", "128M", "--cpu", "50000",
                      "--pids", "64", "--", "/bin/sh", input="")
        new = set(contain("ps", "-aq", "--no-trunc").stdout.split()) - before
        self.names += sorted(new)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(len(new), 1)
        host = json.loads(contain("inspect", *new).stdout)[0]["HostConfig"]
        self.assertEqual((host["CpuQuota"], host["CpuPeriod"], host["PidsLimit"],
                          host["Memory"]), (50000, 100000, 64, 128 << 20))

    def test_create_with_options_after_the_image(self):
        self.names.append("pc-legacy")
        res = contain("create", "busybox", "--name", "pc-legacy", "--memory", "64m",
                      "--cpu", "25000", "--port", "8080:80")
        self.assertEqual(res.returncode, 0, res.stderr)
        cid = res.stdout.strip()
        info = json.loads(contain("inspect", "pc-legacy").stdout)[0]
        self.assertEqual(info["Id"], cid)
        self.assertEqual((info["HostConfig"]["Memory"], info["HostConfig"]["CpuQuota"]),
                         (64 << 20, 25000))
        self.assertEqual(info["Config"]["Cmd"], ["sh"])        # the image's CMD
        with open(os.path.join(support.STATE_ROOT, "containers", cid, "config.json")) as f:
            self.assertEqual(json.load(f)["network"]["publish"], ["8080:80"])
        # words after the image that are not all options stay the command (Docker's rule)
        self.names.append("pc-cmd")
        res = contain("create", "--name", "pc-cmd", "busybox", "--name", "x", "echo")
        self.assertEqual(res.returncode, 0, res.stderr)
        cmd = json.loads(contain("inspect", "pc-cmd").stdout)[0]["Config"]["Cmd"]
        self.assertEqual(cmd, ["--name", "x", "echo"])


@requires_root
class ImagesTest(WithContainers):
    def import_image(self, ref, content):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = content.encode()
            member = tarfile.TarInfo("hello.txt")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
        res = contain("import", "-c", "LABEL papercut=" + content, "-", ref,
                      input=buf.getvalue().decode("latin-1"))
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.strip()

    def test_stale_name_and_image_filters(self):
        first = self.import_image("pc-app:1", "one")
        self.names.append("pc-img")
        res = contain("create", "--name", "pc-img", "pc-app:1", "true")
        self.assertEqual(res.returncode, 0, res.stderr)
        image = ["ps", "-a", "-f", "name=^pc-img$", "--format", "{{.Image}}"]
        self.assertEqual(contain(*image).stdout, "pc-app:1\n")
        self.assertEqual(self.ps("-a", "-f", "ancestor=pc-app:1"), ["pc-img"])
        second = self.import_image("pc-app:1", "two")     # the name moves on
        self.addCleanup(contain, "rmi", "-f", first, second)
        self.assertNotEqual(first, second)
        self.assertEqual(contain(*image).stdout, first.split(":")[-1][:12] + "\n")
        self.assertEqual(self.ps("-a", "-f", "ancestor=" + first), ["pc-img"])
        self.assertEqual(self.ps("-a", "-f", "ancestor=pc-app:1"), [])

        def images(*flt):
            res = contain("images", "--format", "{{.ID}}", *flt)
            self.assertEqual(res.returncode, 0, res.stderr)
            return res.stdout.split()
        short = [first.split(":")[-1][:12], second.split(":")[-1][:12]]
        self.assertEqual(images("-f", "reference=pc-app:*"), short[1:])
        self.assertEqual(images("-f", "reference=pc-ap?"), short[1:])
        self.assertIn(short[0], images("-f", "dangling=true"))
        self.assertNotIn(short[1], images("-f", "dangling=true"))
        self.assertEqual(images("-f", "label=papercut=one"), short[:1])
        self.assertEqual(contain("images", "-f", "size=1").returncode, 125)


if __name__ == "__main__":
    unittest.main()


class ReadmeTest(unittest.TestCase):
    """What README.md says of the command line is what contain does."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(support.TOP, "README.md")) as f:
            cls.readme = f.read()

    def test_quick_start_rootfs_is_ignored_by_git(self):
        self.assertIn("images/busybox.py ./rootfs", self.readme)
        res = subprocess.run(["git", "-C", support.TOP, "check-ignore", "-q", "rootfs/x"])
        if res.returncode == 128:
            self.skipTest("not a git checkout")
        self.assertEqual(res.returncode, 0, ".gitignore does not cover the quick start's rootfs")

    def test_network_prune_is_documented(self):
        self.assertRegex(self.readme, r"`contain network prune` removes them: `contain0`")

    @requires_root
    def test_sample_errors_are_what_contain_prints(self):
        block = self.readme.split("reason, for example:\n\n```\n", 1)[1].split("```", 1)[0]
        samples = block.splitlines()
        broken = support.fresh_rootfs("symlinked-proc")
        os.rmdir(os.path.join(broken, "proc"))
        os.symlink("/etc", os.path.join(broken, "proc"))
        runs = {"mount /proc": ("--rootfs", broken, "true"),
                "exec nope": ("--rootfs", rootfs(), "nope"),
                "Minimum memory": ("--memory", "512K", "--rootfs", rootfs(), "true")}
        self.assertEqual(len(samples), len(runs), samples)
        for sample in samples:
            args = next(a for key, a in runs.items() if key in sample)
            res = contain("run", "--rm", *NET, *args)
            self.assertEqual(res.stderr.strip(), sample)
            self.assertNotEqual(res.returncode, 0)
        self.assertNotIn("(512K,", self.readme)
