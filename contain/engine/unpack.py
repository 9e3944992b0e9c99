"""Unpack a (compressed) tar into a directory without ever writing outside it.

A layer tarball is hostile input.  Python's tarfile extraction filters have
had several bypasses, so this module parses the tar headers itself (a small
reader for ustar, GNU and PAX, faster than tarfile's) and does every write
itself, through directory file descriptors:

  * a member's name is split into components; an absolute name or a '..'
    component is refused outright;
  * every parent directory is opened component by component with
    O_DIRECTORY|O_NOFOLLOW, starting at the destination's own fd, so a
    symlink (planted earlier in the same tar, or by anyone) is never
    followed: a member whose path goes through one is refused;
  * files are created with O_CREAT|O_EXCL|O_NOFOLLOW relative to that fd, and
    a name that already exists is removed first (never opened through);
  * a hard link's target is resolved the same way, inside the destination;
  * character and block devices are not created, except overlayfs whiteouts.

OCI whiteouts become overlayfs ones: ``.wh.NAME`` turns into a 0:0 character
device NAME, ``.wh..wh..opq`` marks its directory opaque with the
``trusted.overlay.opaque=y`` xattr.  Modes (setuid included), owners, mtimes
and the ``security.capability`` / ``user.*`` xattrs of PAX headers are kept.

The tar is read once, as a stream (a file, a pipe or stdin), in 1 MiB
chunks; while it streams, the compressed bytes can be hashed (the blob's
digest) and copied to a file (the stored blob), and the uncompressed bytes
hashed (the layer's diff_id).  Nothing is seeked, so a gzip never has to be
decompressed twice.
"""

import errno
import os
import stat
import struct

from ..errors import ContainError

CHUNK = 1 << 20            # raw read size
OUT_MAX = 4 << 20          # largest decompressed piece held at once
FD_CACHE_MAX = 256         # open directory fds kept while unpacking

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# xattrs an image may set; trusted.* (overlay's own metadata), security.selinux
# and ACLs are not taken from untrusted layers.
XATTR_ALLOWED = ("security.capability",)
XATTR_ALLOWED_PREFIXES = ("user.",)


# --------------------------------------------------------------- decompressors
class _Gunzip:
    """zlib's decompressobj behind the bz2/lzma interface (needs_input, eof)."""

    def __init__(self):
        import zlib
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""

    @property
    def eof(self):
        return self._z.eof

    @property
    def needs_input(self):
        return not self._tail

    @property
    def unused_data(self):
        return self._z.unused_data

    def decompress(self, data, max_length):
        out = self._z.decompress(self._tail + data if self._tail else data, max_length)
        self._tail = self._z.unconsumed_tail
        return out


def _zstd_factory(label):
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        import sys
        raise ContainError(
            f"{label}: zstd-compressed layers need Python 3.14's compression.zstd "
            f"(this is Python {sys.version_info[0]}.{sys.version_info[1]}); "
            "recompress the image with gzip (e.g. skopeo copy --dest-compress-format gzip)"
        ) from None
    return zstd.ZstdDecompressor


def decompressor_factory(head, label):
    """A factory of decompressor objects for a stream starting with head,
    or None when the stream is not compressed."""
    if head.startswith(GZIP_MAGIC):
        return _Gunzip
    if head.startswith(ZSTD_MAGIC):
        return _zstd_factory(label)
    if head.startswith(BZIP2_MAGIC):
        import bz2
        return bz2.BZ2Decompressor
    if head.startswith(XZ_MAGIC):
        import lzma
        return lzma.LZMADecompressor
    return None


def compression_name(head):
    for magic, name in ((GZIP_MAGIC, "gzip"), (ZSTD_MAGIC, "zstd"),
                        (BZIP2_MAGIC, "bzip2"), (XZ_MAGIC, "xz")):
        if head.startswith(magic):
            return name
    return None


def _decoded(chunks, factory):
    """Decompress an iterable of chunks; concatenated streams (multi-member
    gzip) are followed, zero padding after the last one is ignored."""
    d = factory()
    started = padding = False
    for data in chunks:
        while data or (started and not d.needs_input and not d.eof):
            if padding:
                if data.strip(b"\0"):
                    raise EOFError("trailing garbage after compressed data")
                data = b""
                break
            out = d.decompress(data, OUT_MAX)
            started = True
            data = b""
            if d.eof:
                data = d.unused_data
                d, started = factory(), False
                if data and not data.strip(b"\0"):
                    padding, data = True, b""
            if out:
                yield out
    if started and not d.eof:
        raise EOFError("compressed stream ended early")


# ------------------------------------------------------------------- stream
class TarStream:
    """A forward-only file object over a possibly compressed tar.

    read/tell/seek (forward only) serve the TarReader; copy_to() moves a
    member's data to an fd without building Python strings.  Every
    byte read from the source goes through the digest of the blob (when
    blob_digest) and into tee_fd (when given); every uncompressed byte goes
    through the diff_id digest (when diff_digest).
    """

    def __init__(self, raw, label, blob_digest=False, diff_digest=False, tee_fd=None):
        import hashlib
        self.label = label
        self._raw = raw
        self._tee = tee_fd
        self.blob_hash = hashlib.sha256() if blob_digest else None
        self.diff_hash = hashlib.sha256() if diff_digest else None
        self.blob_size = 0
        self.diff_size = 0
        first = self._read_raw()
        self.compression = compression_name(first)
        factory = decompressor_factory(first, label)
        raw_chunks = self._raw_chunks(first)
        self._chunks = _decoded(raw_chunks, factory) if factory else raw_chunks
        self._buf = b""
        self._mv = memoryview(b"")
        self._i = 0
        self._base = 0           # stream offset of _buf[0]

    # -- raw side
    def _read_raw(self):
        data = self._raw.read(CHUNK)
        if data:
            self.blob_size += len(data)
            if self.blob_hash is not None:
                self.blob_hash.update(data)
            if self._tee is not None:
                _write_all(self._tee, data)
        return data

    def _raw_chunks(self, first):
        data = first
        while data:
            yield data
            data = self._read_raw()

    # -- decoded side
    def _more(self):
        """Append the next decoded chunk to the buffer; False at the end."""
        try:
            chunk = next(self._chunks)
        except StopIteration:
            return False
        except OSError as e:    # reading the source, or writing the blob copy
            raise ContainError(f"{self.label}: {e.strerror or e}") from None
        except EOFError as e:
            raise ContainError(f"{self.label}: corrupted or truncated "
                               f"{self.compression or 'tar'} data: {e}") from None
        except Exception as e:  # zlib.error, lzma.LZMAError, ValueError
            raise ContainError(f"{self.label}: corrupted "
                               f"{self.compression or 'tar'} data: {e}") from None
        self.diff_size += len(chunk)
        if self.diff_hash is not None:
            self.diff_hash.update(chunk)
        rest = len(self._buf) - self._i
        self._base += self._i
        self._buf = (self._buf[self._i:] + chunk) if rest else chunk
        self._mv = memoryview(self._buf)
        self._i = 0
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            while self._more():
                pass
            n = len(self._buf) - self._i
        while len(self._buf) - self._i < n and self._more():
            pass
        out = self._buf[self._i:self._i + n]
        self._i += len(out)
        return out

    def tell(self):
        return self._base + self._i

    def seek(self, pos, whence=0):
        if whence != 0 or pos < self.tell():
            raise OSError(errno.ESPIPE, "a layer stream only seeks forward")
        left = pos - self.tell()
        while left:
            if self._i == len(self._buf) and not self._more():
                break
            step = min(left, len(self._buf) - self._i)
            self._i += step
            left -= step
        return self.tell()

    def copy_to(self, fd, n):
        """Write the next n bytes to fd; False if the stream ends first."""
        while n:
            if self._i == len(self._buf) and not self._more():
                return False
            step = min(n, len(self._buf) - self._i)
            _write_all(fd, self._mv[self._i:self._i + step])
            self._i += step
            n -= step
        return True

    def rest_is_zeros(self):
        """Consume the stream to its end (so the digests cover it all);
        True if everything left is zero bytes (tar's end-of-archive)."""
        clean = not self._buf[self._i:].strip(b"\0")
        self._i = len(self._buf)
        while self._more():
            clean = clean and not self._buf.strip(b"\0")
            self._i = len(self._buf)
        return clean


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --------------------------------------------------------------- tar headers
BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_META = 16 << 20        # largest PAX / GNU long-name record accepted
# name mode uid gid size mtime chksum type linkname magic version uname gname
# devmajor devminor prefix (POSIX ustar, <tar.h>)
USTAR = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
REGULAR, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO = "0123456"
TYPES = {b"0": REGULAR, b"\0": REGULAR, b"7": REGULAR, b"S": REGULAR,
         b"1": HARDLINK, b"2": SYMLINK, b"3": CHAR, b"4": BLOCKDEV,
         b"5": DIRECTORY, b"6": FIFO}
NO_DATA = (HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO)


class Member:
    """One tar member, as the reader understood it (PAX records applied)."""

    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime_ns",
                 "linkname", "devmajor", "devminor", "xattrs", "sparse", "realsize")

    def __repr__(self):
        return f"<Member {self.type} {self.name!r}>"


def _blocks(size):
    return (size + BLOCK - 1) & ~(BLOCK - 1)


def _octal(field):
    """The value of an octal header field, or None (base-256 or malformed)."""
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)    # int() strips leading spaces
    except ValueError:
        return None


def _text(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class TarReader:
    """Iterates the members of a TarStream (ustar, GNU and PAX formats,
    GNU long names, old-GNU and PAX 0.1/1.0 sparse files).

    After a member is yielded its data is next in the stream; the caller may
    copy it (stream.copy_to) or leave it: the reader skips what is left.
    Iteration ends at the end-of-archive block, or cleanly at the very end
    of the stream when the blocks are missing (umoci writes such layers),
    even when the last member's padding to a whole block is missing too
    (umoci 0.4.7's `insert` does: Go's archive/tar accepts it).  Its data
    must be complete: a member whose data ends early is refused.
    """

    def __init__(self, stream):
        self.stream = stream
        self.label = stream.label
        self.global_pax = {}
        self.next_header = 0
        self.data_end = 0         # where the last member's data ends (no padding)
        self.ended = False        # an end-of-archive block was seen
        self.last_name = None

    def __iter__(self):
        while True:
            member = self._next()
            if member is None:
                return
            self.last_name = member.name
            yield member

    def _error(self, what, offset):
        where = f"after '{self.last_name}'" if self.last_name else "in the first member"
        return ContainError(f"{self.label}: corrupted or truncated tar: {what} "
                            f"at byte {offset} ({where})")

    def _read_exact(self, n, what):
        offset = self.stream.tell()
        data = self.stream.read(n)
        if len(data) != n:
            raise self._error(f"{what} ends early", offset)
        return data

    def _next(self):
        s = self.stream
        if s.tell() != self.next_header and s.seek(self.next_header) != self.next_header:
            if s.tell() >= self.data_end:   # the stream ended in the padding: complete
                return None
            raise self._error(f"the data of '{self.last_name}' ends early", s.tell())
        ext = {}           # this member's extended (PAX) records
        longname = longlink = None
        while True:
            offset = s.tell()
            block = s.read(BLOCK)
            if len(block) < BLOCK:
                if block.strip(b"\0") or ext or longname or longlink:
                    raise self._error("a header ends early", offset)
                return None
            if block == ZERO_BLOCK:
                self.ended = True
                return None
            fields = USTAR.unpack(block)
            self._check_sum(block, fields[6], offset)
            size = _octal(fields[4]) if fields[4][0] < 0x80 else None
            if size is None:
                size = self._num(fields[4], "size", offset)
            kind = fields[7]
            if kind in (b"x", b"g", b"L", b"K"):
                if size > MAX_META:
                    raise self._error(f"a {size}-byte extended header", offset)
                data = self._read_exact(_blocks(size), "an extended header")[:size]
                if kind == b"x":
                    ext.update(self._pax_records(data, offset))
                elif kind == b"g":
                    self.global_pax.update(self._pax_records(data, offset))
                elif kind == b"L":
                    longname = data.split(b"\0", 1)[0]
                else:
                    longlink = data.split(b"\0", 1)[0]
                continue
            pax = dict(self.global_pax, **ext) if self.global_pax else ext
            return self._member(block, fields, offset, size, kind, pax, longname, longlink)

    def _check_sum(self, block, field, offset):
        stored = _octal(field)
        if stored is None:
            stored = self._num(field, "checksum", offset)
        if stored == sum(block) - sum(field) + 8 * 32:
            return
        signed = struct.unpack("512b", block)   # some old tars summed signed chars
        if stored != sum(signed) - sum(signed[148:156]) + 8 * 32:
            raise self._error("a header with a bad checksum", offset)

    def _num(self, field, what, offset):
        """A numeric header field: octal text, or GNU base-256."""
        value = _octal(field)
        if value is not None:
            return value
        if field[0] & 0x80:
            if field[0] == 0xFF:
                return int.from_bytes(field, "big", signed=True)
            return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        try:
            return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            raise self._error(f"a bad {what} field", offset) from None

    def _pax_records(self, data, offset):
        """'LEN KEY=VALUE\\n' records -> {key: raw value bytes}."""
        records, pos = {}, 0
        while pos < len(data) and data[pos]:
            space = data.find(b" ", pos)
            try:
                length = int(data[pos:space])
            except ValueError:
                raise self._error("a bad PAX record", offset) from None
            end = pos + length
            if space < 0 or length < 5 or end > len(data) or data[end - 1:end] != b"\n":
                raise self._error("a bad PAX record", offset)
            key, eq, value = data[space + 1:end - 1].partition(b"=")
            if not eq:
                raise self._error("a bad PAX record", offset)
            records[key.decode("utf-8", "surrogateescape")] = value
            pos = end
        return records

    def _member(self, block, fields, offset, size, kind, pax, longname, longlink):
        m = Member()
        m.type = kind_ = TYPES.get(kind) or kind.decode("latin-1")
        name = pax.get("path") if pax else None
        name = name or longname
        if name is None:
            name = fields[0].split(b"\0", 1)[0]
            if fields[9] == b"ustar\0" and fields[15][0]:     # POSIX prefix, not old GNU
                name = fields[15].split(b"\0", 1)[0] + b"/" + name
        m.name = name.decode("utf-8", "surrogateescape")
        if kind == b"\0" and m.name.endswith("/"):
            m.type = kind_ = DIRECTORY                           # V7 directories
        link = pax.get("linkpath") if pax else None
        m.linkname = (link or longlink or fields[8].split(b"\0", 1)[0]).decode(
            "utf-8", "surrogateescape")
        num = self._num
        m.mode = num(fields[1], "mode", offset) & 0o7777
        m.uid = num(fields[2], "uid", offset)
        m.gid = num(fields[3], "gid", offset)
        m.mtime_ns = num(fields[5], "mtime", offset) * 1_000_000_000
        if kind_ in (CHAR, BLOCKDEV):
            m.devmajor = num(fields[13], "devmajor", offset)
            m.devminor = num(fields[14], "devminor", offset)
        else:
            m.devmajor = m.devminor = 0
        m.xattrs = m.sparse = m.realsize = None
        data_start = offset + BLOCK
        if pax:
            size = self._apply_pax(m, pax, size)
        if kind == b"S":
            data_start = self._old_gnu_sparse(m, block, data_start)
        elif pax and (pax.get("GNU.sparse.major") == b"1" or "GNU.sparse.map" in pax):
            size = self._pax_sparse(m, pax, size, data_start)
            data_start = self.stream.tell()
        elif pax and "GNU.sparse.offset" in pax:
            raise ContainError(f"{self.label}: '{m.name}' is a sparse file in the "
                               "obsolete GNU PAX 0.0 format, which is not supported")
        m.size = 0 if kind_ in NO_DATA else size
        self.data_end = data_start + m.size
        self.next_header = data_start + _blocks(m.size)
        return m

    def _apply_pax(self, m, pax, size):
        """PAX records override the header's fields; returns the size."""
        try:
            if pax.get("uid"):
                m.uid = int(pax["uid"])
            if pax.get("gid"):
                m.gid = int(pax["gid"])
            if pax.get("mtime"):
                m.mtime_ns = _decimal_ns(pax["mtime"])
            if pax.get("size"):
                size = int(pax["size"])
        except ValueError:
            raise ContainError(f"{self.label}: '{m.name}': a bad PAX number") from None
        m.xattrs = _xattrs(pax)
        return size

    # -- sparse files: a map of (offset, length) data runs and the real size
    def _old_gnu_sparse(self, m, block, data_start):
        def runs(raw, count):
            out = []
            for i in range(count):
                off = self._num(raw[i * 24:i * 24 + 12], "sparse", data_start)
                num = self._num(raw[i * 24 + 12:i * 24 + 24], "sparse", data_start)
                if off or num:
                    out.append((off, num))
            return out
        m.sparse = runs(block[386:482], 4)
        m.realsize = self._num(block[483:495], "realsize", data_start)
        extended = block[482]
        while extended:
            ext = self._read_exact(BLOCK, "a sparse header")
            m.sparse += runs(ext, 21)
            extended = ext[504]
            data_start += BLOCK
        return data_start

    def _pax_sparse(self, m, pax, size, data_start):
        if pax.get("GNU.sparse.name"):
            m.name = pax["GNU.sparse.name"].decode("utf-8", "surrogateescape")
        real = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size") or b"0"
        m.realsize = int(real)
        if "GNU.sparse.map" in pax:                     # format 0.1
            numbers = [int(x) for x in pax["GNU.sparse.map"].split(b",") if x]
            m.sparse = list(zip(numbers[0::2], numbers[1::2]))
            return size
        # format 1.0: the map is decimal lines at the start of the data
        text = b""
        while True:
            text += self._read_exact(BLOCK, "a sparse map")
            lines = text.split(b"\n")
            if lines[0] and len(lines) - 1 >= 1 + 2 * int(lines[0]):
                break
        count = int(lines[0])
        numbers = [int(x) for x in lines[1:1 + 2 * count]]
        m.sparse = list(zip(numbers[0::2], numbers[1::2]))
        return size - len(text)


def _decimal_ns(text):
    """A PAX decimal time ('1700000000.123456789') as exact nanoseconds."""
    text = text.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    try:
        return sign * (int(whole or 0) * 1_000_000_000 + int((frac + "000000000")[:9]))
    except ValueError:
        return 0


def _xattrs(pax):
    """{xattr name: raw value} from SCHILY.xattr.* and LIBARCHIVE.xattr.* records."""
    out = {}
    for key, value in pax.items():
        if key.startswith("SCHILY.xattr."):
            out[key[13:]] = value
        elif key.startswith("LIBARCHIVE.xattr."):
            import base64
            import urllib.parse
            padded = value + b"=" * (-len(value) % 4)
            out[urllib.parse.unquote(key[17:])] = base64.b64decode(padded)
    return out or None


# ------------------------------------------------------------------ unpacker
O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_NEWFILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _Refused(Exception):
    """A member that must not be unpacked; becomes a ContainError."""


def split_member_name(name):
    """Components of a member name; refuses absolute names and '..'."""
    if name.startswith("/"):
        raise _Refused("is an absolute path")
    parts = name.split("/")
    if "" in parts or "." in parts:
        parts = [p for p in parts if p and p != "."]
    if ".." in parts:
        raise _Refused("has a '..' component")
    return tuple(parts)


class Unpacker:
    """Writes tar members below one directory, never leaving it.

    Directories are opened component by component with O_NOFOLLOW from the
    destination's fd and cached by path; files are created relative to
    their parent's fd.  Directory metadata is applied by finish(), because
    creating entries changes a directory's mtime.
    """

    def __init__(self, dest, log=None, refuse_devices=False):
        self.log = log
        self.refuse_devices = refuse_devices
        self.root = os.open(dest, O_DIR)
        self.fds = {(): self.root}
        self.stale = []          # evicted fds, closed before the next member
        self.dirs = {}           # parts -> Member, metadata applied at the end
        self.size = 0            # bytes of file data written
        self.skipped = []
        # A new file is owned by our euid/egid unless its directory is
        # setgid; directories get their real modes only in finish(), so
        # only a setgid destination can make the fchown needed.
        self.owner = (os.geteuid(), os.getegid())
        if os.fstat(self.root).st_mode & stat.S_ISGID:
            self.owner = None
        # a file is created with its final mode when the umask keeps it whole
        # (saves an fchmod); special bits always need fchmod after fchown
        self.umask = _umask()

    def close(self):
        self._close_stale()
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def _close_stale(self):
        for fd in self.stale:
            os.close(fd)
        self.stale = []

    # -- directories
    def dir_fd(self, parts, create=True):
        """fd of the directory parts (a tuple), opened without following
        symlinks; missing directories are created when create is True."""
        fd = self.fds.get(parts)
        if fd is not None:
            return fd
        parent = self.dir_fd(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, O_DIR, dir_fd=parent)
            if self.owner and os.fstat(fd).st_mode & stat.S_ISGID:
                self.owner = None            # a pre-existing setgid directory
        except FileNotFoundError:
            if not create:
                raise _Refused(f"needs '{'/'.join(parts)}', which is not in this layer") from None
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, O_DIR, dir_fd=parent)
            if self.umask & 0o755:
                os.fchmod(fd, 0o755)       # implicit parents: 0755 whatever the umask
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            what = "symlink" if _is_symlink(name, parent) else "non-directory"
            raise _Refused(f"goes through the {what} '{'/'.join(parts)}'") from None
        if len(self.fds) >= FD_CACHE_MAX:
            self._forget(lambda p: len(p) > 0)
        self.fds[parts] = fd
        return fd

    def _forget(self, match):
        # closed later: a caller may still hold one of them
        self.stale += [self.fds.pop(p) for p in [p for p in self.fds if match(p)]]

    def _clear(self, parts, parent, name):
        """Remove whatever is at parts so a new member can take its place."""
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            import shutil
            n = len(parts)
            self._forget(lambda p: p[:n] == parts)
            for p in [p for p in self.dirs if p[:n] == parts]:
                del self.dirs[p]
            # rmtree uses fd-relative calls and never follows symlinks
            shutil.rmtree(f"/proc/self/fd/{parent}/{name}")
        else:
            os.unlink(name, dir_fd=parent)

    def _create(self, parts, parent, make):
        name = parts[-1]
        try:
            return make(name, parent)
        except FileExistsError:
            self._clear(parts, parent, name)
            return make(name, parent)

    # -- members
    def add(self, m, stream):
        """Unpack one member whose data (if any) is next in stream."""
        self._close_stale()
        parts = split_member_name(m.name)
        if not parts:
            if m.type != DIRECTORY:
                raise _Refused("names the root directory but is not a directory")
            self.dirs[()] = m
            return
        name = parts[-1]
        if name.startswith(WHITEOUT_PREFIX):
            return self._whiteout(parts, m)
        parent = self.dir_fd(parts[:-1])
        kind = m.type
        if kind == REGULAR:
            self._file(parts, parent, m, stream)
        elif kind == DIRECTORY:
            self._dir(parts, parent, m)
        elif kind == SYMLINK:
            self._create(parts, parent, lambda n, p: os.symlink(m.linkname, n, dir_fd=p))
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
            _utime(name, parent, m)
        elif kind == HARDLINK:
            self._hardlink(parts, parent, m)
        elif kind == FIFO:
            self._create(parts, parent, lambda n, p: os.mkfifo(n, 0o600, dir_fd=p))
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
            os.chmod(name, m.mode, dir_fd=parent)   # a fifo we just made, not a link
            _utime(name, parent, m)
        elif kind == CHAR and m.devmajor == 0 and m.devminor == 0:
            self._create(parts, parent, _mkwhiteout)   # an overlay whiteout as is
        elif kind in (CHAR, BLOCKDEV):
            if self.refuse_devices:
                raise _Refused(f"is a device node ({m.devmajor}:{m.devminor})")
            self._skip(m, "device nodes are not created")
        else:
            self._skip(m, f"unsupported member type {kind!r}")

    def _skip(self, m, why):
        self.skipped.append(m.name)
        if self.log:
            self.log(f"{m.name}: skipped ({why})")

    def _file(self, parts, parent, m, stream):
        mode = m.mode if not m.mode & (0o7000 | self.umask) else 0o600
        fd = self._create(parts, parent,
                          lambda n, p: os.open(n, O_NEWFILE, mode, dir_fd=p))
        try:
            if m.sparse is None:
                complete = stream.copy_to(fd, m.size)
            else:
                complete = self._sparse_data(fd, m, stream)
            if not complete:
                raise ContainError(f"{stream.label}: truncated: the data of "
                                   f"'{m.name}' ends early")
            self.size += m.size
            if (m.uid, m.gid) != self.owner:
                os.fchown(fd, m.uid, m.gid)     # before chmod: chown clears setuid
            if m.mode != mode:
                os.fchmod(fd, m.mode)
            if m.xattrs:
                self._xattrs(fd, m)             # after chown: it clears capabilities
            os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
        finally:
            os.close(fd)

    @staticmethod
    def _sparse_data(fd, m, stream):
        if sum(n for _, n in m.sparse) != m.size:
            raise _Refused("has a sparse map that does not match its size")
        for offset, length in m.sparse:
            os.lseek(fd, offset, os.SEEK_SET)
            if not stream.copy_to(fd, length):
                return False
        os.ftruncate(fd, m.realsize)
        return True

    def _dir(self, parts, parent, m):
        name = parts[-1]
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._clear(parts, parent, name)
                os.mkdir(name, 0o755, dir_fd=parent)
        self.dirs[parts] = m

    def _hardlink(self, parts, parent, m):
        try:
            target = split_member_name(m.linkname)
        except _Refused as e:
            raise _Refused(f"is a hard link to '{m.linkname}', which {e}") from None
        if not target:
            raise _Refused("is a hard link to the root directory")
        try:
            tparent = self.dir_fd(target[:-1], create=False)
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
        except _Refused as e:
            raise _Refused(f"is a hard link to '{m.linkname}', which {e}") from None
        except FileNotFoundError:
            raise _Refused(f"is a hard link to '{m.linkname}', which is not "
                           "in this layer") from None
        if stat.S_ISDIR(st.st_mode):
            raise _Refused(f"is a hard link to the directory '{m.linkname}'")
        if target == parts:
            return
        parent = self.dir_fd(parts[:-1])     # (may have been evicted meanwhile)
        self._create(parts, parent, lambda n, p: os.link(
            target[-1], n, src_dir_fd=tparent, dst_dir_fd=p, follow_symlinks=False))

    def _whiteout(self, parts, m):
        parent = self.dir_fd(parts[:-1])
        name = parts[-1]
        if name == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if name.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return self._skip(m, "aufs metadata")
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise _Refused("is a whiteout of nothing")
        # the layer's own entry of that name wins (whiteouts hide lower layers only)
        try:
            _mkwhiteout(hidden, parent)
        except FileExistsError:
            pass

    def _xattrs(self, fd, m):
        for attr, value in m.xattrs.items():
            if attr in XATTR_ALLOWED or attr.startswith(XATTR_ALLOWED_PREFIXES):
                os.setxattr(fd, attr, value)
            elif self.log:
                self.log(f"{m.name}: xattr {attr} not applied")

    def finish(self):
        """Apply directory owners, modes, xattrs and mtimes (last, because
        creating entries changes a directory's mtime)."""
        for parts in sorted(self.dirs, key=len, reverse=True):
            m = self.dirs[parts]
            self._close_stale()
            fd = self.dir_fd(parts, create=False)
            os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode)
            if m.xattrs:
                self._xattrs(fd, m)
            os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))


def _umask():
    """This process's umask, read without changing it (Linux 4.7+)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777          # unknown: always fchmod


def _is_symlink(name, parent):
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _mkwhiteout(name, parent):
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)


def _utime(name, parent, m):
    try:
        os.utime(name, ns=(m.mtime_ns, m.mtime_ns), dir_fd=parent, follow_symlinks=False)
    except (OverflowError, ValueError):
        pass


# ------------------------------------------------------------------ entry
def unpack_stream(stream, dest, log=None, refuse_devices=False):
    """Unpack every member of a TarStream into the existing directory dest.

    Returns the number of bytes of file data written.  Raises ContainError
    naming the member for anything unsafe, corrupted or truncated.
    """
    label = stream.label
    reader = TarReader(stream)
    unpacker = Unpacker(dest, log, refuse_devices)
    try:
        for m in reader:
            try:
                unpacker.add(m, stream)
            except _Refused as e:
                raise ContainError(f"{label}: refusing member '{m.name}': it {e}") from None
            except OSError as e:
                raise ContainError(f"{label}: cannot unpack '{m.name}': "
                                   f"{e.strerror or e}") from None
        if reader.last_name is None and not reader.ended:
            raise ContainError(f"{label}: not a tar archive (it is empty)")
        end = stream.tell()
        if not stream.rest_is_zeros():
            raise ContainError(f"{label}: corrupted tar: data after the "
                               f"end-of-archive block at byte {end}")
        try:
            unpacker.finish()
        except (_Refused, OSError) as e:
            raise ContainError(f"{label}: cannot set directory metadata: {e}") from None
    finally:
        unpacker.close()
    return unpacker.size


def open_source(src):
    """(file object, close?) for a path, '-' (stdin) or a binary file object."""
    if hasattr(src, "read"):
        return src, False
    if src == "-":
        import sys
        return sys.stdin.buffer, False
    try:
        return open(src, "rb", buffering=0), True
    except OSError as e:
        raise ContainError(f"cannot open {src}: {e.strerror}") from None


def safe_extract(src, dest, log=None, label=None, refuse_devices=False):
    """Unpack the tar src (plain, gzip, bzip2, xz; zstd where Python has
    compression.zstd) -- a path, '-' for stdin, or a binary file object --
    into dest, created if missing.

    Nothing lands outside dest (see the module docstring).  Device nodes
    are skipped, or refused with refuse_devices (a --rootfs tarball: whiteouts
    make no sense there either).  Returns a dict:
    size (bytes of file data written), compression (None or its name).
    """
    raw, close = open_source(src)
    label = str(label or (src if isinstance(src, str) else getattr(src, "name", "tar stream")))
    try:
        os.makedirs(dest, exist_ok=True)
        stream = TarStream(raw, label)
        size = unpack_stream(stream, dest, log, refuse_devices)
    finally:
        if close:
            raw.close()
    return {"size": size, "compression": stream.compression}
