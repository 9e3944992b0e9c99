"""Container networking: bridge networks, veth pairs, address leases and
published ports (the /etc/hosts and /etc/resolv.conf a container sees are
etcfiles.py's; attach keeps a bridge's neighbours in them).

A bridge network is a record in the network store plus, while containers use
it, a Linux bridge in the host's network namespace:

    host netns                                  container netns (PID 1's)
    ----------                                  -------------------------
    contain0  10.88.0.1/16  (bridge, gateway)
      +-- veth<id10>  ------------------------  eth0  10.88.0.2/16, MAC 02:42:0a:58:00:02
                                                default via 10.88.0.1
    iptables: MASQUERADE out of the subnet, DNAT for published ports,
              FORWARD accept/isolation (contain/netfilter.py)

How the runtime drives it (contain/runtime.py):

    prepare(store, id, opts)   before the fork: validate the options, lease an
                               address and host ports (under the store lock)
                               -> netinfo, a JSON dict kept in the state record
    (etcfiles.hosts_for, etcfiles.resolv_for: the container's /etc files)
    attach(netinfo, pid)       after the child unshared its netns and before it
                               execs: bridge (once), veth, addresses, routes,
                               port rules
    detach(store, id, netinfo) after PID 1 died (its netns and veth are gone
                               with it) or after a crash: rules by comment, the
                               veth if still there, the lease.  Idempotent.
    cleanup_unused(store)      bridges, chains and ip_forward go back when no
                               container uses them.

Only ``ip`` and ``iptables-restore``/``iptables-save`` are run.  iproute2's
``ip -n`` only knows names under /run/netns, so the container side is done by
entering the container's namespace with setns(2) around one ``ip -batch``.
Without iptables, bridge networking still works between containers; outbound
NAT is then a warning, and publishing ports an error.

One state root per network namespace: the chains and the bridge names are
shared by everything contain runs in that namespace.
"""

import errno
import os
import sys

from . import ipam, netfilter
from .etcfiles import hosts_file, is_ip, parse_add_hosts
from ..core.fsutil import DamagedFile, is_dict_of
from ..errors import Conflict, ContainError, NotFound, UsageError

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "contain0"
DEFAULT_SUBNET = "10.88.0.0/16"
USER_SUBNETS = ("10.89.0.0", 24, 256)   # user networks: 10.89.0.0/24, 10.89.1.0/24, ...
IFNAMSIZ = 15


def _log(log, msg):
    if log:
        log(msg)


def _warn(msg):
    sys.stderr.write(f"WARNING: {msg}\n")
    sys.stderr.flush()


# ============================================================ network store
class NetworkStore:
    """Networks as JSON records under STATE_ROOT/networks/, one per network.

    Each record holds the network's configuration and its endpoints (the
    address leases, keyed by container id), so allocating an address,
    checking a host port and refusing to remove a network in use all read one
    consistent picture under one lock (networks/.lock, flock).  Records are
    written to a temporary file and renamed.
    """

    def __init__(self, state_root):
        self.state_root = state_root
        self.root = os.path.join(state_root, "networks")

    def _path(self, name):
        if not _valid_name(name):       # it becomes a file name: never a path
            raise NotFound(f"network {name} not found")
        return os.path.join(self.root, name + ".json")

    def lock(self):
        from .state import FileLock
        os.makedirs(self.root, exist_ok=True)
        return FileLock(os.path.join(self.root, ".lock"))

    def _load(self, name):
        """The record of network name, or None; DamagedFile if it is damaged."""
        if not _valid_name(name):
            return None
        from ..core.fsutil import read_state_json
        if name == DEFAULT_NETWORK:
            remedy = (f"'contain network rm {name}' removes it and the default network is "
                      "made afresh (restart the containers that were on it)")
        else:
            remedy = (f"'contain network rm {name}' removes it (then create it again, and "
                      "restart the containers that were on it)")
        return read_state_json(self._path(name), _check_record(name), remedy, default=None)

    def _save(self, record):
        from .state import write_json
        os.makedirs(self.root, exist_ok=True)
        write_json(self._path(record["name"]), record)

    def _all(self, damaged=None):
        """Every network's record.  A damaged one raises DamagedFile, or with
        a list for damaged, is left out and added to it."""
        try:
            names = sorted(n[:-5] for n in os.listdir(self.root) if n.endswith(".json")
                           and not n.startswith("."))
        except FileNotFoundError:
            names = []
        records = []
        for name in names:
            try:
                record = self._load(name)
            except DamagedFile as e:
                if damaged is None:
                    raise
                damaged.append(e)
                continue
            if record is not None:
                records.append(record)
        if not any(r["name"] == DEFAULT_NETWORK for r in records) and \
                not any(e.path == self._path(DEFAULT_NETWORK) for e in damaged or ()):
            records.insert(0, self._default_record())
        return records

    def _get(self, name):
        """The record (the default network is made on first use); call locked."""
        record = self._load(name)
        if record is None and name == DEFAULT_NETWORK:
            record = self._default_record()
            self._save(record)
        if record is None:
            record = self._by_id(name)
        if record is None:
            raise NotFound(f"network {name} not found")
        return record

    def _by_id(self, prefix):
        if len(prefix) < 3:
            return None
        found = [r for r in self._all() if r["id"].startswith(prefix)]
        return found[0] if len(found) == 1 else None

    def _default_record(self):
        """The "bridge" network, from $CONTAIN_BRIDGE{,_SUBNET,_GATEWAY,_MTU}."""
        env = os.environ
        try:
            return _new_record(DEFAULT_NETWORK,
                               env.get("CONTAIN_BRIDGE_SUBNET") or DEFAULT_SUBNET,
                               env.get("CONTAIN_BRIDGE_GATEWAY") or None,
                               env.get("CONTAIN_BRIDGE") or DEFAULT_BRIDGE,
                               env.get("CONTAIN_BRIDGE_MTU") or None, default=True)
        except UsageError as e:
            raise ContainError(f"default network from the environment: {e}") from None

    def _adopt_default_bridge(self):
        """After a damaged default record is removed: contain's own bridge
        (contain0, not one named by $CONTAIN_BRIDGE), if it exists, was made
        by contain, so the fresh record owns it and `network prune` can
        remove it.  Locked."""
        record = self._default_record()
        if record["bridge"] == DEFAULT_BRIDGE and DEFAULT_BRIDGE in _links():
            record["bridge_owned"] = True
            self._save(record)

    # ------------------------------------------------------------- commands
    def create(self, name, subnet=None, gateway=None, bridge=None, mtu=None, labels=None):
        """docker network create: a bridge network (the bridge itself is
        made when the first container joins)."""
        if not isinstance(name, str) or not _valid_name(name):
            raise UsageError(f"invalid network name {name!r}: "
                             "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if name in ("none", "host", "default") or name == DEFAULT_NETWORK:
            raise Conflict(f"network {name} is pre-defined and cannot be created")
        with self.lock():
            others = self._all()
            if any(r["name"] == name for r in others):
                raise Conflict(f"network with name {name} already exists")
            if subnet is None:
                subnet = _free_subnet(others)
            record = _new_record(name, subnet, gateway, bridge, mtu, labels=labels)
            _check_clash(record, others)
            if bridge and bridge in _links():
                raise Conflict(f"interface {bridge} already exists on this host: "
                               "choose another bridge name")
            self._save(record)
        return record

    def list(self):
        return [_public(r) for r in self._all()]

    def inspect(self, name):
        record = self._load(name) or self._by_id(name)
        if record is None and name == DEFAULT_NETWORK:
            record = self._default_record()
        if record is None:
            raise NotFound(f"network {name} not found")
        return _public(record)

    def remove(self, name):
        """docker network rm: refused while containers use it.  A damaged
        record is removed whatever it held (it is of no use any more)."""
        with self.lock():
            try:
                record = self._get(name)
            except DamagedFile as e:
                if e.path != os.path.join(self.root, name + ".json"):
                    raise           # (another network's record: not this one to remove)
                os.unlink(e.path)
                _warn(f"removed the damaged record {e.path} ({e.problem})")
                if name == DEFAULT_NETWORK:
                    self._adopt_default_bridge()
                return name
            if record.get("default"):
                raise Conflict(f"{record['name']} is a pre-defined network and cannot be removed")
            if record["endpoints"]:
                users = ", ".join(ep.get("name") or cid[:12]
                                  for cid, ep in sorted(record["endpoints"].items()))
                raise Conflict(f"network {record['name']} is in use by container(s): {users}")
            _teardown_bridges(self, [record], save=False)
            os.unlink(self._path(record["name"]))
        return record["name"]

    def prune(self):
        """docker network prune: remove every unused user network (and put
        away the default bridge's kernel objects if unused).  Returns names."""
        removed = []
        for record in self._all([]):
            if not record.get("default") and not record["endpoints"]:
                try:
                    removed.append(self.remove(record["name"]))
                except (Conflict, NotFound):
                    pass
        cleanup_unused(self)
        return removed

    # --------------------------------------------------------------- leases
    def endpoints(self, name):
        record = self._load(name)
        return dict(record["endpoints"]) if record else {}

    def _release(self, container_id):
        """Drop the container's leases in every network; their names.  Locked."""
        changed = []
        for record in self._all([]):    # (a damaged record's leases are lost anyway)
            if record["endpoints"].pop(container_id, None) is not None:
                self._save(record)
                changed.append(record["name"])
        return changed


def _valid_name(name):
    from .state import check_name_ok
    return isinstance(name, str) and check_name_ok(name) and len(name) <= 64


def _check_record(name):
    """read_state_json's check for the record of network name."""
    def is_endpoint(ep):
        return isinstance(ep, dict) and all(isinstance(ep.get(k), str) for k in ("ip", "mac")) \
            and isinstance(ep.get("ports", []), list)

    def check(value):
        wrong = is_dict_of(value)
        if wrong:
            return wrong
        if value.get("name") != name:
            return "it does not name the network its file name says"
        if not all(isinstance(value.get(k), str) for k in ("id", "bridge", "subnet", "gateway")) \
                or not isinstance(value.get("mtu"), int):
            return "its id, bridge, subnet, gateway or MTU is malformed"
        try:
            ipam.parse_cidr(value["subnet"])
            ipam.ip_to_int(value["gateway"])
        except ValueError as e:
            return str(e)
        return is_dict_of(value.get("endpoints"), value_ok=is_endpoint) and \
            "its endpoints are malformed"
    return check


def _public(record):
    """A record as `network inspect` shows it."""
    out = {k: v for k, v in record.items() if k not in ("last_ip",)}
    out["containers"] = {cid: {"name": ep.get("name"), "ip": f"{ep['ip']}/{record['subnet'].split('/')[1]}",
                               "mac": ep["mac"], "ports": ep.get("ports", [])}
                         for cid, ep in record["endpoints"].items()}
    del out["endpoints"]
    return out


def _new_record(name, subnet, gateway, bridge, mtu, default=False, labels=None):
    """A validated network record (pure apart from reading the MTU)."""
    import time
    try:
        net, prefix = ipam.parse_cidr(subnet)
    except ValueError as e:
        raise UsageError(f"invalid subnet: {e}") from None
    if gateway is None:
        gw = net + 1
    else:
        try:
            gw = ipam.ip_to_int(gateway)
        except ValueError as e:
            raise UsageError(f"invalid gateway: {e}") from None
        if not ipam.is_host(net, prefix, gw):
            raise UsageError(f"gateway {gateway} is not a host address of subnet {subnet}")
    if default:     # the same id wherever it is listed before its first use
        import hashlib
        nid = hashlib.sha256(b"contain network " + name.encode()).hexdigest()
    else:
        nid = os.urandom(32).hex()
    bridge = bridge or "cbr-" + nid[:11]
    if len(bridge) > IFNAMSIZ or not bridge.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"invalid bridge name {bridge!r}: at most {IFNAMSIZ} "
                         "characters of [a-zA-Z0-9_-]")
    try:
        mtu = int(mtu) if mtu else _default_mtu()
    except ValueError:
        raise UsageError(f"invalid MTU {mtu!r}") from None
    if not 68 <= mtu <= 65535:
        raise UsageError(f"invalid MTU {mtu}: must be between 68 and 65535")
    record = {"name": name, "id": nid, "driver": "bridge", "bridge": bridge,
              "subnet": ipam.format_cidr(net, prefix), "gateway": ipam.int_to_ip(gw),
              "mtu": mtu, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "labels": labels or {}, "endpoints": {}}
    if default:
        record["default"] = True
    return record


def _check_clash(record, others):
    mine = ipam.parse_cidr(record["subnet"])
    for other in others:
        if ipam.overlaps(mine, ipam.parse_cidr(other["subnet"])):
            raise Conflict(f"subnet {record['subnet']} overlaps network {other['name']} "
                           f"({other['subnet']})")
        if other["bridge"] == record["bridge"]:
            raise Conflict(f"bridge {record['bridge']} is already used by network {other['name']}")


def _free_subnet(records):
    base, prefix, count = USER_SUBNETS
    taken = [ipam.parse_cidr(r["subnet"]) for r in records]
    for i in range(count):
        candidate = (ipam.ip_to_int(base) + (i << (32 - prefix)), prefix)
        if not any(ipam.overlaps(candidate, t) for t in taken):
            return ipam.format_cidr(*candidate)
    raise ContainError("no free subnet left for a new network: give one with --subnet")


def _default_mtu():
    """The MTU of the interface the default route leaves by (1500 without one).

    Containers behind a bridge must not send bigger packets than the host's
    uplink carries (this VM's is 1400), so bridge and veths take its MTU.
    """
    from ..core import linux
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                    return linux.interface_mtu(fields[0])
    except OSError:
        pass
    return 1500


# ============================================================ options -> plan
def parse_publish(spec):
    """Docker's -p [IP:][HOSTPORT[-END]:]PORT[-END][/PROTO] -> port requests.

    Each request: {"host_ip", "host_port" (0: any free port), "host_port_end",
    "container_port", "proto"}.
    """
    text, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in ("tcp", "udp"):
        raise UsageError(f"invalid -p {spec!r}: protocol must be tcp or udp")
    if text.startswith("["):
        raise UsageError(f"invalid -p {spec!r}: IPv6 host addresses are not supported")
    parts = text.split(":")
    if len(parts) > 3 or not parts[-1]:
        raise UsageError(f"invalid -p {spec!r}: expected [IP:][HOSTPORT:]PORT[/PROTO]")
    host_ip = parts[0] if len(parts) == 3 else ""
    host = parts[-2] if len(parts) >= 2 else ""
    if host_ip and not ipam.is_ipv4(host_ip):
        raise UsageError(f"invalid -p {spec!r}: {host_ip!r} is not an IPv4 address")
    c_lo, c_hi = _port_range(parts[-1], spec)
    h_lo, h_hi = _port_range(host, spec) if host else (0, 0)
    base = {"host_ip": host_ip, "proto": proto}
    if not host:
        return [dict(base, host_port=0, host_port_end=0, container_port=p)
                for p in range(c_lo, c_hi + 1)]
    if h_hi - h_lo == c_hi - c_lo:
        return [dict(base, host_port=h_lo + i, host_port_end=h_lo + i, container_port=c_lo + i)
                for i in range(c_hi - c_lo + 1)]
    if c_lo == c_hi:    # -p 8000-8010:80: the first free port of the range
        return [dict(base, host_port=h_lo, host_port_end=h_hi, container_port=c_lo)]
    raise UsageError(f"invalid -p {spec!r}: host and container port ranges differ in size")


def _port_range(text, spec):
    lo, sep, hi = text.partition("-")
    try:
        lo, hi = int(lo), int(hi if sep else lo)
    except ValueError:
        raise UsageError(f"invalid -p {spec!r}: {text!r} is not a port number") from None
    if not (1 <= lo <= hi <= 65535):
        raise UsageError(f"invalid -p {spec!r}: ports must be 1-65535, low-high")
    return lo, hi


def parse_exposed(exposed):
    """Image ExposedPorts / --expose ('80', '53/udp', '8000-8002', or a dict) -> requests."""
    requests = []
    for item in (exposed or ()):
        requests += parse_publish(str(item).lower())
    return requests


def _mode(opts):
    mode = opts.get("mode") or opts.get("network") or os.environ.get("CONTAIN_DEFAULT_NETWORK") \
        or DEFAULT_NETWORK
    return DEFAULT_NETWORK if mode == "default" else mode


def veth_name(container_id):
    """The host end of a container's veth, derived from its id alone, so that
    detach can find it after a crash ('veth' + 10 hex digits: 14 characters)."""
    cid = container_id.lower()
    if len(cid) >= 10 and all(c in "0123456789abcdef" for c in cid[:10]):
        return "veth" + cid[:10]
    import zlib
    return "veth" + format(zlib.crc32(container_id.encode()), "08x")


def prepare(store, container_id, opts, log=None):
    """Validate the network options and lease what the container will use.

    opts (all optional): mode ("bridge" | "none" | "host" | "container:X" |
    a network name; also accepted as "network"), ip, publish [specs],
    publish_all, exposed_ports, dns, dns_search, dns_options, add_hosts,
    name, hostname, hosts_path (the container's /etc/hosts, which attach
    and detach keep listing its neighbours).  Returns netinfo, a
    JSON-serialisable dict; for a bridge network it holds the lease (ip,
    mac, ports), which detach() releases: call detach() whenever the
    container does not get to run after all.
    """
    mode = _mode(opts)
    requests = []
    for spec in opts.get("publish") or ():
        requests += parse_publish(spec)
    if opts.get("publish_all"):
        requests += parse_exposed(opts.get("exposed_ports") or opts.get("expose"))
    for server in opts.get("dns") or ():
        if not is_ip(server):
            raise UsageError(f"invalid --dns {server!r}: not an IP address")
    netinfo = {"mode": mode, "container_id": container_id, "state_root": store.state_root,
               "warnings": []}
    for key in ("name", "hostname", "hosts_path"):
        if opts.get(key):
            netinfo[key] = opts[key]
    if mode in ("none", "host") or mode.startswith("container:"):
        if mode.startswith("container:") and not mode.split(":", 1)[1]:
            raise UsageError("invalid --network container:: a container name is required")
        if requests and mode != "host":
            raise UsageError(f"conflicting options: port publishing and --network {mode}")
        if requests:
            netinfo["warnings"].append("published ports are discarded in host network mode")
        if opts.get("ip"):
            raise UsageError(f"--ip needs a bridge network, not --network {mode}")
        netinfo["add_hosts"] = parse_add_hosts(opts.get("add_hosts") or opts.get("add_host"))
        return netinfo
    if requests and not netfilter.available():
        raise ContainError("publishing ports (-p) needs iptables: "
                           "iptables-restore/iptables-save not found")
    with store.lock():
        record = store._get(mode)
        ip = _lease_ip(record, container_id, opts.get("ip"))
        ports = _claim_ports(store._all(), container_id, requests)
        add_hosts = parse_add_hosts(opts.get("add_hosts") or opts.get("add_host"),
                                    record["gateway"])
        endpoint = {"ip": ipam.int_to_ip(ip), "mac": ipam.mac_for(ip), "ports": ports,
                    "add_hosts": add_hosts}
        endpoint.update((k, netinfo[k]) for k in ("name", "hostname", "hosts_path")
                        if k in netinfo)
        record["endpoints"][container_id] = endpoint
        record["last_ip"] = endpoint["ip"]
        store._save(record)
    netinfo.update(mode="bridge", network=record["name"], network_id=record["id"],
                   bridge=record["bridge"], subnet=record["subnet"],
                   gateway=record["gateway"], mtu=record["mtu"],
                   veth=veth_name(container_id), **endpoint)
    _log(log, f"network {record['name']}: leased {endpoint['ip']}"
         + "".join(f", {format_port(p)}" for p in ports))
    return netinfo


def _lease_ip(record, container_id, requested):
    """An address for the container (the one it already holds, if any)."""
    net, prefix = ipam.parse_cidr(record["subnet"])
    taken = {ipam.ip_to_int(record["gateway"])}
    for cid, ep in record["endpoints"].items():
        if cid != container_id:
            taken.add(ipam.ip_to_int(ep["ip"]))
    if requested:
        try:
            ip = ipam.ip_to_int(requested)
        except ValueError as e:
            raise UsageError(f"invalid --ip: {e}") from None
        if not ipam.is_host(net, prefix, ip):
            raise UsageError(f"--ip {requested} is not a host address of network "
                             f"{record['name']} ({record['subnet']})")
        if ip in taken:
            owner = next((ep.get("name") or cid[:12] for cid, ep in record["endpoints"].items()
                          if ep["ip"] == requested), "the gateway")
            raise Conflict(f"address {requested} is already in use by {owner}")
        return ip
    mine = record["endpoints"].get(container_id)
    if mine:
        return ipam.ip_to_int(mine["ip"])
    last = record.get("last_ip")
    ip = ipam.allocate(net, prefix, taken, ipam.ip_to_int(last) if last else None)
    if ip is None:
        raise ContainError(f"no free address left in network {record['name']} "
                           f"({record['subnet']}): all {ipam.host_count(net, prefix) - 1} "
                           "are in use")
    return ip


def _claim_ports(records, container_id, requests):
    """Host ports for the requests: not published by another container (the
    leases of every network), and not bound by a host process (a bind test)."""
    taken = {}
    for record in records:
        for cid, ep in record["endpoints"].items():
            if cid != container_id:
                for p in ep.get("ports", ()):
                    taken.setdefault((p["proto"], p["host_port"]), []).append((p["host_ip"], cid))
    claimed = []
    for req in requests:
        proto, host_ip = req["proto"], req["host_ip"] or "0.0.0.0"
        if req["host_port"]:
            port = _fixed_port(taken, req, host_ip)
        else:
            port = _any_port(taken, proto, host_ip)
        taken.setdefault((proto, port), []).append((host_ip, container_id))
        claimed.append({"proto": proto, "container_port": req["container_port"],
                        "host_ip": host_ip, "host_port": port})
    return claimed


def _owner(taken, proto, port, host_ip):
    for ip, cid in taken.get((proto, port), ()):
        if "0.0.0.0" in (ip, host_ip) or ip == host_ip:
            return cid
    return None


def _fixed_port(taken, req, host_ip):
    proto, error = req["proto"], None
    for port in range(req["host_port"], req["host_port_end"] + 1):
        owner = _owner(taken, proto, port, host_ip)
        where = f"{host_ip}:{port}/{proto}"
        if owner:
            error = Conflict(f"cannot publish {where}: port is already allocated "
                             f"to container {owner[:12]}")
        elif not _bindable(proto, host_ip, port):
            error = Conflict(f"cannot publish {where}: address already in use on the host")
        else:
            return port
    raise error


def _any_port(taken, proto, host_ip):
    for _ in range(64):
        port = _bindable(proto, host_ip, 0)
        if port and not _owner(taken, proto, port, host_ip):
            return port
    raise ContainError(f"no free host port for {proto} on {host_ip}")


def _bindable(proto, host_ip, port):
    """Bind a socket to host_ip:port: the port number if free, else 0.
    (_socket, the C module under socket, which builds its enums on import.)"""
    import errno
    import _socket
    sock = _socket.socket(_socket.AF_INET,
                          _socket.SOCK_STREAM if proto == "tcp" else _socket.SOCK_DGRAM)
    try:
        if proto == "tcp":   # a TIME_WAIT leftover is not a user of the port
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, port))
        return sock.getsockname()[1]
    except OSError as e:
        if e.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"cannot publish on {host_ip}: not an address of this host") from None
        if e.errno != errno.EADDRINUSE:
            raise ContainError(f"checking host port {host_ip}:{port}/{proto}: {e.strerror}") from None
        return 0
    finally:
        sock.close()


def format_port(p):
    """'0.0.0.0:8080->80/tcp', as docker ps shows it."""
    return f"{p['host_ip']}:{p['host_port']}->{p['container_port']}/{p['proto']}"


def port_lines(netinfo, spec=None):
    """docker port: '80/tcp -> 0.0.0.0:8080' lines, optionally for one PORT[/PROTO]."""
    want_port, _, want_proto = (spec or "").partition("/")
    lines = []
    for p in (netinfo or {}).get("ports") or ():
        if want_port and (str(p["container_port"]) != want_port
                          or (want_proto or "tcp") != p["proto"]):
            continue
        prefix = "" if spec else f"{p['container_port']}/{p['proto']} -> "
        lines.append(f"{prefix}{p['host_ip']}:{p['host_port']}")
    return lines


# ============================================================ the kernel side
def _links():
    """Interface names in this process's network namespace.

    /proc/net/dev rather than /sys/class/net: sysfs shows the namespace it
    was mounted in, /proc/net the one the reading task is in.
    """
    with open("/proc/thread-self/net/dev") as f:
        return {line.split(":", 1)[0].strip() for line in f.read().splitlines()[2:]}


def _ip_batch(commands, what):
    """Run `ip -batch -` on the command lines; ContainError naming the failed one."""
    import subprocess
    path = netfilter.find_program("ip")
    if path is None:
        raise ContainError(f"{what}: the ip program (iproute2) is not installed")
    res = subprocess.run([path, "-batch", "-"], input="\n".join(commands) + "\n",
                         capture_output=True, text=True)
    if res.returncode != 0:
        err = res.stderr.strip().splitlines()
        failed = next((ln for ln in err if ln.startswith("Command failed")), "")
        line_no = failed.rsplit(":", 1)[-1]
        cmd = commands[int(line_no) - 1] if line_no.isdigit() and int(line_no) <= len(commands) else ""
        reason = next((ln for ln in err if not ln.startswith("Command failed")),
                      f"exit status {res.returncode}")
        raise ContainError(f"{what}: ip {cmd}: {reason.removeprefix('Error: ')}")


def _in_netns(pid, fn):
    """Call fn() inside the network namespace of pid, then come back.

    A process may setns(2) into another network namespace and back at will
    (no threads must run meanwhile); sockets opened there (netlink) and
    children forked there belong to it.
    """
    from ..core import linux
    flags = os.O_RDONLY | os.O_CLOEXEC
    own = os.open("/proc/thread-self/ns/net", flags)
    try:
        try:
            target = os.open(f"/proc/{pid}/ns/net", flags)
        except (FileNotFoundError, ProcessLookupError):
            raise ContainError(f"container process {pid} is gone") from None
        try:
            linux.setns(target, linux.CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            return fn()
        finally:
            linux.setns(own, linux.CLONE_NEWNET)
    finally:
        os.close(own)


def _sysctl(path, value=None):
    """Read (and if value is given, set) /proc/sys/<path> of this netns."""
    full = "/proc/sys/" + path
    with open(full) as f:
        old = f.read().strip()
    if value is not None and old != value:
        with open(full, "w") as f:
            f.write(value)
    return old


def _ensure_forwarding(store):
    """net.ipv4.ip_forward=1, remembering the old value for cleanup_unused()."""
    old = _sysctl("net/ipv4/ip_forward", "1")
    marker = os.path.join(store.root, "ip_forward.orig")
    if old != "1" and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(old)


def _bridge_networks(records):
    """(bridge, subnet) of the networks whose bridge exists in this netns."""
    links = _links()
    return [(r["bridge"], r["subnet"]) for r in records if r["bridge"] in links]


def attach(netinfo, pid, log=None):
    """Wire the container whose PID 1 is pid (in its own, new netns) to its
    network.  Returns the warnings (also printed).  On failure it undoes its
    own work and raises ContainError; the lease stays until detach()."""
    mode = netinfo.get("mode")
    warnings = list(netinfo.get("warnings") or ())
    if mode == "none":      # (the child may have done this itself already)
        from ..core import linux
        _in_netns(pid, lambda: linux.interface_up("lo"))
    if mode != "bridge":
        for w in warnings:
            _warn(w)
        return warnings
    store = NetworkStore(netinfo["state_root"])
    cid, veth, br = netinfo["container_id"], netinfo["veth"], netinfo["bridge"]
    mtu, prefix = netinfo["mtu"], netinfo["subnet"].split("/")[1]
    nat = netfilter.available()
    try:
        # Host side, under the store lock so that concurrent starts make the
        # bridge once and cleanup_unused() cannot remove it meanwhile.  The
        # peer is created directly inside the container's namespace as eth0,
        # so no host interface is ever named eth0, not even for a moment.
        with store.lock():
            record = store._get(netinfo["network"])
            _register(store, record, cid, netinfo)
            if br not in _links():      # the network's first container
                _log(log, f"creating bridge {br} ({record['subnet']})")
                _ip_batch([f"link add name {br} mtu {record['mtu']} type bridge"],
                          f"creating bridge {br}")
                record["bridge_owned"] = True     # ours to delete when unused
                store._save(record)
                if nat:
                    netfilter.ensure(_bridge_networks(store._all()))
            elif nat and not record.get("bridge_owned"):    # a bridge made by someone else
                netfilter.ensure(_bridge_networks(store._all()))
            # published ports reached via 127.0.0.1 are routed out of the bridge
            _sysctl(f"net/ipv4/conf/{br}/route_localnet", "1")
            _ensure_forwarding(store)
            _log(log, f"creating veth {veth} <-> eth0 {netinfo['ip']} in pid {pid}'s netns")
            _connect_veth(cid, netinfo, record["gateway"], prefix, pid)

        _in_netns(pid, lambda: _configure_eth0(cid, netinfo, prefix))

        if netinfo.get("ports"):
            _log(log, "publishing " + ", ".join(map(format_port, netinfo["ports"])))
            netfilter.add(netfilter.container_rules(cid, netinfo["ip"], netinfo["ports"]),
                          _bridge_networks(store._all()))
    except BaseException:
        _undo_attach(cid, veth, netinfo)
        raise
    if not nat:
        warnings.append(f"iptables not found: containers on network {record['name']} "
                        "cannot reach other networks (no outbound NAT)")
    refresh_hosts(store, record["name"])
    for w in warnings:
        _warn(w)
    return warnings


def _connect_veth(cid, netinfo, gateway, prefix, pid):
    """Host side (store lock held): the bridge's address (idempotent) and up,
    then the veth pair, its host end on the bridge with hairpin on, its
    peer born as eth0 in the container's namespace."""
    from ..core import linux
    from . import netlink
    br, veth = netinfo["bridge"], netinfo["veth"]
    try:
        with netlink.Route() as rt:
            rt.add_address(br, gateway, prefix, replace=True)
            linux.interface_up(br)
            rt.add_veth(veth, netinfo["mtu"], br, netinfo["mac"], pid)
            rt.set_hairpin(veth)        # for hairpin NAT
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise ContainError(f"connecting container {cid[:12]} to {br}: "
                           f"{e.strerror or e}{where}") from None


def _configure_eth0(cid, netinfo, prefix):
    """Container side, from inside its namespace: lo and eth0 up, eth0's
    address and the default route (netlink requests: no ip to run)."""
    from ..core import linux
    from . import netlink
    try:
        linux.interface_up("lo")
        with netlink.Route() as rt:
            rt.add_address("eth0", netinfo["ip"], prefix)
            linux.interface_up("eth0")
            rt.add_default_route(netinfo["gateway"], "eth0")
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise ContainError(f"configuring eth0 of container {cid[:12]}: "
                           f"{e.strerror or e}{where}") from None


def _register(store, record, cid, netinfo):
    """Keep what hosts files need (name, hostname, the hosts file's path) in
    the lease, so neighbours' /etc/hosts can list this container.  Locked."""
    endpoint = record["endpoints"].get(cid)
    if endpoint is None:
        raise ContainError(f"container {cid[:12]} holds no lease on network {record['name']} "
                           "(prepare() was not called, or detach() already ran)")
    extra = {k: netinfo[k] for k in ("name", "hostname", "hosts_path") if netinfo.get(k)}
    if any(endpoint.get(k) != v for k, v in extra.items()):
        endpoint.update(extra)
        store._save(record)


def _undo_attach(cid, veth, netinfo):
    try:
        if veth in _links():    # the container still lives: no point in waiting
            _ip_batch([f"link del {veth}"], f"removing {veth}")
        if netinfo.get("ports") and netfilter.available():
            netfilter.remove({netfilter.container_tag(cid)})
    except ContainError:
        pass


def detach(store, container_id, netinfo=None, log=None, removing=False):
    """Undo attach() and prepare() for a container, from its id alone if
    need be (after a crash): its veth if it still exists, its rules, its
    leases.  Safe to call any number of times.

    The veth goes last, and on the kernel's time (see _remove_veth), which
    can take some 10 ms.  removing: the container is being removed, so its
    id, which names the veth, is never used again; then a helper process
    sees the veth gone and the caller returns at once."""
    netinfo = netinfo or {}
    if (not netinfo or netinfo.get("ports")) and netfilter.available():
        tags = {netfilter.container_tag(container_id)}
        if not netinfo.get("ip"):          # after a crash: whatever the id holds
            netfilter.remove(tags)
        elif _leased(store, netinfo.get("network"), container_id):
            netfilter.remove_added(netfilter.container_rules(container_id, netinfo["ip"],
                                                             netinfo["ports"]), tags)
        # (no lease left: an earlier detach removed the rules before releasing it)
    with store.lock():
        changed = store._release(container_id)
    for name in changed:
        _log(log, f"released lease of {container_id[:12]} on network {name}")
        refresh_hosts(store, name)
    # last: meanwhile the kernel has been freeing the namespace and its veth
    veth = netinfo.get("veth") or veth_name(container_id)
    if removing:
        _remove_veth_later(veth)
    else:
        _remove_veth(veth, log)


def _leased(store, network, container_id):
    """Whether network still leases an address to the container (a damaged
    record: as if it did, so that its rules are looked for)."""
    from ..core.fsutil import DamagedFile
    try:
        return container_id in store.endpoints(network)
    except DamagedFile:
        return True


def _remove_veth(veth, log=None, grace=0.1):
    """Make sure the veth is gone.

    When PID 1 has died, the kernel frees its network namespace a little later
    (a workqueue) and takes the veth pair with it, in some 15 ms here; deleting
    it ourselves costs more (25-40 ms of RCU waits) and races with that.  So
    wait for the kernel first, and delete only what is still there after
    `grace` seconds (the namespace is kept alive by another process, or the
    container still runs: a failed start).
    """
    import time
    deadline = time.monotonic() + grace
    while veth in _links():
        if time.monotonic() >= deadline:
            _log(log, f"removing {veth}")
            try:
                _ip_batch([f"link del {veth}"], f"removing {veth}")
            except ContainError:
                if veth in _links():    # else it went away by itself meanwhile
                    raise
            return
        time.sleep(0.002)


def _remove_veth_later(veth):
    """_remove_veth in a helper process of its own session, with no stdio
    and no inherited fds: nothing the caller holds (a lock, an output pipe,
    the terminal's signals) waits for it or reaches it.  Here and now if no
    process can be made.  One fork, not a daemon's two: the callers (rm,
    run --rm, a --rm container's monitor) exit soon, and the helper, a
    zombie until then if it is done first, is reaped by init (or the
    nearest subreaper)."""
    if veth not in _links():
        return
    from ..core.security import close_fds_except
    try:
        pid = os.fork()
    except OSError:
        _remove_veth(veth)
        return
    if pid == 0:
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            close_fds_except((0, 1, 2))
            os.chdir("/")
            _remove_veth(veth)
        finally:
            os._exit(0)


def _teardown_bridges(store, records, chains=False, log=None, save=True):
    """Delete these networks' bridges and rules in this netns (those present);
    chains: contain's chains and the jumps into them as well.  Locked.

    Only a bridge that attach() made is deleted ("bridge_owned"): a network
    may name an interface that someone else made, and that stays.  save:
    record that the bridge is gone (not for a record about to be removed);
    on a full disk that is skipped: a stale mark names a bridge that no
    longer exists, which is harmless."""
    links = _links()
    present = [r for r in records if r.get("bridge_owned") and r["bridge"] in links]
    if present:
        _log(log, "removing bridges " + " ".join(r["bridge"] for r in present))
        _ip_batch([f"link del {r['bridge']}" for r in present], "removing bridges")
    for record in records:
        if record.pop("bridge_owned", False) and save and store._load(record["name"]):
            try:
                store._save(record)
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
    if netfilter.available():
        netfilter.remove({netfilter.network_tag(r["bridge"]) for r in records}, base=chains)


def cleanup_unused(store, log=None):
    """Remove the kernel objects no container needs any more: bridges of
    networks without endpoints and their rules; when no network is in use,
    contain's chains too, and ip_forward goes back to what it was."""
    with store.lock():
        damaged = []
        records = store._all(damaged)
        unused = [r for r in records if not r["endpoints"]]
        idle = len(unused) == len(records) and not damaged   # a damaged one may be in use
        _teardown_bridges(store, unused, chains=idle, log=log)
        marker = os.path.join(store.root, "ip_forward.orig")
        if idle and os.path.exists(marker):
            with open(marker) as f:
                _sysctl("net/ipv4/ip_forward", f.read().strip())
            os.unlink(marker)


def _hosts_for_endpoint(record, cid):
    ep = record["endpoints"][cid]
    neighbours = sorted((o.get("name"), o["ip"]) for other, o in record["endpoints"].items()
                        if other != cid and o.get("name"))
    return hosts_file(ep.get("name"), ep.get("hostname"), ep["ip"],
                      ep.get("add_hosts") or (), neighbours)


def refresh_hosts(store, network):
    """Rewrite, in place, the /etc/hosts of every container on the network
    that registered one (hosts_path), so that it lists its current
    neighbours.  In place, because the file is bind-mounted: a rename would
    leave the container looking at the old inode."""
    with store.lock():
        record = store._load(network)
        for cid, ep in sorted((record or {}).get("endpoints", {}).items()):
            path = ep.get("hosts_path")
            if not path:
                continue
            try:
                with open(path, "r+") as f:
                    text = _hosts_for_endpoint(record, cid)
                    if f.read() != text:
                        f.seek(0)
                        f.write(text)
                        f.truncate()
            except FileNotFoundError:
                pass


# =================================================================== stats
def interface_counters(pid):
    """(rx_bytes, tx_bytes) summed over the interfaces (lo excluded) of the
    network namespace pid lives in; (0, 0) if it is gone."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, data = line.partition(":")
        fields = data.split()
        if name.strip() != "lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx
