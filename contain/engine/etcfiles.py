"""A container's /etc/hosts and /etc/resolv.conf, written into its
directory and bound over the image's files (Docker's way: the image's
own are never changed).

Every container gets them, whatever its network mode; only a container on
a bridge (network.py) has neighbours to list, and network.attach keeps
their files fresh as containers come and go.
"""

import os

from . import ipam
from ..errors import UsageError

DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")
HOSTS_HEADER = ("127.0.0.1\tlocalhost\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\n"
                "ff00::0\tip6-mcastprefix\n"
                "ff02::1\tip6-allnodes\n"
                "ff02::2\tip6-allrouters\n")


def hosts_for(c, netinfo):
    """/etc/hosts text for container c (an engine state.Container).

    Also records in netinfo what attach() needs to keep this file fresh (the
    container's name, hostname and the file's path c.path("hosts"))."""
    cfg = c.config
    net = cfg.get("network") or {}
    netinfo = netinfo or {}
    hostname, name = cfg.get("hostname"), cfg.get("name")
    if netinfo.get("mode") != "bridge":
        add_hosts = netinfo.get("add_hosts") or parse_add_hosts(net.get("add_hosts"))
        if (netinfo.get("mode") or net.get("mode")) == "host":
            try:
                with open("/etc/hosts") as f:
                    base = f.read()
            except OSError:
                base = HOSTS_HEADER
            return base + ("" if base.endswith("\n") or not base else "\n") + \
                "".join(f"{addr}\t{host}\n" for host, addr in add_hosts)
        return hosts_file(name, hostname, None, add_hosts)
    netinfo.update(name=name, hostname=hostname, hosts_path=c.path("hosts"))
    from .network import NetworkStore      # (loaded for a bridge only)
    record = NetworkStore(netinfo["state_root"])._load(netinfo["network"]) or {"endpoints": {}}
    neighbours = sorted((o.get("name"), o["ip"]) for cid, o in record["endpoints"].items()
                        if cid != c.id and o.get("name"))
    return hosts_file(name, hostname, netinfo["ip"], netinfo.get("add_hosts") or (), neighbours)


def resolv_for(c):
    """/etc/resolv.conf text for container c, from the host's."""
    net = c.config.get("network") or {}
    try:
        with open("/etc/resolv.conf") as f:
            host_text = f.read()
    except OSError:
        host_text = ""
    return resolv_conf(host_text, net.get("dns"), net.get("dns_search"),
                       net.get("dns_options") or net.get("dns_option"),
                       keep_loopback=net.get("mode") == "host")


def _is_loopback(server):
    return server.startswith("127.") or server in ("::1", "0:0:0:0:0:0:0:1")


def resolv_conf(host_text, dns=None, dns_search=None, dns_options=None,
                default_dns=None, keep_loopback=False):
    """The container's /etc/resolv.conf, derived from the host's.

    A nameserver on the host's loopback (systemd-resolved's 127.0.0.53,
    dnsmasq's 127.0.0.1) means nothing inside the container's own network
    namespace, so those go, and so do IPv6 servers (containers have no IPv6);
    if nothing is left, default_dns ($CONTAIN_DEFAULT_DNS, else 8.8.8.8 and
    8.8.4.4) is used.  --dns replaces the servers, --dns-search the search
    list ('.' for none), --dns-option the options.  keep_loopback: the host
    network mode, where the host's file is right as it is.
    """
    servers, search, options = [], [], []
    for line in host_text.splitlines():
        fields = line.split()
        if not fields or fields[0][0] in "#;":
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]         # resolv.conf(5): the last one wins
        elif fields[0] == "options":
            options += fields[1:]
    if dns:
        servers = list(dns)
    elif not keep_loopback:
        servers = [s for s in servers if not _is_loopback(s) and ipam.is_ipv4(s)]
        if not servers:
            env = os.environ.get("CONTAIN_DEFAULT_DNS", "")
            servers = list(default_dns or [s for s in env.replace(",", " ").split()]
                           or DEFAULT_DNS)
    if dns_search:
        search = [] if list(dns_search) == ["."] else list(dns_search)
    if dns_options:
        options = list(dns_options)
    out = []
    if search:
        out.append("search " + " ".join(search))
    out += [f"nameserver {s}" for s in servers]
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def hosts_file(name, hostname, ip, add_hosts=(), neighbours=()):
    """The container's /etc/hosts: localhost, --add-host entries, itself
    (hostname and name; 127.0.1.1 without an address of its own) and its
    neighbours on the same network, as (name, ip) pairs."""
    lines = [HOSTS_HEADER.rstrip("\n")]
    lines += [f"{addr}\t{host}" for host, addr in add_hosts]
    own = [n for n in (hostname, name) if n]
    own = sorted(set(own), key=own.index)
    if own:
        lines.append(f"{ip or '127.0.1.1'}\t{' '.join(own)}")
    lines += [f"{addr}\t{other}" for other, addr in neighbours if other and other not in own]
    return "\n".join(lines) + "\n"


def parse_add_hosts(items, gateway=None):
    """--add-host HOST:IP (or HOST=IP; IP 'host-gateway' is the network's gateway)."""
    out = []
    for item in (items or ()):
        sep = "=" if "=" in item else ":"
        host, _, ip = item.partition(sep)
        if ip == "host-gateway":
            ip = gateway or "127.0.0.1"
        if not host or not ip or not is_ip(ip) or any(c.isspace() for c in host):
            raise UsageError(f"invalid --add-host {item!r}: expected HOST:IP")
        out.append([host, ip])
    return out


def is_ip(text):
    if ipam.is_ipv4(text):
        return True
    return ":" in text and all(c in "0123456789abcdefABCDEF:." for c in text)
