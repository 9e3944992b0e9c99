"""Networking: address management, port and DNS options, and bridge
networking against the real kernel inside a private sandbox (tests/netsandbox.py).

Until `contain run` does networking, a "container" here is a stand-in: a
process in a new network namespace below the sandbox's host namespace,
exactly what the runtime's child is while the parent attaches it.
"""

import json
import os
import signal
import tempfile
import time
import unittest
from unittest import mock

from tests import support
from tests import netsandbox
from tests.netsandbox import HOST_IP, SERVER_IP, UPLINK_MTU
from contain.engine import etcfiles, ipam, netfilter, network
from contain.errors import Conflict, ContainError, NotFound, UsageError

HAVE_IPTABLES = netfilter.available()
requires_iptables = unittest.skipUnless(HAVE_IPTABLES, "iptables is not installed")


def cid(n):
    """A container id like the runtime's (64 hex digits), distinct per n."""
    return f"{n:02x}" * 32


def state_root():
    return tempfile.mkdtemp(prefix="net-", dir=support.WORK)


# ================================================================ pure logic
class IpamTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(ipam.parse_cidr("10.88.0.0/16"), (ipam.ip_to_int("10.88.0.0"), 16))
        for bad in ("10.88.0.1/16", "10.88.0.0", "10.88.0/16", "10.88.0.0/31", "300.1.1.0/24",
                    "10.88.0.0/x"):
            with self.assertRaises(ValueError, msg=bad):
                ipam.parse_cidr(bad)
        self.assertIn("did you mean 10.88.0.0/16", self._error("10.88.0.1/16"))

    def _error(self, text):
        try:
            ipam.parse_cidr(text)
        except ValueError as e:
            return str(e)

    def test_allocate_skips_taken_and_wraps(self):
        net, prefix = ipam.parse_cidr("10.0.0.0/29")   # hosts .1 - .6
        i = ipam.ip_to_int
        taken = {i("10.0.0.1"), i("10.0.0.2")}
        self.assertEqual(ipam.allocate(net, prefix, taken), i("10.0.0.3"))
        self.assertEqual(ipam.allocate(net, prefix, taken, last=i("10.0.0.5")), i("10.0.0.6"))
        # after the last host it wraps around, past the taken ones
        self.assertEqual(ipam.allocate(net, prefix, taken, last=i("10.0.0.6")), i("10.0.0.3"))
        full = {i(f"10.0.0.{n}") for n in range(1, 7)}
        self.assertIsNone(ipam.allocate(net, prefix, full))

    def test_overlaps_and_mac(self):
        a, b = ipam.parse_cidr("10.88.0.0/16"), ipam.parse_cidr("10.88.5.0/24")
        self.assertTrue(ipam.overlaps(a, b) and ipam.overlaps(b, a))
        self.assertFalse(ipam.overlaps(a, ipam.parse_cidr("10.89.0.0/24")))
        self.assertEqual(ipam.mac_for(ipam.ip_to_int("10.88.0.2")), "02:42:0a:58:00:02")


class OptionsTest(unittest.TestCase):
    def test_publish_forms(self):
        p = network.parse_publish
        self.assertEqual(p("80"), [{"host_ip": "", "proto": "tcp", "host_port": 0,
                                    "host_port_end": 0, "container_port": 80}])
        self.assertEqual([(r["host_port"], r["container_port"]) for r in p("8080:80")],
                         [(8080, 80)])
        r = p("127.0.0.1:53:53/udp")[0]
        self.assertEqual((r["host_ip"], r["host_port"], r["proto"]), ("127.0.0.1", 53, "udp"))
        self.assertEqual(p("127.0.0.1::80")[0]["host_port"], 0)
        self.assertEqual([(r["host_port"], r["container_port"]) for r in p("8000-8001:80-81")],
                         [(8000, 80), (8001, 81)])
        r = p("9000-9010:80")[0]
        self.assertEqual((r["host_port"], r["host_port_end"]), (9000, 9010))
        for bad in ("http", "0:80", "80:70000", "1.2.3:80:80", "80/sctp", "[::1]:80:80",
                    "8000-8002:80-81", "a:b:c:d", "80:"):
            with self.assertRaises(UsageError, msg=bad):
                p(bad)

    def test_exposed_and_port_lines(self):
        self.assertEqual([(r["container_port"], r["proto"]) for r in
                          network.parse_exposed(["80/tcp", "53/UDP", "8000-8001"])],
                         [(80, "tcp"), (53, "udp"), (8000, "tcp"), (8001, "tcp")])
        info = {"ports": [{"proto": "tcp", "container_port": 80, "host_ip": "0.0.0.0",
                           "host_port": 8080},
                          {"proto": "udp", "container_port": 53, "host_ip": "127.0.0.1",
                           "host_port": 5353}]}
        self.assertEqual(network.port_lines(info), ["80/tcp -> 0.0.0.0:8080",
                                                    "53/udp -> 127.0.0.1:5353"])
        self.assertEqual(network.port_lines(info, "53/udp"), ["127.0.0.1:5353"])
        self.assertEqual(network.port_lines(info, "53"), [])
        self.assertEqual(network.format_port(info["ports"][0]), "0.0.0.0:8080->80/tcp")

    def test_add_hosts(self):
        self.assertEqual(etcfiles.parse_add_hosts(["db:10.0.0.5", "v6=::1", "gw:host-gateway"],
                                                 gateway="10.88.0.1"),
                         [["db", "10.0.0.5"], ["v6", "::1"], ["gw", "10.88.0.1"]])
        for bad in ("db", "db:", ":1.2.3.4", "db:notanip"):
            with self.assertRaises(UsageError, msg=bad):
                etcfiles.parse_add_hosts([bad])

    def test_veth_name_fits_ifnamsiz_and_is_stable(self):
        self.assertEqual(network.veth_name(cid(1)), "veth0101010101")
        other = network.veth_name("not-hex-id")
        self.assertEqual(other, network.veth_name("not-hex-id"))
        self.assertLessEqual(len(other), 15)
        self.assertNotEqual(other, network.veth_name("not-hex-id2"))


class FilesTest(unittest.TestCase):
    HOST = ("# managed\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\n"
            "nameserver fe80::1\nsearch corp.example\noptions edns0 trust-ad\n")

    def test_resolv_drops_loopback_and_ipv6(self):
        self.assertEqual(etcfiles.resolv_conf(self.HOST),
                         "search corp.example\nnameserver 10.0.0.2\noptions edns0 trust-ad\n")

    def test_resolv_default_when_only_loopback(self):
        text = etcfiles.resolv_conf("nameserver 127.0.0.53\n", default_dns=["192.0.2.53"])
        self.assertEqual(text, "nameserver 192.0.2.53\n")
        old = os.environ.get("CONTAIN_DEFAULT_DNS")
        os.environ["CONTAIN_DEFAULT_DNS"] = "192.0.2.7,192.0.2.8"
        try:
            self.assertEqual(etcfiles.resolv_conf("nameserver 127.0.0.1\n"),
                             "nameserver 192.0.2.7\nnameserver 192.0.2.8\n")
        finally:
            if old is None:
                del os.environ["CONTAIN_DEFAULT_DNS"]
            else:
                os.environ["CONTAIN_DEFAULT_DNS"] = old
        self.assertIn("nameserver 8.8.8.8", etcfiles.resolv_conf(""))

    def test_resolv_overrides(self):
        text = etcfiles.resolv_conf(self.HOST, dns=["1.1.1.1"], dns_search=["a.test", "b.test"],
                                   dns_options=["ndots:2"])
        self.assertEqual(text, "search a.test b.test\nnameserver 1.1.1.1\noptions ndots:2\n")
        self.assertNotIn("search", etcfiles.resolv_conf(self.HOST, dns_search=["."]))
        self.assertIn("nameserver 127.0.0.53", etcfiles.resolv_conf(self.HOST, keep_loopback=True))

    def test_hosts(self):
        text = etcfiles.hosts_file("web", "abc123", "10.88.0.2", [["db", "10.0.0.5"]],
                                  [("cache", "10.88.0.3"), ("web", "10.88.0.9")])
        lines = text.splitlines()
        self.assertEqual(lines[0], "127.0.0.1\tlocalhost")
        self.assertIn("10.0.0.5\tdb", lines)
        self.assertIn("10.88.0.2\tabc123 web", lines)
        self.assertIn("10.88.0.3\tcache", lines)
        self.assertNotIn("10.88.0.9\tweb", lines)     # its own name is never a neighbour's
        self.assertIn("127.0.1.1\tbox", etcfiles.hosts_file(None, "box", None))


class NetfilterTextTest(unittest.TestCase):
    SAVED = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:CONTAIN-FORWARD - [0:0]
-A FORWARD -m comment --comment contain-base -j CONTAIN-FORWARD
-A CONTAIN-FORWARD -o br1 -m comment --comment "contain-network:br1" -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:CONTAIN-DNAT - [0:0]
-A CONTAIN-DNAT -p tcp -m tcp --dport 80 -m comment --comment "contain:abc" -j DNAT --to-destination 10.88.0.2:80
-A CONTAIN-DNAT -p tcp -m tcp --dport 81 -m comment --comment "contain:abcd" -j DNAT --to-destination 10.88.0.3:80
COMMIT
"""

    def test_parse_and_comments(self):
        saved = netfilter.parse_save(self.SAVED)
        self.assertEqual(saved["filter"]["chains"], {"INPUT", "FORWARD", "CONTAIN-FORWARD"})
        self.assertEqual([netfilter.comment_of(r) for r in saved["nat"]["rules"]],
                         ["contain:abc", "contain:abcd"])

    def test_missing_adds_only_what_is_absent(self):
        changes, declare = netfilter.missing(netfilter.parse_save(self.SAVED),
                                             [("br1", "10.88.0.0/16"), ("br2", "10.89.0.0/24")])
        self.assertEqual(declare["filter"], ["CONTAIN-ISOLATION1", "CONTAIN-ISOLATION2"])
        self.assertEqual(declare["nat"], ["CONTAIN-POSTROUTING"])
        filt = "\n".join(changes["filter"])
        self.assertNotIn("-I FORWARD", filt)                      # jump present already
        self.assertIn("-j CONTAIN-ISOLATION1", filt)
        self.assertNotIn("-o br1 ", filt)                         # br1 has its rules
        self.assertIn("-A CONTAIN-ISOLATION2 -o br2", filt)
        self.assertEqual(sum("-I PREROUTING" in r for r in changes["nat"]), 1)
        self.assertIn("-s 10.89.0.0/24 ! -o br2", "\n".join(changes["nat"]))

    def test_removal_by_exact_tag(self):
        changes = netfilter.removal(netfilter.parse_save(self.SAVED), {"contain:abc"})
        self.assertEqual(changes["nat"], [
            "-D CONTAIN-DNAT -p tcp -m tcp --dport 80 -m comment --comment \"contain:abc\" "
            "-j DNAT --to-destination 10.88.0.2:80"])
        self.assertEqual(changes["filter"], [])
        base = netfilter.removal(netfilter.parse_save(self.SAVED), set(), base=True)
        self.assertEqual(base["filter"], ["-D FORWARD -m comment --comment contain-base "
                                          "-j CONTAIN-FORWARD", "-F CONTAIN-FORWARD",
                                          "-X CONTAIN-FORWARD"])

    def test_container_rules(self):
        rules = netfilter.container_rules("x", "10.88.0.2", [
            {"proto": "udp", "container_port": 53, "host_ip": "127.0.0.1", "host_port": 5353}])
        self.assertEqual(rules["nat"], [
            "-A CONTAIN-DNAT -d 127.0.0.1/32 -p udp -m udp --dport 5353 "
            "-m comment --comment contain:x -j DNAT --to-destination 10.88.0.2:53"])
        self.assertEqual(netfilter.container_rules("x", "10.88.0.2", []), {})


# ============================================= against the kernel, sandboxed
@support.requires_root
class SandboxTest(unittest.TestCase):
    """Each test gets a fresh sandbox (host + upstream namespaces) and store."""

    def setUp(self):
        self.sb = netsandbox.Sandbox()
        self.addCleanup(self.sb.cleanup)
        self.sb.setup()
        self.store = network.NetworkStore(state_root())
        self.warnings = []

    def start(self, n, opts=None, hosts_path=None):
        """prepare + a stand-in + attach: (netinfo, stand-in process)."""
        with self.sb.entered():
            info = network.prepare(self.store, cid(n), dict(opts or {}))
            if hosts_path:          # as hosts_for() records it for the runtime
                info["hosts_path"] = hosts_path
            proc = self.sb.standin()
            self.warnings += network.attach(info, proc.pid)
        return info, proc

    def detach(self, n, info=None):
        with self.sb.entered():
            network.detach(self.store, cid(n), info)

    def nothing_left(self):
        """After cleanup_unused: no links, rules or chains of contain's."""
        with self.sb.entered():
            network.cleanup_unused(self.store)
            forward = network._sysctl("net/ipv4/ip_forward")
        self.assertEqual(self.sb.links(), ["lo", "eth0"])
        saved = self.sb.iptables_save() if HAVE_IPTABLES else ""
        self.assertNotIn("-A ", saved)
        self.assertNotIn("CONTAIN", saved)
        self.assertEqual(forward, "0")
        for name in ("bridge", *[n["name"] for n in self.store.list()]):
            self.assertEqual(self.store.endpoints(name), {})


# ================================================= the store and its leases
class StoreTest(SandboxTest):
    """The store's own logic; run inside the sandbox because removing a
    network or a lease also looks for its bridge and rules."""

    def setUp(self):
        super().setUp()
        inside = self.sb.entered()
        inside.__enter__()
        self.addCleanup(inside.__exit__, None, None, None)

    def test_default_network_and_create(self):
        names = [n["name"] for n in self.store.list()]
        self.assertEqual(names, ["bridge"])
        net = self.store.create("backend")
        self.assertEqual(net["subnet"], "10.89.0.0/24")
        self.assertEqual(net["gateway"], "10.89.0.1")
        self.assertLessEqual(len(net["bridge"]), 15)
        self.assertEqual(self.store.create("front")["subnet"], "10.89.1.0/24")
        self.assertEqual(self.store.inspect(net["id"][:8])["name"], "backend")
        self.assertEqual(self.store.inspect("bridge")["subnet"], "10.88.0.0/16")
        with open(os.path.join(self.store.root, "backend.json")) as f:
            self.assertEqual(json.load(f)["id"], net["id"])

    def test_create_refusals(self):
        self.store.create("a", subnet="10.90.0.0/16", gateway="10.90.0.254")
        for args, error in ((("a",), Conflict), (("bridge",), Conflict), (("host",), Conflict),
                            (("b", "10.90.1.0/24"), Conflict), (("c", "10.91.0.1/16"), UsageError),
                            (("d", "10.92.0.0/24", "10.93.0.1"), UsageError),
                            (("bad name",), UsageError)):
            with self.assertRaises(error, msg=args):
                self.store.create(*args)
        self.assertEqual(self.store.inspect("a")["gateway"], "10.90.0.254")
        with self.assertRaises(NotFound):
            self.store.inspect("nope")

    def test_remove_refused_while_in_use_and_prune(self):
        self.store.create("used")
        self.store.create("idle")
        network.prepare(self.store, cid(1), {"mode": "used", "name": "web"})
        with self.assertRaisesRegex(Conflict, "in use by container.*web"):
            self.store.remove("used")
        with self.assertRaisesRegex(Conflict, "pre-defined"):
            self.store.remove("bridge")
        self.assertEqual(self.store.prune(), ["idle"])
        network.detach(self.store, cid(1))
        self.assertEqual(self.store.remove("used"), "used")
        self.assertEqual([n["name"] for n in self.store.list()], ["bridge"])

    def test_leases(self):
        self.store.create("small", subnet="10.77.0.0/29")      # .2 - .6 for containers
        ips = [network.prepare(self.store, cid(n), {"mode": "small"})["ip"] for n in range(5)]
        self.assertEqual(ips, [f"10.77.0.{n}" for n in range(2, 7)])
        with self.assertRaisesRegex(ContainError, "no free address left in network small"):
            network.prepare(self.store, cid(9), {"mode": "small"})
        network.detach(self.store, cid(2))
        again = network.prepare(self.store, cid(9), {"mode": "small"})
        self.assertEqual(again["ip"], "10.77.0.4")
        # prepare twice for one container keeps its address
        self.assertEqual(network.prepare(self.store, cid(9), {"mode": "small"})["ip"], "10.77.0.4")

    def test_requested_ip(self):
        a = network.prepare(self.store, cid(1), {"ip": "10.88.7.7", "name": "a"})
        self.assertEqual((a["ip"], a["mac"]), ("10.88.7.7", "02:42:0a:58:07:07"))
        with self.assertRaisesRegex(Conflict, "10.88.7.7 is already in use by a"):
            network.prepare(self.store, cid(2), {"ip": "10.88.7.7"})
        for bad in ("10.88.0.1", "10.99.0.2", "10.88.255.255", "x"):
            with self.assertRaises(ContainError, msg=bad):
                network.prepare(self.store, cid(3), {"ip": bad})

    def test_modes_without_a_bridge(self):
        for mode in ("none", "host", "container:other"):
            info = network.prepare(self.store, cid(1), {"mode": mode})
            self.assertEqual(info["mode"], mode)
            self.assertNotIn("ip", info)
        with self.assertRaisesRegex(UsageError, "port publishing"):
            network.prepare(self.store, cid(1), {"mode": "none", "publish": ["80"]})
        info = network.prepare(self.store, cid(1), {"mode": "host", "publish": ["80"]})
        self.assertTrue(info["warnings"])
        with self.assertRaises(NotFound):
            network.prepare(self.store, cid(1), {"mode": "nosuchnet"})
        self.assertEqual(self.store.endpoints("bridge"), {})

    def test_concurrent_allocation(self):
        """20 starts at once: 20 different addresses, 20 leases on disk."""
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        pids = []
        for n in range(20):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(go_w)
                    os.read(go_r, 1)       # all start together when the pipe closes
                    info = network.prepare(network.NetworkStore(self.store.state_root),
                                           cid(n), {})
                    os.write(out_w, (info["ip"] + "\n").encode())
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        os.close(go_r)
        os.close(out_w)
        os.close(go_w)
        codes = [os.waitpid(pid, 0)[1] for pid in pids]
        with os.fdopen(out_r) as f:
            ips = f.read().split()
        self.assertEqual(codes, [0] * 20)
        self.assertEqual(len(ips), 20)
        self.assertEqual(len(set(ips)), 20, ips)
        leased = {ep["ip"] for ep in self.store.endpoints("bridge").values()}
        self.assertEqual(leased, set(ips))


@requires_iptables
class BridgeTest(SandboxTest):
    def test_nat_published_ports_and_teardown(self):
        # a FORWARD policy of DROP (a hardened host) must not break anything
        self.sb.sh("iptables", "-P", "FORWARD", "DROP")
        self.sb.server("tcp", 8000, "upstream", ns=self.sb.upstream)
        info, box = self.start(1, {"publish": ["8080:80", "127.0.0.1:5353:53/udp", "81"]})
        self.assertEqual(info["ip"], "10.88.0.2")
        # outbound: the upstream server sees the host's address, not 10.88.0.2
        self.assertEqual(self.sb.client("tcp", SERVER_IP, 8000, pid=box.pid),
                         f"upstream {HOST_IP}")
        self.sb.server("tcp", 80, "web", pid=box.pid)
        self.sb.server("udp", 53, "dns", pid=box.pid)
        self.sb.server("tcp", 81, "any", pid=box.pid)
        # published: from upstream (the client's own address is kept) ...
        self.assertEqual(self.sb.client("tcp", HOST_IP, 8080, ns=self.sb.upstream),
                         "web 192.0.2.1")
        # ... from the host itself, also via 127.0.0.1 ...
        self.assertTrue(self.sb.client("tcp", "127.0.0.1", 8080).startswith("web "))
        self.assertTrue(self.sb.client("tcp", HOST_IP, 8080).startswith("web "))
        # ... udp bound to 127.0.0.1 only: not reachable from upstream
        self.assertTrue(self.sb.client("udp", "127.0.0.1", 5353).startswith("dns "))
        self.assertTrue(self.sb.client("udp", HOST_IP, 5353, ns=self.sb.upstream,
                                       timeout=0.5).startswith("error"))
        # ... a random host port for -p 81 ...
        any_port = [p for p in info["ports"] if p["container_port"] == 81][0]["host_port"]
        self.assertNotIn(any_port, (0, 81))
        self.assertTrue(self.sb.client("tcp", HOST_IP, any_port, ns=self.sb.upstream)
                        .startswith("any "))
        # ... and from the container itself through the host (hairpin)
        self.assertTrue(self.sb.client("tcp", HOST_IP, 8080, pid=box.pid).startswith("web "))

        # one MTU, the uplink's, on bridge, veth and eth0
        show = self.sb.sh("ip", "-o", "link").stdout
        for dev in ("contain0", info["veth"]):
            self.assertIn(f"mtu {UPLINK_MTU}", [ln for ln in show.splitlines() if f" {dev}" in ln][0])
        inside = netsandbox._run(["nsenter", f"--net=/proc/{box.pid}/ns/net", "ip", "-o",
                                  "link", "show", "eth0"]).stdout
        self.assertIn(f"mtu {UPLINK_MTU}", inside)
        self.assertIn(info["mac"], inside)
        rx, tx = network.interface_counters(box.pid)
        self.assertGreater(rx, 0)
        self.assertGreater(tx, 0)

        # clean teardown: after PID 1 exits, and again (idempotent)
        self.sb.kill(box)
        self.detach(1, info)
        self.detach(1, info)
        self.assertNotIn("contain:", self.sb.iptables_save())
        self.assertNotIn(info["veth"], self.sb.links())
        self.sb.sh("iptables", "-P", "FORWARD", "ACCEPT")
        self.nothing_left()

    def test_containers_talk_networks_are_isolated(self):
        with self.sb.entered():
            self.store.create("other")
        a, box_a = self.start(1)
        b, box_b = self.start(2)
        c, box_c = self.start(3, {"mode": "other"})
        self.assertTrue(self.sb.ping(box_a.pid, b["ip"]))
        self.assertTrue(self.sb.ping(box_b.pid, a["ip"]))
        self.assertFalse(self.sb.ping(box_c.pid, a["ip"]))
        self.assertFalse(self.sb.ping(box_a.pid, c["ip"]))
        # the other network still reaches the outside, masqueraded
        self.sb.server("tcp", 8000, "upstream", ns=self.sb.upstream)
        self.assertEqual(self.sb.client("tcp", SERVER_IP, 8000, pid=box_c.pid),
                         f"upstream {HOST_IP}")
        # a port published by one container is refused to another
        with self.sb.entered():
            network.prepare(self.store, cid(4), {"publish": ["9000:80"]})
            with self.assertRaisesRegex(Conflict, "already allocated to container 04040404"):
                network.prepare(self.store, cid(5), {"mode": "other", "publish": ["9000:80"]})
        for n, box in ((1, box_a), (2, box_b), (3, box_c)):
            self.sb.kill(box)
        for n in (1, 2, 3, 4):
            self.detach(n)
        self.nothing_left()

    def test_crash_then_detach_by_id_alone(self):
        info, box = self.start(1, {"publish": ["8080:80"]})
        self.assertIn(info["veth"], self.sb.links())
        self.assertIn(f'"contain:{cid(1)}"', self.sb.iptables_save())
        box.send_signal(signal.SIGKILL)
        box.wait()
        deadline = time.monotonic() + 5       # the kernel destroys netns and veth
        while info["veth"] in self.sb.links() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertNotIn(info["veth"], self.sb.links())
        self.detach(1)                  # no netinfo: a crashed runtime lost it
        self.assertNotIn(f"contain:{cid(1)}", self.sb.iptables_save())
        self.assertEqual(self.store.endpoints("bridge"), {})
        self.nothing_left()

    def test_host_port_in_use_is_refused(self):
        server = self.sb.server("tcp", 7070, "hostproc")
        with self.sb.entered(), self.assertRaisesRegex(Conflict, "7070/tcp.*already in use"):
            network.prepare(self.store, cid(1), {"publish": ["7070:80"]})
        with self.sb.entered():     # a range skips the busy port
            info = network.prepare(self.store, cid(1), {"publish": ["7070-7071:80"]})
        self.assertEqual(info["ports"][0]["host_port"], 7071)
        self.sb.kill(server)
        self.detach(1, info)

    def test_attach_failure_undoes_itself(self):
        with self.sb.entered():
            info = network.prepare(self.store, cid(1), {"publish": ["8080:80"]})
            box = self.sb.standin()
            self.sb.kill(box)              # the child died before the attach
            with self.assertRaises(ContainError):
                network.attach(info, box.pid)
        self.assertNotIn(info["veth"], self.sb.links())
        self.assertNotIn("contain:", self.sb.iptables_save())
        self.detach(1, info)
        # the bridge that failed start made is complete: the next one gets out
        self.sb.server("tcp", 8000, "upstream", ns=self.sb.upstream)
        _, box = self.start(2)
        self.assertEqual(self.sb.client("tcp", SERVER_IP, 8000, pid=box.pid),
                         f"upstream {HOST_IP}")
        self.sb.kill(box)
        self.detach(2)
        self.nothing_left()

    def test_rules_heal_after_a_flush(self):
        a, box_a = self.start(1)
        self.sb.sh("iptables", "-t", "nat", "-F", "CONTAIN-POSTROUTING")
        self.sb.sh("iptables", "-t", "nat", "-D", "PREROUTING", "-m", "addrtype",
                   "--dst-type", "LOCAL", "-m", "comment", "--comment", "contain-base",
                   "-j", "CONTAIN-DNAT")
        b, box_b = self.start(2, {"publish": ["8080:80"]})
        saved = self.sb.iptables_save()
        self.assertIn("-A PREROUTING -m addrtype --dst-type LOCAL", saved)
        self.assertEqual(saved.count("-A OUTPUT"), 1)
        self.assertIn("-s 10.88.0.0/16 ! -o contain0", saved)
        self.sb.server("tcp", 80, "web", pid=box_b.pid)
        self.assertTrue(self.sb.client("tcp", HOST_IP, 8080, ns=self.sb.upstream)
                        .startswith("web"))

    def test_usual_publish_and_removal_read_nothing_back(self):
        # all rules in place: add() checks and adds in one restore, and
        # detach deletes the container's own lines; iptables-save is not run
        info, box = self.start(1)
        with mock.patch.object(netfilter, "save", side_effect=AssertionError("read back")):
            b, box_b = self.start(2, {"publish": ["8080:80"]})
            self.sb.kill(box_b)
            self.detach(2, b)
            with mock.patch.object(netfilter, "restore", side_effect=AssertionError("restore")):
                self.detach(2, b)   # released already (its rules went first): nothing to run
        self.assertNotIn("contain:", self.sb.iptables_save())
        self.sb.kill(box)
        self.detach(1, info)
        self.nothing_left()

    def test_rules_changed_by_hand_are_removed_by_tag(self):
        # one rule deleted by hand, another added under the container's tag:
        # deleting the container's own lines fails, and the tag finds the rest
        info, box = self.start(1, {"publish": ["8080:80", "8081:81"]})
        tag = netfilter.container_tag(cid(1))
        first = netfilter.container_rules(cid(1), info["ip"], info["ports"])["nat"][0]
        self.sb.sh("iptables", "-t", "nat", *("-D" + first[2:]).split())
        self.sb.sh("iptables", "-t", "nat", "-A", "CONTAIN-DNAT", "-p", "tcp", "--dport",
                   "9999", "-m", "comment", "--comment", tag, "-j", "DNAT",
                   "--to-destination", f"{info['ip']}:99")
        self.sb.kill(box)
        self.detach(1, info)
        self.assertNotIn("contain:", self.sb.iptables_save())
        self.nothing_left()

    def test_foreign_interfaces_are_never_deleted(self):
        with self.sb.entered():
            with self.assertRaisesRegex(Conflict, "interface eth0 already exists"):
                self.store.create("bad", bridge="eth0")
            self.store.create("ext", bridge="brext")
        self.sb.ip("link add brext type bridge")       # made by someone else, later
        self.sb.server("tcp", 8000, "upstream", ns=self.sb.upstream)
        info, box = self.start(1, {"mode": "ext"})
        self.assertEqual(self.sb.client("tcp", SERVER_IP, 8000, pid=box.pid),
                         f"upstream {HOST_IP}")
        self.sb.kill(box)
        self.detach(1, info)
        with self.sb.entered():
            network.cleanup_unused(self.store)
        self.assertIn("brext", self.sb.links())
        self.assertNotIn("-A ", self.sb.iptables_save())

    def test_hosts_files_follow_neighbours(self):
        paths = {}
        infos = {}
        for n, name in ((1, "web"), (2, "db")):
            paths[n] = os.path.join(state_root(), "hosts")
            with open(paths[n], "w") as f:
                f.write("placeholder\n")
            infos[n], _ = self.start(n, {"name": name, "hostname": f"h{n}"}, paths[n])
        inode = os.stat(paths[1]).st_ino
        with open(paths[1]) as f:
            web = f.read()
        self.assertIn(f"{infos[1]['ip']}\th1 web", web)
        self.assertIn(f"{infos[2]['ip']}\tdb", web)
        self.detach(2, infos[2])
        with open(paths[1]) as f:
            self.assertNotIn("\tdb", f.read())
        self.assertEqual(os.stat(paths[1]).st_ino, inode)   # rewritten in place


class NoNatTest(SandboxTest):
    """Without iptables: addresses and bridge traffic work, NAT warns, -p fails."""

    def setUp(self):
        super().setUp()
        bindir = tempfile.mkdtemp(dir=support.WORK)
        os.symlink(netfilter.find_program("ip"), os.path.join(bindir, "ip"))
        old = os.environ.get("PATH")
        os.environ["PATH"] = bindir
        self.addCleanup(os.environ.__setitem__, "PATH", old)

    def test_without_iptables(self):
        self.assertFalse(netfilter.available())
        with self.sb.entered(), self.assertRaisesRegex(ContainError, r"\(-p\) needs iptables"):
            network.prepare(self.store, cid(1), {"publish": ["80"]})
        a, box_a = self.start(1)
        b, box_b = self.start(2)
        self.assertIn("iptables not found: containers on network bridge cannot reach",
                      self.warnings[0])
        self.assertTrue(self.sb.ping(box_a.pid, b["ip"]))
        self.assertTrue(self.sb.ping(box_a.pid, "10.88.0.1"))
        for box in (box_a, box_b):
            self.sb.kill(box)
        self.detach(1, a)
        self.detach(2, b)
        self.nothing_left()


class NoneModeTest(SandboxTest):
    def test_loopback_only(self):
        with self.sb.entered():
            info = network.prepare(self.store, cid(1), {"mode": "none"})
            box = self.sb.standin()
            network.attach(info, box.pid)
        out = netsandbox._run(["nsenter", f"--net=/proc/{box.pid}/ns/net", "ip", "-o",
                               "link"]).stdout
        self.assertEqual([ln.split(": ")[1] for ln in out.splitlines()], ["lo"])
        self.assertIn("UP", out)
        self.sb.server("tcp", 80, "self", pid=box.pid)
        self.assertTrue(self.sb.client("tcp", "127.0.0.1", 80, pid=box.pid).startswith("self"))
        self.assertEqual(self.sb.links(), ["lo", "eth0"])


if __name__ == "__main__":
    unittest.main()
