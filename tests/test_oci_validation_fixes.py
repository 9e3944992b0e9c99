"""What runtime-tools' validation suite found in the core (bench/validation.py
runs the suite itself): a one-component cgroupsPath, a seccomp profile that
refuses close_range, joining a mount namespace by path."""

import json
import os
import unittest

from tests import support  # noqa: F401  (puts the project on sys.path)
from contain.core import cgroups, lifecycle, seccomp, security
from contain.errors import UsageError


class CgroupsPathTest(unittest.TestCase):
    def test_one_component_is_a_cgroup_at_the_hierarchy_root(self):
        self.assertEqual(lifecycle.cgroup_location("/cgrouptest", "id"), ("", "cgrouptest"))
        self.assertEqual(cgroups._check_names("", "cgrouptest"), ("", "cgrouptest"))

    def test_the_root_itself_and_dotdot_stay_refused(self):
        for path in ("/", "/a/../b", "/.."):
            with self.assertRaises(UsageError, msg=path):
                lifecycle.cgroup_location(path, "id")
        with self.assertRaises(UsageError):
            cgroups._check_names("a//b", "x")


class SameNamespaceTest(unittest.TestCase):
    def test_same_and_different_namespaces(self):
        self.assertTrue(lifecycle.same_namespace("/proc/self/ns/mnt", "/proc/self/ns/mnt"))
        self.assertFalse(lifecycle.same_namespace("/proc/self/ns/net", "/proc/self/ns/mnt"))
        self.assertFalse(lifecycle.same_namespace("/nonexistent", "/proc/self/ns/mnt"))


class CloseRangeRefusedTest(unittest.TestCase):
    def test_fds_are_closed_when_seccomp_refuses_close_range(self):
        """A profile older than close_range (runtime-tools' default) answers
        EPERM: the fds must be closed all the same."""
        profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]}
        program = seccomp.profile_program(json.dumps(profile), caps=[])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                                   # the child reports, then exits
            code = 1
            try:
                os.close(r)
                extra = os.open("/dev/null", os.O_RDONLY)
                seccomp.install(program)
                security.close_fds_except({0, 1, 2, w})
                try:
                    os.fstat(extra)
                    os.write(w, b"still open")
                except OSError:
                    os.write(w, b"closed")
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        answer = os.read(r, 64)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(answer, b"closed")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)


if __name__ == "__main__":
    unittest.main()
