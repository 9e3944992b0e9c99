"""A few rtnetlink requests (addresses, routes) over a stdlib netlink socket.

Configuring a container's eth0 by running `ip -batch` from inside its
namespace costs a fork and an exec of ip (and the subprocess import) on
every start; the same three requests sent on a NETLINK_ROUTE socket cost
microseconds.  The socket belongs to the network namespace of the thread
that opens it: open it after setns().  Layouts: <linux/netlink.h>,
<linux/rtnetlink.h>, <linux/if_addr.h>.
"""

import _socket
import os
import struct

NETLINK_ROUTE = 0
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
_HDR = struct.Struct("=IHHII")          # nlmsghdr: len, type, flags, seq, pid


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

    def _request(self, kind, body, what):
        """Send one request and wait for its acknowledgement; OSError
        (naming what) if the kernel refuses it."""
        self.seq += 1
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
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

    def add_address(self, ifname, address, prefix):
        """`ip addr add ADDRESS/PREFIX dev IFNAME` (IPv4)."""
        index = _socket.if_nametoindex(ifname)
        packed = _socket.inet_aton(address)
        body = struct.pack("=BBBBI", _socket.AF_INET, int(prefix), 0, RT_SCOPE_UNIVERSE, index) \
            + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
        self._request(RTM_NEWADDR, body, f"adding {address}/{prefix} to {ifname}")

    def add_default_route(self, gateway, ifname):
        """`ip route add default via GATEWAY dev IFNAME` (IPv4)."""
        index = _socket.if_nametoindex(ifname)
        body = struct.pack("=BBBBBBBBI", _socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                           RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) \
            + _attr(RTA_GATEWAY, _socket.inet_aton(gateway)) + _attr(RTA_OIF, struct.pack("=I", index))
        self._request(RTM_NEWROUTE, body, f"adding the default route via {gateway}")
