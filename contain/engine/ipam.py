"""IPv4 address management: subnets as integers, and the lease allocator.

Everything here is pure: no files, no kernel.  The network store
(contain/network.py) keeps the leases on disk and calls these functions under
its lock.  Python's ``ipaddress`` module would do the parsing too, but costs a
few milliseconds to import on every ``contain run``; IPv4 is four bytes, so
plain integers are enough.

A subnet is a pair ``(network, prefix)`` of integers: 10.88.0.0/16 is
``(0x0A580000, 16)``.  Its first address (the network) and last (broadcast)
are never handed out, and neither is the gateway.
"""

MAX_PREFIX = 30  # a /31 or /32 has no room for a gateway and a container


def ip_to_int(text):
    """'10.88.0.2' -> 173539330; ValueError for anything but dotted quad."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
        raise ValueError(f"{text!r} is not an IPv4 address")
    value = 0
    for part in parts:
        byte = int(part)
        if byte > 255:
            raise ValueError(f"{text!r} is not an IPv4 address")
        value = (value << 8) | byte
    return value


def int_to_ip(value):
    """173539330 -> '10.88.0.2'."""
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def is_ipv4(text):
    try:
        ip_to_int(text)
        return True
    except ValueError:
        return False


def _mask(prefix):
    return (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF


def parse_cidr(text):
    """'10.88.0.0/16' -> (network int, prefix).

    Like Docker, a subnet with host bits set is refused (it is almost always a
    typo for the gateway), and so is a prefix too long to hold a gateway and
    one container.
    """
    addr, sep, prefix = text.partition("/") if isinstance(text, str) else ("", "", "")
    if not sep or not prefix.isdigit() or not 0 <= int(prefix) <= 32:
        raise ValueError(f"{text!r} is not an IPv4 subnet like 10.89.0.0/24")
    prefix = int(prefix)
    value = ip_to_int(addr)
    network = value & _mask(prefix)
    if network != value:
        raise ValueError(f"subnet {text} has host bits set: "
                         f"did you mean {int_to_ip(network)}/{prefix}?")
    if prefix > MAX_PREFIX:
        raise ValueError(f"subnet {text} is too small: the prefix must be /{MAX_PREFIX} or shorter")
    return network, prefix


def format_cidr(network, prefix):
    return f"{int_to_ip(network)}/{prefix}"


def broadcast(network, prefix):
    return network | (~_mask(prefix) & 0xFFFFFFFF)


def contains(network, prefix, addr):
    """Whether the integer address addr lies in the subnet."""
    return addr & _mask(prefix) == network


def is_host(network, prefix, addr):
    """Whether addr is in the subnet and neither its network nor broadcast address."""
    return contains(network, prefix, addr) and network < addr < broadcast(network, prefix)


def overlaps(a, b):
    """Whether two (network, prefix) subnets share any address."""
    prefix = min(a[1], b[1])
    return a[0] & _mask(prefix) == b[0] & _mask(prefix)


def host_count(network, prefix):
    """Addresses a subnet can give to hosts (gateway included)."""
    return broadcast(network, prefix) - network - 1


def allocate(network, prefix, taken, last=None):
    """The next free host address after `last` (wrapping), or None when full.

    `taken` is a set of integers (the gateway and every leased address).
    Starting after the last address handed out, rather than at the bottom,
    keeps a just-released address out of use for as long as possible, so a new
    container does not inherit a departed one's stale ARP entries and
    connections (CNI's host-local allocator does the same).
    """
    first, end = network + 1, broadcast(network, prefix) - 1
    if last is None or not first <= last <= end:
        last = end
    size = end - first + 1
    candidate = last
    for _ in range(size):
        candidate = first if candidate >= end else candidate + 1
        if candidate not in taken:
            return candidate
    return None


def mac_for(addr):
    """A stable, locally administered MAC derived from the IPv4 address.

    Docker's scheme (02:42 followed by the four address bytes): unique within a
    subnet, and the same address always gets the same MAC, so neighbours' ARP
    caches stay right when a container is recreated with its old address.
    """
    return "02:42:" + ":".join(f"{(addr >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
