"""Capabilities, seccomp and process hygiene (issue 7).

Three tiers:
  * pure logic: capability names and Docker's add/drop rules, security
    options, and the seccomp compiler run on a small BPF interpreter here;
  * the real kernel, as root: a forked child applies caps / seccomp and
    execs tests/probe.c (built static with gcc), which tries one system
    call and prints what the kernel said;
  * whole containers (ContainerSecurityTest) once `contain run` works.

Calls that this machine refuses even to root (kexec_load, init_module: ENOSYS)
prove nothing about blocking; the kernel tests use calls root CAN make here
(mount, unshare, reboot with a bad magic, swapon of a non-swap file, keyctl,
bpf, perf_event_open) and expect EPERM only where we block them.
"""

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest

from tests import support
from contain.core import linux, seccomp, security
from contain.engine import defaults

_programs = {}
# Docker's device allow-list as the generator writes it, as BPF rules
DOCKER_DEVICE_RULES = security.rules_from_spec(
    __import__("contain.engine.generate", fromlist=["x"]).device_rules(privileged=False))


def default_program(caps):
    """Docker's default profile compiled for caps (cached per test run)."""
    key = frozenset(caps)
    if key not in _programs:
        _programs[key] = seccomp.compile_profile(defaults.DEFAULT_PROFILE, caps)
    return _programs[key]
from contain.errors import UsageError

HOST_CAPS = security.read_status_caps()
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
ARCH = os.uname().machine
AUDIT_ARCH = seccomp.ARCHES.get(ARCH, (0,))[0]


# --------------------------------------------------------------- helpers
def run_bpf(program, nr, args=(0, 0, 0, 0, 0, 0), arch=None):
    """Interpret a classic BPF seccomp program (the subset compile emits)."""
    args = (list(args) + [0] * 6)[:6]
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, AUDIT_ARCH if arch is None else arch,
                       0, *[a & (2**64 - 1) for a in args])
    a, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        assert 0 <= jt <= 255 and 0 <= jf <= 255, (pc, program[pc])
        if code == seccomp.LD_W_ABS:
            a, pc = struct.unpack_from("<I", data, k)[0], pc + 1
        elif code == seccomp.AND:
            a, pc = a & k, pc + 1
        elif code in (seccomp.JEQ, seccomp.JGT, seccomp.JGE):
            hit = {seccomp.JEQ: a == k, seccomp.JGT: a > k, seccomp.JGE: a >= k}[code]
            pc += 1 + (jt if hit else jf)
        elif code == seccomp.JA:
            pc += 1 + k
        elif code == seccomp.RET:
            return k
        else:
            raise AssertionError(f"unknown opcode {code:#x} at {pc}")
        assert pc < len(program), "jumped past the end"


def nr(name):
    return seccomp.syscall_number(name)


EPERM = seccomp.RET_ERRNO | 1


def _perf_paranoid():
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 2


# What the kernel itself answers once a call gets past seccomp and the
# capability checks, where that depends on how the kernel was built:
# perf_event_paranoid 3 (Debian's) refuses perf_event_open without
# CAP_SYS_ADMIN (EACCES); a kernel with module support looks at
# finit_module's fd -1 (EBADF) and delete_module's name (ENOENT), one without
# it has no such calls (ENOSYS).
PERF_WITHOUT_SYS_ADMIN = "ok" if _perf_paranoid() < 3 else "EACCES"
MODULES = os.path.exists("/proc/modules")
FINIT_MODULE = "EBADF" if MODULES else "ENOSYS"
DELETE_MODULE = "ENOENT" if MODULES else "ENOSYS"
ENOSYS = seccomp.RET_ERRNO | 38
ALLOW = seccomp.RET_ALLOW

_probe = None


def probe_binary():
    """tests/probe.c built static into the run's scratch dir (once)."""
    global _probe
    if _probe is None:
        gcc = shutil.which("gcc")
        if gcc is None:
            raise unittest.SkipTest("gcc is missing: cannot build the static probe")
        out = os.path.join(support.WORK, "probe")
        res = subprocess.run([gcc, "-static", "-O2", "-o", out,
                              os.path.join(support.HERE, "probe.c")],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise unittest.SkipTest(f"cannot build probe.c statically: {res.stderr[-300:]}")
        _probe = out
    return _probe


def confined(argv, caps=None, program=None, nnp=False, uid=None):
    """Fork; in the child make mounts and hostname private, switch user,
    apply caps, no_new_privs and seccomp in the runtime's order, exec argv.
    Returns (wait status, output)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWUTS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            if uid is not None:
                linux.prctl(linux.PR_SET_KEEPCAPS, 1)
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            if caps is not None:
                security.apply_capability_sets(caps, caps, caps)
            if nnp:
                security.set_no_new_privs()
            if program:
                seccomp.install(program)
            os.execv(argv[0], argv)
        except BaseException as e:  # noqa: B902 - report anything, then die
            os.write(2, f"child setup failed: {e!r}\n".encode())
        finally:
            os._exit(127)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks).decode()


def probe_all(calls, **kw):
    """{call: answer} for several probe calls in one confined shell.
    answer is the probe's output, or 'SIGSYS' etc. when it was killed."""
    probe = probe_binary()
    script = "".join(f'o=$({probe} {c} 2>&1); echo "{c}|$o|$?"\n' for c in calls)
    status, out = confined([BUSYBOX, "sh", "-c", script], **kw)
    if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
        raise AssertionError(f"confined shell failed ({status}): {out}")
    answers = {}
    for line in out.splitlines():
        if line.count("|") != 2:
            continue        # e.g. the shell's "Bad system call" for a SIGSYS
        call, answer, rc = line.split("|")
        rc = int(rc)
        answers[call] = answer if rc < 128 else signal.Signals(rc - 128).name
    return answers


# ------------------------------------------------------------ pure logic
class CapabilityNamesTest(unittest.TestCase):
    def test_every_cap_up_to_checkpoint_restore(self):
        self.assertEqual(len(security.CAP_NAMES), 41)
        self.assertEqual(security.CAP_NAMES["CAP_CHECKPOINT_RESTORE"], 40)
        self.assertEqual(sorted(security.CAP_NAMES.values()), list(range(41)))

    def test_prefix_and_case_do_not_matter(self):
        for name in ("CAP_SYS_ADMIN", "SYS_ADMIN", "sys_admin", "Cap_Sys_Admin"):
            self.assertIn(name, security.CAP_NAMES)
            self.assertEqual(security.CAP_NAMES[name], 21)
            self.assertEqual(security.cap_number(name), 21)
        self.assertEqual(security.cap_name(21), "CAP_SYS_ADMIN")

    def test_unknown_name_is_a_usage_error(self):
        with self.assertRaisesRegex(UsageError, "SYS_WIZARD"):
            security.cap_number("SYS_WIZARD")
        with self.assertRaises(UsageError):
            defaults.resolve_caps(cap_add=["NET_ADMIN", "bogus"])

    def test_default_set_is_dockers_14(self):
        names = {security.cap_name(c) for c in defaults.DEFAULT_CAPS}
        self.assertEqual(names, {
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
            "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"})


class ResolveCapsTest(unittest.TestCase):
    C = security.CAP_NAMES

    def test_defaults(self):
        self.assertEqual(defaults.resolve_caps(), defaults.DEFAULT_CAPS)

    def test_add_and_drop(self):
        caps = defaults.resolve_caps(cap_add=["sys_admin"], cap_drop=["CAP_CHOWN", "mknod"])
        self.assertIn(self.C["SYS_ADMIN"], caps)
        self.assertNotIn(self.C["CHOWN"], caps)
        self.assertNotIn(self.C["MKNOD"], caps)
        self.assertEqual(len(caps), 13)

    def test_added_and_dropped_means_added(self):
        caps = defaults.resolve_caps(cap_add=["NET_ADMIN"], cap_drop=["NET_ADMIN"])
        self.assertIn(self.C["NET_ADMIN"], caps)

    def test_drop_all_keeps_only_added(self):
        caps = defaults.resolve_caps(cap_add=["NET_BIND_SERVICE"], cap_drop=["ALL"])
        self.assertEqual(caps, {self.C["NET_BIND_SERVICE"]})
        self.assertEqual(defaults.resolve_caps(cap_drop=["all"]), set())

    def test_add_all_minus_dropped(self):
        caps = defaults.resolve_caps(cap_add=["ALL"], cap_drop=["SYS_ADMIN"])
        self.assertEqual(caps, security.all_caps() - {self.C["SYS_ADMIN"]})
        # add ALL wins over drop ALL, as in Docker
        self.assertEqual(defaults.resolve_caps(cap_add=["ALL"], cap_drop=["ALL"]),
                         security.all_caps())

    def test_privileged_is_everything(self):
        self.assertEqual(defaults.resolve_caps(cap_drop=["CHOWN"], privileged=True),
                         security.all_caps())
        self.assertEqual(len(security.all_caps()), security.last_cap() + 1)


class SecurityOptsTest(unittest.TestCase):
    def test_forms(self):
        p = defaults.parse_security_opts
        self.assertEqual(p([]), {"no_new_privileges": False, "seccomp": None,
                                 "systempaths": None})
        self.assertTrue(p(["no-new-privileges"])["no_new_privileges"])
        self.assertTrue(p(["no-new-privileges=true"])["no_new_privileges"])
        self.assertFalse(p(["no-new-privileges:false"])["no_new_privileges"])
        self.assertEqual(p(["seccomp=unconfined"])["seccomp"], "unconfined")
        self.assertEqual(p(["seccomp:/x.json"])["seccomp"], "/x.json")
        self.assertEqual(p(["systempaths=unconfined"])["systempaths"], "unconfined")
        p(["apparmor=unconfined", "label=disable"])

    def test_bad(self):
        for bad in ("bogus", "no-new-privileges=maybe", "apparmor=docker-default",
                    "seccomp="):
            with self.assertRaises(UsageError, msg=bad):
                defaults.parse_security_opts([bad])

    def test_seccomp_for_the_generator(self):
        from contain.engine import generate
        names = [security.cap_name(c) for c in defaults.DEFAULT_CAPS]
        opts = defaults.parse_security_opts([])
        self.assertFalse(opts["no_new_privileges"])
        profile = generate.seccomp_for({}, opts, names, False)
        self.assertNotIn("includes", json.dumps(profile))      # plain OCI form
        program = seccomp.compile_profile(profile, defaults.DEFAULT_CAPS)
        self.assertEqual(run_bpf(program, nr("mount")), EPERM)
        self.assertEqual(run_bpf(program, nr("chroot")), ALLOW)
        self.assertIsNone(generate.seccomp_for({}, opts, names, True))     # privileged
        opts = defaults.parse_security_opts(["seccomp=unconfined", "no-new-privileges"])
        self.assertIsNone(generate.seccomp_for({}, opts, names, False))
        self.assertTrue(opts["no_new_privileges"])

    def test_embedded_profile(self):
        path = os.path.join(tempfile.mkdtemp(dir=support.WORK), "p.json")
        with open(path, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO"}]}, f)
        opts = defaults.embed_seccomp_profiles(["no-new-privileges", f"seccomp={path}",
                                                "seccomp=unconfined"])
        self.assertEqual(opts[0], "no-new-privileges")
        self.assertTrue(opts[1].startswith("seccomp={"))
        os.unlink(path)       # the container no longer depends on the file
        profile = json.loads(opts[1][len("seccomp="):])
        self.assertEqual(run_bpf(seccomp.compile_profile(profile, set()), nr("chroot")), EPERM)
        with self.assertRaisesRegex(UsageError, "No such file"):
            defaults.embed_seccomp_profiles([f"seccomp={path}"])


@unittest.skipUnless(ARCH in seccomp.ARCHES, f"no syscall table for {ARCH}")
class SeccompCompilerTest(unittest.TestCase):
    def setUp(self):
        self.default = default_program(defaults.DEFAULT_CAPS)

    def check(self, program, name, expected, args=(0,) * 6):
        self.assertEqual(run_bpf(program, nr(name), args), expected,
                         f"{name}{tuple(args)}")

    def test_everyday_calls_allowed(self):
        for name in ("read", "write", "openat", "close", "execve", "exit_group", "mmap",
                     "futex", "rt_sigaction", "wait4", "chroot", "setuid", "capset",
                     "process_vm_readv", "ptrace"):
            self.check(self.default, name, ALLOW)

    def test_dangerous_calls_refused(self):
        for name in ("mount", "umount2", "pivot_root", "unshare", "setns", "sethostname",
                     "init_module", "finit_module", "delete_module", "kexec_load",
                     "kexec_file_load", "reboot", "swapon", "swapoff", "add_key",
                     "request_key", "keyctl", "bpf", "perf_event_open",
                     "open_by_handle_at", "clock_settime", "settimeofday", "syslog",
                     "acct", "iopl", "ioperm", "userfaultfd", "kcmp", "vhangup",
                     "lookup_dcookie", "fsopen", "open_tree", "move_mount",
                     "mount_setattr", "quotactl", "set_mempolicy"):
            self.check(self.default, name, EPERM)

    def test_clone_checks_namespace_flags(self):
        plain = 0x01200011      # fork(): CLONE_CHILD_SETTID|CHILD_CLEARTID|SIGCHLD
        self.check(self.default, "clone", ALLOW, (plain,))
        for flag in (linux.CLONE_NEWNS, linux.CLONE_NEWUSER, linux.CLONE_NEWNET,
                     linux.CLONE_NEWPID, linux.CLONE_NEWUTS, linux.CLONE_NEWIPC,
                     linux.CLONE_NEWCGROUP):
            self.check(self.default, "clone", EPERM, (plain | flag,))
        self.check(self.default, "clone3", ENOSYS)
        admin = default_program(defaults.DEFAULT_CAPS | {21})
        self.check(admin, "clone", ALLOW, (plain | linux.CLONE_NEWNS,))
        self.check(admin, "clone3", ALLOW)

    def test_argument_rules(self):
        self.check(self.default, "personality", ALLOW, (0xFFFFFFFF,))
        self.check(self.default, "personality", ALLOW, (8,))
        self.check(self.default, "personality", EPERM, (0x0040000,))
        self.check(self.default, "socket", ALLOW, (2,))
        self.check(self.default, "socket", EPERM, (40,))       # AF_VSOCK
        self.check(self.default, "socket", ALLOW, (40 | 1 << 32,))  # 64-bit compare

    def test_caps_give_calls_back(self):
        C = security.CAP_NAMES
        cases = {
            "SYS_ADMIN": ("mount", "umount2", "unshare", "setns",
                          "sethostname", "bpf", "perf_event_open", "syslog", "quotactl"),
            "SYS_BOOT": ("reboot",), "SYS_MODULE": ("init_module", "finit_module",
                                                    "delete_module"),
            "SYS_TIME": ("clock_settime", "settimeofday"), "SYSLOG": ("syslog",),
            "SYS_PTRACE": ("kcmp", "pidfd_getfd"), "SYS_RAWIO": ("iopl", "ioperm"),
            "DAC_READ_SEARCH": ("open_by_handle_at",), "SYS_PACCT": ("acct",),
            "BPF": ("bpf",), "PERFMON": ("perf_event_open",), "SYS_NICE": ("mbind",),
            "SYS_TTY_CONFIG": ("vhangup",),
        }
        for cap, names in cases.items():
            program = default_program(defaults.DEFAULT_CAPS | {C[cap]})
            for name in names:
                self.check(program, name, ALLOW)
            self.check(program, "keyctl", EPERM)   # never, whatever the caps
            self.check(program, "swapon", EPERM)

    def test_foreign_abis_are_killed(self):
        self.assertEqual(run_bpf(self.default, nr("getpid"), arch=0x40000003),  # i386
                         seccomp.RET_KILL_PROCESS)
        if ARCH == "x86_64":
            self.assertEqual(run_bpf(self.default, 0x40000000 | nr("getpid")),
                             seccomp.RET_KILL_PROCESS)
            self.assertEqual(run_bpf(self.default, -1), ENOSYS)

    def test_newer_than_profile_is_enosys(self):
        # so libc falls back from fchmodat2 to fchmodat instead of failing
        for name in ("fchmodat2", "cachestat", "mseal"):
            self.check(self.default, name, ENOSYS)
        self.assertEqual(run_bpf(self.default, 0x3FFFFFFF), ENOSYS)
        # inside the known range, unnamed calls take the default action
        self.assertEqual(run_bpf(self.default, 400), EPERM)

    def test_every_number_reaches_a_return(self):
        for program in (self.default, default_program(security.all_caps())):
            for number in range(0, 1024):
                self.assertIn(run_bpf(program, number) & 0xFFFF0000,
                              (seccomp.RET_ALLOW, seccomp.RET_ERRNO))

    def test_long_subtrees_use_ja(self):
        # alternate actions on every number: no two neighbours merge, so
        # subtrees are far longer than an 8-bit jump
        table = seccomp.ARCHES[ARCH][1]
        names = sorted(table, key=table.get)
        profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": names[::2], "action": "SCMP_ACT_ALLOW"},
            {"names": names[1::2], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
        program = seccomp.compile_profile(profile, set())
        self.assertTrue(any(ins[0] == seccomp.JA for ins in program))
        for i, name in enumerate(names):
            self.check(program, name, ALLOW if i % 2 == 0 else seccomp.RET_ERRNO | 13)

    def test_64_bit_comparisons(self):
        rnd = random.Random(7)
        edges = [0, 1, 0xFFFFFFFF, 1 << 32, (1 << 32) + 1, 2**64 - 1, 0x7FFFFFFF00000000]
        values = edges + [rnd.getrandbits(64) for _ in range(12)]
        ops = {"SCMP_CMP_EQ": lambda a, v, w: a == v, "SCMP_CMP_NE": lambda a, v, w: a != v,
               "SCMP_CMP_LT": lambda a, v, w: a < v, "SCMP_CMP_LE": lambda a, v, w: a <= v,
               "SCMP_CMP_GT": lambda a, v, w: a > v, "SCMP_CMP_GE": lambda a, v, w: a >= v,
               "SCMP_CMP_MASKED_EQ": lambda a, v, w: a & v == w}
        for op, truth in ops.items():
            for v in values:
                w = v & 0x0F0F0F0F0F0F0F0F
                profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 3, "value": v, "valueTwo": w, "op": op}]}]}
                program = seccomp.compile_profile(profile, set())
                for a in values + [v, v ^ 1, w]:
                    got = run_bpf(program, nr("read"), (0, 0, 0, a, 0, 0))
                    self.assertEqual(got == ALLOW, truth(a, v, w), f"{op} {a:#x} {v:#x}")

    def test_rules_in_order_and_fallback(self):
        profile = {"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 9, "op": "SCMP_CMP_GT"}]},
            {"names": ["read"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"name": "write", "action": "SCMP_ACT_TRAP"},
            {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}
        program = seccomp.compile_profile(profile, set())
        self.check(program, "read", seccomp.RET_ERRNO | 5, (3, 10))
        self.check(program, "read", seccomp.RET_LOG, (3, 9))
        self.check(program, "read", ALLOW, (4, 10))
        self.check(program, "write", seccomp.RET_TRAP)
        self.check(program, "close", seccomp.RET_KILL_PROCESS)   # unnamed: default
        # above the highest named call: ENOSYS (runc's stub), even here
        self.assertEqual(run_bpf(program, nr("exit_group") + 1), ENOSYS)

    def test_includes_excludes(self):
        profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW",
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW",
             "includes": {"arches": ["s390x"]}},
            {"names": ["dup"], "action": "SCMP_ACT_ALLOW",
             "includes": {"minKernel": "99.0"}},
            {"names": ["no_such_call_anywhere", "getpid"], "action": "SCMP_ACT_ALLOW"}]}
        program = seccomp.compile_profile(profile, {21})
        self.check(program, "read", EPERM)         # needs both caps
        self.check(program, "write", EPERM)        # excluded by SYS_ADMIN
        self.check(program, "close", EPERM)        # other architecture
        self.check(program, "dup", EPERM)          # kernel too old
        self.check(program, "getpid", ALLOW)       # unknown names are skipped
        program = seccomp.compile_profile(profile, {12, 21})
        self.check(program, "read", ALLOW)

    def test_load_profile_and_errors(self):
        tmp = tempfile.mkdtemp(dir=support.WORK)
        path = os.path.join(tmp, "p.json")
        with open(path, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}, f)
        program = seccomp.load_profile(path, set())
        self.check(program, "chroot", seccomp.RET_ERRNO | 13)
        self.check(program, "mount", ALLOW)
        self.assertEqual(run_bpf(program, 5000), ALLOW)
        for content, message in (("{", "not valid JSON"), ("[]", "JSON object"),
                                 ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "NOTIFY"),
                                 ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names":'
                                  ' ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index":'
                                  ' 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "argument")):
            with open(path, "w") as f:
                f.write(content)
            with self.assertRaisesRegex(UsageError, message):
                seccomp.load_profile(path, set())
        with self.assertRaisesRegex(UsageError, "No such file"):
            seccomp.load_profile(os.path.join(tmp, "missing.json"), set())

    @unittest.skipUnless(os.path.exists("/usr/share/containers/seccomp.json"),
                         "no containers-common seccomp.json")
    def test_podman_profile_loads(self):
        program = seccomp.load_profile("/usr/share/containers/seccomp.json",
                                       defaults.DEFAULT_CAPS)
        self.check(program, "read", ALLOW)
        self.check(program, "kexec_load", EPERM)

    def test_build_is_deterministic(self):
        # (how fast a build is: bench/, not a test)
        caps = defaults.DEFAULT_CAPS
        self.assertEqual(seccomp.compile_profile(defaults.DEFAULT_PROFILE, caps),
                         seccomp.compile_profile(defaults.DEFAULT_PROFILE, set(caps)))


class SyscallTableTest(unittest.TestCase):
    HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"

    @unittest.skipUnless(os.path.exists(HEADER), "no x86_64 kernel headers")
    def test_x86_64_matches_the_header(self):
        import re
        with open(self.HEADER) as f:
            header = dict((m.group(1), int(m.group(2))) for m in
                          re.finditer(r"#define __NR_(\w+) (\d+)", f.read()))
        table = seccomp.ARCHES["x86_64"][1]
        for name, number in header.items():
            self.assertEqual(table.get(name), number, name)

    def test_aarch64_spot_checks(self):
        table = seccomp.ARCHES["aarch64"][1]
        for name, number in (("io_setup", 0), ("openat", 56), ("read", 63),
                             ("newfstatat", 79), ("fstat", 80), ("clone", 220),
                             ("mmap", 222), ("bpf", 280), ("clone3", 435),
                             ("futex_waitv", 449), ("fchmodat2", 452)):
            self.assertEqual(table[name], number, name)
        self.assertNotIn("open", table)


# ------------------------------------------------------------ real kernel
@support.requires_root
class CapabilitiesKernelTest(unittest.TestCase):
    def status_after_exec(self, caps, uid=None):
        status, out = confined([BUSYBOX, "cat", "/proc/self/status"], caps=caps, uid=uid)
        self.assertEqual(status, 0, out)
        return {line.split(":")[0]: int(line.split()[1], 16)
                for line in out.splitlines() if line.startswith("Cap")}

    def test_defaults_after_exec(self):
        want = security.caps_mask(defaults.DEFAULT_CAPS) & HOST_CAPS["CapBnd"]
        got = self.status_after_exec(defaults.DEFAULT_CAPS)
        self.assertEqual(got["CapBnd"], want)
        self.assertEqual(got["CapPrm"], want)
        self.assertEqual(got["CapEff"], want)
        self.assertEqual(got["CapInh"], 0)
        self.assertEqual(got["CapAmb"], 0)

    def test_added_cap_and_dropped_all(self):
        caps = defaults.resolve_caps(cap_add=["NET_ADMIN"], cap_drop=["ALL"])
        got = self.status_after_exec(caps)
        self.assertEqual(got["CapEff"], 1 << 12)
        self.assertEqual(got["CapBnd"], 1 << 12)
        got = self.status_after_exec(set())
        self.assertEqual((got["CapBnd"], got["CapPrm"], got["CapEff"]), (0, 0, 0))

    def test_privileged_keeps_what_the_host_has(self):
        got = self.status_after_exec(security.all_caps())
        self.assertEqual(got["CapBnd"], HOST_CAPS["CapBnd"])
        self.assertEqual(got["CapEff"], HOST_CAPS["CapPrm"])

    def test_non_root_user_execs_without_caps(self):
        # the runtime's order: KEEPCAPS, setuid, then the capability sets
        got = self.status_after_exec(defaults.DEFAULT_CAPS, uid=1000)
        self.assertEqual(got["CapBnd"],
                         security.caps_mask(defaults.DEFAULT_CAPS) & HOST_CAPS["CapBnd"])
        self.assertEqual((got["CapPrm"], got["CapEff"], got["CapInh"], got["CapAmb"]),
                         (0, 0, 0, 0))


@support.requires_root
@unittest.skipUnless(ARCH in seccomp.ARCHES, f"no syscall table for {ARCH}")
class SeccompKernelTest(unittest.TestCase):
    """Docker's default profile enforced by the real kernel."""

    BLOCKED = ("mount", "umount", "pivot_root", "unshare", "clone_ns", "setns",
               "sethostname", "reboot", "swapon", "swapoff", "add_key", "keyctl",
               "request_key", "bpf", "perf_event_open", "open_by_handle_at",
               "clock_settime", "syslog", "acct", "personality_bad", "vsock",
               "init_module", "finit_module", "delete_module", "kexec_load", "rlimit")
    ALLOWED = ("getpid", "fork", "socket", "personality", "chroot", "mknod", "setuid",
               "process_vm_readv")

    def confined_default(self, calls, caps=defaults.DEFAULT_CAPS, **kw):
        return probe_all(calls, caps=caps, program=default_program(caps), **kw)

    def test_defaults_block(self):
        got = self.confined_default(self.BLOCKED + self.ALLOWED + ("clone3",))
        for call in self.BLOCKED:
            self.assertEqual(got[call], "EPERM", call)
        for call in self.ALLOWED:
            self.assertEqual(got[call], "ok", call)
        self.assertEqual(got["clone3"], "ENOSYS")   # libc falls back to clone

    @unittest.skipUnless(ARCH == "x86_64", "x86_64 ABIs")
    def test_other_abis_are_killed(self):
        got = self.confined_default(["x32", "int80", "getpid"])
        self.assertEqual(got["x32"], "SIGSYS")
        self.assertEqual(got["int80"], "SIGSYS")
        self.assertEqual(got["getpid"], "ok")
        # unconfined, the same calls do not kill (x32 is absent: ENOSYS)
        got = probe_all(["x32", "int80"])
        self.assertNotEqual(got["x32"], "SIGSYS")
        self.assertEqual(got["int80"], "ok")

    def test_matching_cap_gives_calls_back(self):
        # (cap, call, answer when allowed): the kernel's own answer shows the
        # call got through (see FINIT_MODULE, PERF_WITHOUT_SYS_ADMIN)
        cases = [
            ("SYS_ADMIN", "mount", "ok"), ("SYS_ADMIN", "umount", "EINVAL"),
            ("SYS_ADMIN", "unshare", "ok"),
            ("SYS_ADMIN", "clone_ns", "ok"), ("SYS_ADMIN", "clone3", "ok"),
            ("SYS_ADMIN", "setns", "ok"), ("SYS_ADMIN", "sethostname", "ok"),
            ("SYS_ADMIN", "bpf", "ok"), ("SYS_ADMIN", "perf_event_open", "ok"),
            ("SYS_BOOT", "reboot", "EINVAL"),
            ("SYS_MODULE", "finit_module", FINIT_MODULE),
            ("SYS_MODULE", "delete_module", DELETE_MODULE),
            ("SYS_TIME", "clock_settime", "EINVAL"),
            ("SYSLOG", "syslog", "ok"), ("SYS_PACCT", "acct", "ok"),
            ("DAC_READ_SEARCH", "open_by_handle_at", "ok"),
            ("BPF", "bpf", "ok"), ("PERFMON", "perf_event_open", PERF_WITHOUT_SYS_ADMIN),
        ]
        by_cap = {}
        for cap, call, answer in cases:
            by_cap.setdefault(cap, []).append((call, answer))
        for cap, expected in by_cap.items():
            caps = defaults.DEFAULT_CAPS | {security.CAP_NAMES[cap]}
            got = self.confined_default([call for call, _ in expected], caps=caps)
            for call, answer in expected:
                self.assertEqual(got[call], answer, f"{call} with CAP_{cap}")

    def test_sys_resource_cannot_be_gained(self):
        # Root on this machine lacks CAP_SYS_RESOURCE: adding it cannot help,
        # raising a hard rlimit stays EPERM.  Where the host has it, it works.
        caps = defaults.DEFAULT_CAPS | {security.CAP_NAMES["SYS_RESOURCE"]}
        got = self.confined_default(["rlimit"], caps=caps)
        host_has_it = HOST_CAPS["CapBnd"] >> 24 & 1
        self.assertEqual(got["rlimit"], "ok" if host_has_it else "EPERM")

    def test_caps_alone_without_seccomp(self):
        # seccomp=unconfined: the capability drop still refuses mount,
        # swapon, reboot; calls needing no capability go through
        got = probe_all(["mount", "swapon", "reboot", "add_key", "keyctl",
                         "personality_bad", "perf_event_open"], caps=defaults.DEFAULT_CAPS)
        for call in ("mount", "swapon", "reboot"):
            self.assertEqual(got[call], "EPERM", call)
        for call in ("add_key", "keyctl", "personality_bad"):
            self.assertEqual(got[call], "ok", call)
        self.assertEqual(got["perf_event_open"], PERF_WITHOUT_SYS_ADMIN)

    def test_privileged_allows_everything(self):
        got = probe_all(["mount", "swapon", "reboot", "add_key", "unshare", "bpf",
                         "pivot_root"], caps=security.all_caps())
        self.assertEqual(got, {"mount": "ok", "swapon": "EINVAL", "reboot": "EINVAL",
                               "add_key": "ok", "unshare": "ok", "bpf": "ok",
                               "pivot_root": "ENOENT"})

    def test_pivot_root_stays_blocked(self):
        # as in Docker: no capability re-allows pivot_root, only unconfined
        caps = defaults.DEFAULT_CAPS | {security.CAP_SYS_ADMIN}
        self.assertEqual(self.confined_default(["pivot_root"], caps=caps)["pivot_root"],
                         "EPERM")

    def test_no_new_privs_set_when_needed(self):
        got = self.confined_default(["nnp"])
        self.assertEqual(got["nnp"], "1")   # no CAP_SYS_ADMIN: seccomp needs it
        caps = defaults.DEFAULT_CAPS | {security.CAP_SYS_ADMIN}
        self.assertEqual(self.confined_default(["nnp"], caps=caps)["nnp"], "0")
        got = probe_all(["nnp"], caps=caps, nnp=True)
        self.assertEqual(got["nnp"], "1")   # --security-opt no-new-privileges

    def test_custom_profile(self):
        path = os.path.join(tempfile.mkdtemp(dir=support.WORK), "profile.json")
        with open(path, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}]},
                {"names": ["setns"], "action": "SCMP_ACT_KILL_PROCESS"}]}, f)
        caps = security.all_caps()
        got = probe_all(["chroot", "personality", "personality_bad", "setns", "mount",
                         "keyctl"], caps=caps, program=seccomp.load_profile(path, caps))
        self.assertEqual(got, {"chroot": "EACCES", "personality": "ok",
                               "personality_bad": "EINVAL", "setns": "SIGSYS",
                               "mount": "ok", "keyctl": "ok"})

    def test_busybox_works_under_the_filter(self):
        script = ("mkdir -p /tmp/x && echo hi > /tmp/x/f && cat /tmp/x/f && "
                  "ls / >/dev/null && ps >/dev/null && sleep 0.01 && echo done")
        status, out = confined([BUSYBOX, "sh", "-c", script], caps=defaults.DEFAULT_CAPS,
                               program=default_program(defaults.DEFAULT_CAPS))
        self.assertEqual((status, out.split()), (0, ["hi", "done"]), out)


@support.requires_root
class HygieneTest(unittest.TestCase):
    def test_close_fds_except(self):
        keep_r, keep_w = os.pipe()
        extra = os.open("/dev/null", os.O_RDONLY)
        self.addCleanup(os.close, extra)
        self.addCleanup(os.close, keep_r)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                security.close_fds_except((0, 1, 2, keep_w))
                still_open = []
                for fd in (0, 1, 2, keep_r, extra, 255):
                    try:
                        os.fstat(fd)
                        still_open.append(fd)
                    except OSError:
                        pass
                os.write(keep_w, json.dumps(still_open).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(keep_w)
        still_open = json.loads(os.read(keep_r, 4096))
        os.waitpid(pid, 0)
        stdio = []
        for fd in (0, 1, 2):
            try:
                os.fstat(fd)
                stdio.append(fd)
            except OSError:
                pass
        self.assertEqual(still_open, stdio)

    def test_cloexec_mode_closes_at_exec(self):
        extra = os.open("/dev/null", os.O_RDONLY)   # inheritable
        self.addCleanup(os.close, extra)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(w, 1)
                security.close_fds_except((0, 1, 2), cloexec=True)
                os.execv(BUSYBOX, [BUSYBOX, "ls", "/proc/self/fd"])
            finally:
                os._exit(127)
        os.close(w)
        out = os.read(r, 4096).decode().split()
        os.close(r)
        os.waitpid(pid, 0)
        # 0-2 and the fd ls itself opens to list the directory
        self.assertEqual(sorted(map(int, out))[:3], [0, 1, 2])
        self.assertLessEqual(len(out), 4, out)

    def test_dumpable_and_pdeathsig(self):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                security.set_dumpable(False)
                security.set_parent_death_signal(signal.SIGKILL)
                os.write(w, str(linux.prctl(3)).encode())   # PR_GET_DUMPABLE
            finally:
                os._exit(0)
        os.close(w)
        self.assertEqual(os.read(r, 16), b"0")
        os.close(r)
        os.waitpid(pid, 0)


# ---------------------------------------------------------------- devices
def run_ebpf(code, ctx):
    """Interpret the eBPF subset device_program emits on a context (3 u32)."""
    regs, pc = [0] * 11, 0
    mem = struct.pack("<III", *ctx)
    while True:
        op, regbyte, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if op == 0x61:                                  # ldxw
            assert src == 1
            regs[dst] = struct.unpack_from("<I", mem, off)[0]
        elif op == 0x57:
            regs[dst] &= imm & (2**64 - 1)
        elif op == 0x77:
            regs[dst] >>= imm
        elif op == 0xB7:
            regs[dst] = imm & (2**64 - 1)
        elif op == 0xBF:
            regs[dst] = regs[src]
        elif op == 0x55:
            if regs[dst] != imm & (2**64 - 1):
                pc += off
        elif op == 0x15:                                # jeq
            if regs[dst] == imm & (2**64 - 1):
                pc += off
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"opcode {op:#x}")


def dev_ctx(kind, major, minor, access):
    acc = sum({"m": 1, "r": 2, "w": 4}[a] for a in access)
    return ((acc << 16) | {"b": 1, "c": 2}[kind], major, minor)


class DeviceProgramTest(unittest.TestCase):
    def test_default_rules(self):
        code = security.device_program(DOCKER_DEVICE_RULES)
        allowed = [("c", 1, 3, "rw"), ("c", 1, 9, "r"), ("c", 136, 7, "rw"),
                   ("c", 5, 2, "rw"), ("c", 10, 200, "rw"), ("b", 8, 0, "m"),
                   ("c", 1, 11, "m")]
        denied = [("c", 1, 11, "r"), ("b", 8, 0, "r"), ("b", 1, 3, "r"),
                  ("c", 1, 1, "rw"), ("c", 10, 201, "w"), ("b", 7, 0, "rm")]
        for case in allowed:
            self.assertEqual(run_ebpf(code, dev_ctx(*case)), 1, case)
        for case in denied:
            self.assertEqual(run_ebpf(code, dev_ctx(*case)), 0, case)

    def test_deny_rules_in_order_last_match_wins(self):
        # config.json: allow everything, then deny /dev/null writes
        code = security.device_program(security.rules_from_spec([
            {"allow": True, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]))
        self.assertEqual(run_ebpf(code, dev_ctx("c", 1, 3, "r")), 1)
        self.assertEqual(run_ebpf(code, dev_ctx("c", 1, 3, "w")), 0)
        self.assertEqual(run_ebpf(code, dev_ctx("c", 1, 5, "rw")), 1)

    def test_all_wildcard(self):
        code = security.device_program([("a", None, None, "rwm")])
        self.assertEqual(run_ebpf(code, dev_ctx("b", 8, 0, "rwm")), 1)
        self.assertEqual(run_ebpf(security.device_program([]), dev_ctx("c", 1, 3, "r")), 0)


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    return None


@support.requires_root
class DeviceFilterKernelTest(unittest.TestCase):
    """The default device program attached to a real cgroup v2 directory."""

    def setUp(self):
        root = cgroup2_mount()
        if root is None:
            self.skipTest("no cgroup2 mount")
        self.cgroup = os.path.join(root, f"{support.CGROUP_PARENT}-devices")
        os.mkdir(self.cgroup)
        self.addCleanup(self.remove_cgroup)
        self.tmp = tempfile.mkdtemp(dir=support.WORK)

    def remove_cgroup(self):
        for _ in range(100):
            try:
                os.rmdir(self.cgroup)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)    # EBUSY until the child is fully gone
        os.rmdir(self.cgroup)

    def test_only_default_devices_open(self):
        security.attach_device_filter(self.cgroup, DOCKER_DEVICE_RULES)
        tmp = self.tmp

        def child():
            import stat as st
            results = {}
            for path in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/kmsg"):
                if os.path.exists(path):
                    try:
                        os.close(os.open(path, os.O_RDONLY))
                        results[path] = "ok"
                    except OSError as e:
                        results[path] = e.errno
            for name, kind, dev in (("loop0", st.S_IFBLK, (7, 0)), ("kmsg", st.S_IFCHR, (1, 11))):
                node = os.path.join(tmp, name)
                os.mknod(node, kind | 0o600, os.makedev(*dev))     # mknod: allowed
                try:
                    os.close(os.open(node, os.O_RDONLY))
                    results[name] = "ok"
                except OSError as e:
                    results[name] = e.errno
            return results

        r, w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.read(go_r, 1)
                os.write(w, json.dumps(child()).encode())
            finally:
                os._exit(0)
        try:
            with open(os.path.join(self.cgroup, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        finally:
            os.write(go_w, b"g")
            os.close(w)
            results = json.loads(os.read(r, 4096) or b"{}")
            os.waitpid(pid, 0)
            for fd in (r, go_r, go_w):
                os.close(fd)
        self.assertEqual(results["/dev/null"], "ok")
        self.assertEqual(results["/dev/zero"], "ok")
        self.assertEqual(results["/dev/urandom"], "ok")
        self.assertEqual(results["loop0"], 1)      # EPERM
        self.assertEqual(results["kmsg"], 1)
        if "/dev/kmsg" in results:
            self.assertEqual(results["/dev/kmsg"], 1)


# --------------------------------------------------------- whole containers
_contain_works = None


def contain_works():
    global _contain_works
    if _contain_works is None:
        res = support.contain("run", "--rm", "--network", "none", "--rootfs",
                              support.busybox_rootfs(), "--", "/bin/true")
        _contain_works = res.returncode == 0
    return _contain_works


@support.requires_root
class ContainerSecurityTest(unittest.TestCase):
    """The probe inside real containers, through the contain CLI."""

    @classmethod
    def setUpClass(cls):
        if not contain_works():
            raise unittest.SkipTest("`contain run --rootfs DIR -- /bin/true` does not work yet")
        cls.rootfs = support.fresh_rootfs("security")
        shutil.copy(probe_binary(), os.path.join(cls.rootfs, "probe"))

    def run_probes(self, calls, *flags, extra=""):
        script = "".join(f'o=$(/probe {c} 2>&1); echo "{c}|$o|$?"\n' for c in calls)
        res = support.contain("run", "--rm", "--network", "none", *flags, "--rootfs",
                              self.rootfs, "--", "/bin/sh", "-c", script + extra)
        self.assertEqual(res.returncode, 0, res.stderr)
        got = {}
        for line in res.stdout.splitlines():
            if line.count("|") == 2:
                call, answer, rc = line.split("|")
                got[call] = answer if int(rc) < 128 else signal.Signals(int(rc) - 128).name
            elif ":" in line:
                key, _, value = line.partition(":")
                got[key] = value.strip()
        return got

    STATUS = "grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status\n"

    def test_defaults(self):
        got = self.run_probes(["mount", "umount", "pivot_root", "unshare", "setns",
                               "sethostname", "reboot", "swapon", "keyctl", "add_key",
                               "bpf", "perf_event_open", "clock_settime", "x32",
                               "chroot", "mknod", "getpid", "socket"], extra=self.STATUS)
        for call in ("mount", "umount", "pivot_root", "unshare", "setns", "sethostname",
                     "reboot", "swapon", "keyctl", "add_key", "bpf", "perf_event_open",
                     "clock_settime"):
            self.assertEqual(got[call], "EPERM", call)
        for call in ("chroot", "mknod", "getpid", "socket"):
            self.assertEqual(got[call], "ok", call)
        if ARCH == "x86_64":
            self.assertEqual(got["x32"], "SIGSYS")
        want = security.caps_mask(defaults.DEFAULT_CAPS) & HOST_CAPS["CapBnd"]
        for key in ("CapBnd", "CapPrm", "CapEff"):
            self.assertEqual(int(got[key], 16), want, key)
        self.assertEqual((int(got["CapInh"], 16), int(got["CapAmb"], 16)), (0, 0))
        # Docker's default: no no_new_privs, so setuid programs work (the
        # filter is installed while CAP_SYS_ADMIN is still held, as runc does)
        self.assertEqual((got["Seccomp"], got["NoNewPrivs"]), ("2", "0"))

    def test_cap_add(self):
        got = self.run_probes(["mount", "unshare", "sethostname", "reboot", "swapon"],
                              "--cap-add", "SYS_ADMIN", "--cap-add", "cap_sys_boot")
        self.assertEqual(got, {"mount": "ok", "unshare": "ok", "sethostname": "ok",
                               "reboot": "EINVAL", "swapon": "EPERM"})

    def test_cap_drop_all(self):
        got = self.run_probes(["chroot", "mknod"], "--cap-drop", "ALL", extra=self.STATUS)
        self.assertEqual((got["chroot"], got["mknod"]), ("EPERM", "EPERM"))
        self.assertEqual(int(got["CapBnd"], 16), 0)

    def test_privileged(self):
        got = self.run_probes(["mount", "swapon", "keyctl", "reboot"], "--privileged",
                              extra=self.STATUS + "wc -c < /proc/interrupts\n")
        self.assertEqual((got["mount"], got["swapon"], got["keyctl"], got["reboot"]),
                         ("ok", "EINVAL", "ok", "EINVAL"))
        self.assertEqual(int(got["CapBnd"], 16), HOST_CAPS["CapBnd"])
        self.assertEqual(got["Seccomp"], "0")

    def test_seccomp_unconfined(self):
        got = self.run_probes(["keyctl", "perf_event_open", "mount"],
                              "--security-opt", "seccomp=unconfined", extra=self.STATUS)
        self.assertEqual((got["keyctl"], got["perf_event_open"], got["mount"]),
                         ("ok", PERF_WITHOUT_SYS_ADMIN, "EPERM"))  # mount: no CAP_SYS_ADMIN
        self.assertEqual((got["Seccomp"], got["NoNewPrivs"]), ("0", "0"))

    def test_custom_profile_and_no_new_privileges(self):
        path = os.path.join(tempfile.mkdtemp(dir=support.WORK), "profile.json")
        with open(path, "w") as f:
            json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}, f)
        got = self.run_probes(["chroot", "keyctl"], "--security-opt", f"seccomp={path}",
                              "--security-opt", "no-new-privileges", "--cap-add", "SYS_ADMIN",
                              extra=self.STATUS)
        self.assertEqual((got["chroot"], got["keyctl"]), ("EACCES", "ok"))
        self.assertEqual((got["Seccomp"], got["NoNewPrivs"]), ("2", "1"))

    def test_non_root_user(self):
        got = self.run_probes(["chroot"], "--user", "1000", extra=self.STATUS)
        self.assertEqual(got["chroot"], "EPERM")
        self.assertEqual((int(got["CapPrm"], 16), int(got["CapEff"], 16)), (0, 0))
        self.assertEqual(int(got["CapBnd"], 16),
                         security.caps_mask(defaults.DEFAULT_CAPS) & HOST_CAPS["CapBnd"])

    def test_masked_and_read_only_paths(self):
        # at most 4 KiB of each: /proc/kcore, unmasked, is as big as the address space
        script = ("for f in /proc/keys /proc/interrupts /proc/timer_list /proc/kcore; do "
                  "  [ -e $f ] && echo \"$f:$(head -c 4096 $f | wc -c)\"; done\n"
                  "echo \"/sys/firmware:$(ls /sys/firmware | wc -l)\"\n"
                  "echo x 2>/dev/null > /proc/sys/kernel/hostname && echo sys:written "
                  "|| echo sys:refused\n"
                  "touch /sys/x 2>/dev/null && echo sysfs:written || echo sysfs:refused\n")
        got = self.run_probes([], extra=script)
        for path in ("/proc/keys", "/proc/interrupts", "/proc/timer_list", "/proc/kcore"):
            if path in got:
                self.assertEqual(got[path], "0", path)
        self.assertIn("/proc/interrupts", got)   # exists on every kernel
        self.assertEqual(got["/sys/firmware"], "0")
        self.assertEqual(got["sys"], "refused")
        self.assertEqual(got["sysfs"], "refused")
        # --privileged unmasks, as in Docker
        got = self.run_probes([], "--privileged", extra=script)
        self.assertNotEqual(got["/proc/interrupts"], "0")


if __name__ == "__main__":
    unittest.main()
