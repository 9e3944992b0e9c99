"""A few rtnetlink requests (veths, addresses, routes) over a stdlib
netlink socket.

Wiring a container to its bridge by running `ip -batch` on the host and
again from inside its namespace costs two forks and execs of ip (and the
subprocess import) on every start; the same requests sent on a
NETLINK_ROUTE socket cost microseconds.  The socket belongs to the network namespace of the thread
that opens it: open it after setns().  Layouts: <linux/netlink.h>,
<linux/rtnetlink.h>, <linux/if_addr.h>.
"""

import _socket
import errno
import os
import struct

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = \
    1, 3, 4, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER, IFLA_BRPORT_MODE = 1, 4
NLA_F_NESTED = 0x8000
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
_HDR = struct.Struct("=IHHII")          # nlmsghdr: len, type, flags, seq, pid


def _index(ifname):
    """The interface's index; OSError(ENODEV) naming it if there is none
    (if_nametoindex's own error names nothing)."""
    try:
        return _socket.if_nametoindex(ifname)
    except OSError:
        raise OSError(errno.ENODEV, f"no interface {ifname}") from None


def _attr(kind, data):
    """One rtattr, padded to 4 bytes."""
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * (-size % 4)


class Route:
    """A NETLINK_ROUTE socket of the caller's current network namespace."""

    def __init__(self):
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                                   NETLINK_ROUTE)
        self.seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, kind, body, what, flags=NLM_F_CREATE | NLM_F_EXCL):
        """Send one request and wait for its acknowledgement; OSError
        (naming what) if the kernel refuses it."""
        self.seq += 1
        flags |= NLM_F_REQUEST | NLM_F_ACK
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, flags, self.seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HDR.size <= len(data):
                size, mtype, _, seq, _ = _HDR.unpack_from(data, offset)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    error = struct.unpack_from("=i", data, offset + _HDR.size)[0]
                    if error:
                        raise OSError(-error, f"{what}: {os.strerror(-error)}")
                    return
                offset += (size + 3) & ~3 or len(data)

    def add_address(self, ifname, address, prefix, replace=False):
        """`ip addr add|replace ADDRESS/PREFIX dev IFNAME` (IPv4)."""
        index = _index(ifname)
        packed = _socket.inet_aton(address)
        body = struct.pack("=BBBBI", _socket.AF_INET, int(prefix), 0, RT_SCOPE_UNIVERSE, index) \
            + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
        self._request(RTM_NEWADDR, body, f"adding {address}/{prefix} to {ifname}",
                      NLM_F_CREATE | (NLM_F_REPLACE if replace else NLM_F_EXCL))

    def add_veth(self, name, mtu, master, peer_mac, peer_pid):
        """`ip link add name NAME mtu MTU up master MASTER type veth peer name
        eth0 mtu MTU address PEER_MAC netns PEER_PID`: the peer is born in
        the container's namespace."""
        peer = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, b"eth0\0") \
            + _attr(IFLA_MTU, struct.pack("=I", mtu)) \
            + _attr(IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", ""))) \
            + _attr(IFLA_NET_NS_PID, struct.pack("=I", peer_pid))
        info = _attr(IFLA_INFO_KIND, b"veth") \
            + _attr(IFLA_INFO_DATA | NLA_F_NESTED, _attr(VETH_INFO_PEER | NLA_F_NESTED, peer))
        body = struct.pack("=BxHiII", 0, 0, 0, IFF_UP, IFF_UP) \
            + _attr(IFLA_IFNAME, name.encode() + b"\0") + _attr(IFLA_MTU, struct.pack("=I", mtu)) \
            + _attr(IFLA_MASTER, struct.pack("=I", _index(master))) \
            + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        self._request(RTM_NEWLINK, body, f"creating veth {name} on {master}")

    def set_hairpin(self, name):
        """`ip link set dev NAME type bridge_slave hairpin on` (a bridge port
        sends a packet back out where it came in: for hairpin NAT)."""
        data = _attr(IFLA_BRPORT_MODE, b"\1")
        info = _attr(IFLA_INFO_SLAVE_KIND, b"bridge") \
            + _attr(IFLA_INFO_SLAVE_DATA | NLA_F_NESTED, data)
        body = struct.pack("=BxHiII", 0, 0, _index(name), 0, 0) \
            + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        self._request(RTM_NEWLINK, body, f"turning hairpin on for {name}", 0)

    def add_default_route(self, gateway, ifname):
        """`ip route add default via GATEWAY dev IFNAME` (IPv4)."""
        index = _index(ifname)
        body = struct.pack("=BBBBBBBBI", _socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) \
            + _attr(RTA_GATEWAY, _socket.inet_aton(gateway)) + _attr(RTA_OIF, struct.pack("=I", index))
        self._request(RTM_NEWROUTE, body, f"adding the default route via {gateway}")
