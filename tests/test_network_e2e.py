"""Networking end to end: real containers from `contain run`, inside the
sandbox of tests/netsandbox.py (the CLI runs in the sandbox's host namespace,
so bridge, veths and iptables rules are made there and die with it)."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from tests import netsandbox, support
from tests.netsandbox import HOST_IP, SERVER_IP
from contain.engine import netfilter


@support.requires_root
@unittest.skipUnless(netfilter.available(), "iptables is not installed")
class EndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rootfs = support.busybox_rootfs()

    def setUp(self):
        self.sb = netsandbox.Sandbox()
        self.addCleanup(self.sb.cleanup)
        self.sb.setup()
        # a state root per test: leases and networks never leak between tests
        self.env = {"CONTAIN_ROOT": tempfile.mkdtemp(prefix="e2e-", dir=support.WORK)}

    def contain(self, *args, ok=True):
        res = self.sb.contain(*args, timeout=20, extra_env=self.env)
        if ok:
            self.assertEqual(res.returncode, 0, f"contain {' '.join(args)}: {res.stderr}")
        return res

    def run_detached(self, name, *args):
        cid = self.contain("run", "-d", "--name", name, *args).stdout.strip()
        pid = self.inspect(name)["State"]["Pid"]
        with open(f"/proc/{pid}/stat") as f:
            monitor = int(f.read().rsplit(")", 1)[1].split()[1])
        self.addCleanup(self.remove, name, pid, monitor)
        return cid

    def remove(self, name, pid, monitor):
        """rm -f; should the runtime fail at that, kill PID 1 and its monitor."""
        try:
            self.sb.contain("rm", "-f", name, timeout=15, extra_env=self.env)
        except subprocess.TimeoutExpired:
            pass
        for p, marker in ((pid, ""), (monitor, "contain.py")):
            try:
                with open(f"/proc/{p}/cmdline") as f:
                    if marker in f.read():
                        os.kill(p, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    def fetch(self, host, port, path, ns=None):
        """HTTP GET from a sandbox namespace, retried while the server starts."""
        deadline = time.monotonic() + 5
        while True:
            body = self.sb.fetch(host, port, path, ns=ns)
            if body or time.monotonic() > deadline:
                return body
            time.sleep(0.05)

    def inspect(self, name):
        return json.loads(self.contain("inspect", name).stdout)[0]

    def assert_nothing_of(self, cid):
        self.assertNotIn(f"contain:{cid}", self.sb.iptables_save())
        self.assertEqual(self.sb.veths_left("veth" + cid[:10]), [])

    def test_network_commands(self):
        nid = self.contain("network", "create", "--subnet", "10.89.9.0/24", "--gateway",
                           "10.89.9.254", "-o", "com.docker.network.bridge.name=br-e2e",
                           "-o", "com.docker.network.driver.mtu=1300", "front").stdout.strip()
        self.assertEqual(len(nid), 64)
        res = self.contain("network", "create", "--subnet", "10.89.9.128/25", "clash", ok=False)
        self.assertEqual(res.returncode, 125)
        self.assertIn("overlaps network front", res.stderr)
        table = self.contain("network", "ls").stdout.splitlines()
        self.assertEqual(table[0].split(), ["NETWORK", "ID", "NAME", "DRIVER", "SUBNET", "SCOPE"])
        self.assertEqual(sorted(line.split()[1] for line in table[1:]), ["bridge", "front"])
        self.assertIn(nid[:12], self.contain("network", "ls", "-q").stdout.split())
        info = json.loads(self.contain("network", "inspect", "front").stdout)[0]
        self.assertEqual((info["bridge"], info["mtu"], info["gateway"]), ("br-e2e", 1300,
                                                                          "10.89.9.254"))
        res = self.contain("network", "rm", "bridge", "nosuch", ok=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("pre-defined", res.stderr)
        self.assertIn("network nosuch not found", res.stderr)
        self.assertEqual(self.contain("network", "prune", "-f").stdout,
                         "Deleted Networks:\nfront\n")
        self.assertNotIn("front", self.contain("network", "ls").stdout)
        res = self.contain("port", "nosuch", ok=False)
        self.assertIn("No such container", res.stderr)

    def test_outbound_published_ports_and_port_command(self):
        self.sb.server("tcp", 8000, "upstream", ns=self.sb.upstream)
        out = self.contain("run", "--rm", "--rootfs", self.rootfs, "nc", SERVER_IP, "8000")
        self.assertEqual(out.stdout.strip(), f"upstream {HOST_IP}")   # masqueraded

        cid = self.run_detached("web", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp",
                                "--rootfs", self.rootfs, "httpd", "-f", "-p", "80", "-h", "/etc")
        hostname = cid[:12]
        self.assertEqual(self.fetch(HOST_IP, 8080, "/hostname", ns=self.sb.upstream),
                         hostname)
        self.assertEqual(self.fetch("127.0.0.1", 8080, "/hostname"), hostname)
        self.assertEqual(self.contain("port", "web").stdout,
                         "80/tcp -> 0.0.0.0:8080\n53/udp -> 127.0.0.1:5353\n")
        self.assertEqual(self.contain("port", "web", "80/tcp").stdout, "0.0.0.0:8080\n")
        self.assertNotEqual(self.contain("port", "web", "81", ok=False).returncode, 0)
        settings = self.inspect("web")["NetworkSettings"]
        self.assertTrue(settings["IPAddress"].startswith("10.88."), settings)
        # a second container cannot take the same host port
        res = self.contain("run", "--rm", "-p", "8080:80", "--rootfs", self.rootfs, "true",
                           ok=False)
        self.assertEqual(res.returncode, 125)
        self.assertIn("8080/tcp", res.stderr)
        self.contain("rm", "-f", "web")
        self.assert_nothing_of(cid)

    def test_names_user_networks_and_prune(self):
        self.contain("network", "create", "--subnet", "10.89.7.0/24", "backend")
        a = self.run_detached("a", "--network", "backend", "--rootfs", self.rootfs, "sleep", "60")
        self.run_detached("b", "--network", "backend", "--rootfs", self.rootfs, "sleep", "60")
        self.run_detached("c", "--rootfs", self.rootfs, "sleep", "60")
        a_ip = self.inspect("a")["NetworkSettings"]["IPAddress"]
        self.assertTrue(a_ip.startswith("10.89.7."))
        self.contain("exec", "a", "ping", "-c", "1", "-W", "2", "b")
        hosts = self.contain("exec", "a", "cat", "/etc/hosts").stdout
        self.assertIn("\tb\n", hosts)          # b started after a: a's file was refreshed
        res = self.contain("exec", "c", "ping", "-c", "1", "-W", "1", a_ip, ok=False)
        self.assertNotEqual(res.returncode, 0)                    # networks are isolated
        res = self.contain("network", "rm", "backend", ok=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("in use", res.stderr)
        self.assertIn("backend", self.contain("network", "ls").stdout)
        info = json.loads(self.contain("network", "inspect", "backend").stdout)[0]
        self.assertEqual(sorted(ep["name"] for ep in info["containers"].values()), ["a", "b"])
        self.contain("rm", "-f", "a", "b", "c")
        self.assert_nothing_of(a)
        self.assertEqual(self.contain("network", "rm", "backend").stdout, "backend\n")
        self.contain("network", "prune", "-f")
        self.assertEqual(self.sb.veths_left(), [])
        self.assertEqual(self.sb.links(), ["lo", "eth0"])
        self.assertNotIn("-A ", self.sb.iptables_save())

    def test_none_mode_and_killed_container(self):
        out = self.contain("run", "--rm", "--network", "none", "--rootfs", self.rootfs,
                           "ip", "-o", "link").stdout
        self.assertEqual([line.split(": ")[1] for line in out.splitlines()], ["lo"])

        cid = self.run_detached("victim", "-p", "9090:80", "--rootfs", self.rootfs,
                                "httpd", "-f", "-p", "80")
        pid = self.inspect("victim")["State"]["Pid"]
        self.assertIn(f"contain:{cid}", self.sb.iptables_save())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.02)
        self.contain("rm", "-f", "victim")
        self.assert_nothing_of(cid)

    def test_veth_goes_while_another_container_holds_the_namespace(self):
        """`run --rm` leaves its veth to the kernel, which frees it with the
        network namespace; when a container that joined that namespace keeps
        it alive, the helper deletes the veth itself after its grace period."""
        from tests import support
        owner = subprocess.Popen(
            [netsandbox.NSENTER, f"--net={self.sb.path()}", support.PYTHON, support.CONTAIN,
             "run", "--rm", "-i", "--name", "owner", "--rootfs", self.rootfs,
             "sh", "-c", "echo up; read line"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=support.env(CONTAIN_DEFAULT_NETWORK="bridge", **self.env))
        self.addCleanup(owner.kill)
        self.assertEqual(owner.stdout.readline(), "up\n")
        cid = self.inspect("owner")["Id"]
        self.run_detached("guest", "--network", "container:owner", "--rootfs", self.rootfs,
                          "sleep", "1000")
        guest = self.inspect("guest")["State"]["Pid"]
        owner.communicate("\n", timeout=20)
        self.assertEqual(owner.returncode, 0)
        self.assertEqual(self.sb.veths_left("veth" + cid[:10]), [])
        self.assertTrue(os.path.exists(f"/proc/{guest}"), "the guest was not touched")
        self.assert_nothing_of(cid)


if __name__ == "__main__":
    unittest.main()
