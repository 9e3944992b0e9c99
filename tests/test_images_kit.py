"""Builders for the image tests: layer tarballs, docker-archives and OCI
layouts written with tarfile, so every test runs on real archives.

    layer = make_tar([D("etc"), F("etc/motd", b"hi"), W("etc/old")])
    docker_archive(path, [Img(["app:v1"], [layer], {"Cmd": ["sh"]})])
    oci_layout(dir_or_tar, [Img(...)])

(This module holds no tests.)
"""

import gzip
import hashlib
import io
import json
import os
import platform as _platform
import tarfile

MTIME = 1_600_000_000


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ members
def F(name, data=b"", mode=0o644, uid=0, gid=0, mtime=MTIME, xattrs=None, pax=None):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, mtime
    headers = dict(pax or {})
    for key, value in (xattrs or {}).items():
        headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape") \
            if isinstance(value, bytes) else value
    info.pax_headers = headers
    return info, data


def D(name, mode=0o755, uid=0, gid=0, mtime=MTIME):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, mode, uid, gid, mtime
    return info, None


def L(name, target, uid=0, gid=0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.uid, info.gid, info.mtime = \
        tarfile.SYMTYPE, target, uid, gid, MTIME
    info.mode = 0o777
    return info, None


def H(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = tarfile.LNKTYPE, target, MTIME
    return info, None


def DEV(name, kind=tarfile.CHRTYPE, major=1, minor=3):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o666
    return info, None


def FIFO(name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.FIFOTYPE, 0o640
    return info, None


def W(path):
    """An OCI whiteout hiding path."""
    head, _, base = path.rpartition("/")
    return F((head + "/" if head else "") + ".wh." + base)


def OPQ(directory):
    """The opaque-directory marker of directory."""
    return F(directory.rstrip("/") + "/.wh..wh..opq")


def make_tar(members, compress=None, fmt=tarfile.PAX_FORMAT, eof=True):
    """A tar (bytes) of [(TarInfo, data)]; compress: None or 'gzip'.
    eof=False drops the end-of-archive blocks (as umoci does)."""
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=fmt)
    for info, data in members:
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
    if eof:
        tar.close()
        raw = buf.getvalue()
    else:
        raw = buf.getvalue()     # members only, no zero blocks
    if compress == "gzip":
        return gzip.compress(raw, mtime=0)
    return raw


def uncompressed(blob):
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


# ------------------------------------------------------------------ images
def host_arch():
    m = _platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class Img:
    """An image to write: tags, layer blobs (tar or tar.gz bytes), config section."""

    def __init__(self, refs, layers, section=None, arch=None, created="2024-01-02T03:04:05Z"):
        self.refs = list(refs)
        self.layers = list(layers)
        self.arch = arch or host_arch()
        config = {"architecture": self.arch, "os": "linux", "created": created,
                  "config": section or {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers",
                             "diff_ids": [sha(uncompressed(b)) for b in self.layers]}}
        self.config = json.dumps(config, sort_keys=True).encode()
        self.id = sha(self.config)

    def layer_type(self, blob):
        base = "application/vnd.oci.image.layer.v1.tar"
        return base + "+gzip" if blob[:2] == b"\x1f\x8b" else base

    def manifest(self, layer_types=None):
        return json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.id, "size": len(self.config)},
            "layers": [{"mediaType": (layer_types or {}).get(i, self.layer_type(b)),
                        "digest": sha(b), "size": len(b)}
                       for i, b in enumerate(self.layers)]}).encode()


class _Writer:
    """Files into a directory, or members of a tar."""

    def __init__(self, dest, as_tar):
        self.dest, self.as_tar = dest, as_tar
        self.tar = tarfile.open(dest, "w") if as_tar else None
        self.seen = set()

    def put(self, name, data):
        if name in self.seen:
            return
        self.seen.add(name)
        if self.as_tar:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            self.tar.addfile(info, io.BytesIO(data))
        else:
            path = os.path.join(self.dest, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def close(self):
        if self.tar:
            self.tar.close()


def docker_archive(path, images, legacy=True, corrupt=None):
    """Write a docker-archive tar at path.  legacy: Docker < 25 names
    (<id>.json, <n>/layer.tar); else Docker 25's blobs/sha256/ paths."""
    w = _Writer(path, True)
    manifest = []
    for img in images:
        cfg_name = img.id[7:] + ".json" if legacy else "blobs/sha256/" + img.id[7:]
        w.put(cfg_name, img.config)
        names = []
        for n, blob in enumerate(img.layers):
            name = (f"{sha(blob)[7:15]}{n}/layer.tar" if legacy
                    else "blobs/sha256/" + sha(blob)[7:])
            data = blob if corrupt is None or corrupt != (img, n) else _flip(blob)
            w.put(name, data)
            names.append(name)
        manifest.append({"Config": cfg_name, "RepoTags": img.refs or None, "Layers": names})
    w.put("manifest.json", json.dumps(manifest).encode())
    w.close()
    return path


def _flip(blob):
    mid = len(blob) // 4          # inside the first member's data
    return blob[:mid] + bytes([blob[mid] ^ 0xFF]) + blob[mid + 1:]


def oci_layout(dest, images, as_tar=False, index_of=None, skip_blobs=(), layer_types=None,
               ref_name_only=False):
    """Write an OCI layout (a directory, or a tar when as_tar).

    index_of: a list of (Img, platform dict) put in one nested image index
    named by images[0]'s first ref (a multi-platform image).
    """
    if not as_tar:
        os.makedirs(dest, exist_ok=True)
    w = _Writer(dest, as_tar)
    w.put("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')

    def put_image(img):
        for blob in img.layers:
            if sha(blob) not in skip_blobs:
                w.put("blobs/sha256/" + sha(blob)[7:], blob)
        w.put("blobs/sha256/" + img.id[7:], img.config)
        m = img.manifest(layer_types)
        w.put("blobs/sha256/" + sha(m)[7:], m)
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha(m), "size": len(m)}

    manifests = []
    if index_of:
        children = []
        for img, plat in index_of:
            children.append(dict(put_image(img), platform=plat))
        idx = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": children}).encode()
        w.put("blobs/sha256/" + sha(idx)[7:], idx)
        desc = {"mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": sha(idx), "size": len(idx)}
        refs = index_of[0][0].refs
        if refs:
            desc["annotations"] = {"org.opencontainers.image.ref.name": refs[0]}
        manifests.append(desc)
    for img in images:
        desc = put_image(img)
        for ref in img.refs or [None]:
            d = dict(desc)
            if ref:
                if ref_name_only:
                    d["annotations"] = {"org.opencontainers.image.ref.name": ref}
                else:
                    d["annotations"] = {"io.containerd.image.name": ref,
                                        "org.opencontainers.image.ref.name":
                                            ref.rpartition(":")[2]}
            manifests.append(d)
    w.put("index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
    w.close()
    return dest
