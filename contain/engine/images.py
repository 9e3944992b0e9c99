"""The image store: load, import, tag, remove and save images, and what the
runtime needs to run one (its layer directories, its config).

Layout under the state root (default /var/lib/contain)::

    images/
      lock                    flock(2) held by every writer (readers need none)
      tags.json               {"busybox:latest": "sha256:<image id>"}, replaced atomically
      records/<hex>.json      one image: its layers (by diff_id) and summary
      blobs/sha256/<hex>      content-addressed: configs and layer tars as shipped
      layers/<key>/diff/      one unpacked layer, shared by every image using it
      layers/<key>/layer.json its diff_id, blob digest, media type and sizes
      tmp/                    work in progress; emptied by the next writer

An image's ID is the sha256 of its config (as in Docker).  A layer is keyed
by its diff_id (the sha256 of the uncompressed tar), so two images sharing a
base layer unpack and store it once.  <key> is the diff_id's first 12 hex
digits (longer only on a collision), which keeps overlay's lowerdir option
short for images with many layers.

Every write goes to tmp/ first and is renamed into place when complete and
verified; the records that reference blobs and layers are written after
them, and tags.json last.  A failure rolls back whatever the operation had
created, so a bad image leaves nothing behind; a crash leaves at most
unreferenced files, removed by the next writer's garbage collection.

Formats read: docker-archive (``docker save``/``podman save``, including
Docker 25+'s OCI-inside layout) and the OCI image layout, as a directory or
a tar, from a file or stdin; an OCI index with several platforms yields the
host's (or the one asked for).  ``save`` writes an archive that is both a
docker-archive and an OCI layout, as Docker 25 does.
"""

import os
import sys

from . import refs as _refs
from .. import fastjson
from .state import FileLock, secure_state_root
from ..core import fsutil
from ..core.fsutil import DamagedFile
from ..errors import Conflict, ContainError, NotFound, UsageError, describe_oserror

parse_reference = _refs.parse_reference     # (name, tag), Docker's grammar; see refs.py

SHORT_KEY = 12
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_JSON = 32 << 20        # largest manifest/config/index read into memory

# media types (OCI image-spec, Docker's image manifest v2 schema 2)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = {   # media type -> compression it announces
    OCI_LAYER: None,
    OCI_LAYER + "+gzip": "gzip",
    OCI_LAYER + "+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": None,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": None,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar": None,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}
DOCKER_ARCHIVE_LAYER = "docker-archive layer"   # no media type: detected from content
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def _log_nothing(message):
    pass


def short_digest(digest):
    """'sha256:0123456789abcdef...' -> '0123456789ab' (Docker's short ID)."""
    return digest.split(":", 1)[-1][:12]


def _hex(digest, what):
    algo, _, hexd = (digest or "").partition(":")
    if algo != "sha256" or len(hexd) != 64 or hexd.strip("0123456789abcdef"):
        raise ContainError(f"{what}: unsupported or malformed digest '{digest}'")
    return hexd


def _sha256(data):
    import hashlib
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _now():
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ------------------------------------------------------------ small file helpers
def write_atomic(path, data):
    """Write bytes (or a JSON-able object) to path via a temp file + rename."""
    if isinstance(data, bytes):
        fsutil.write_atomic(path, data)
    else:
        fsutil.write_json(path, data)


def _warn(message):
    import sys
    sys.stderr.write(f"WARNING: {message}\n")
    sys.stderr.flush()


# What each JSON file of the store must look like (a damaged one is named,
# with what to do, instead of failing somewhere later with a traceback).
def _is_digest(value):
    return isinstance(value, str) and value.startswith("sha256:") and len(value) == 71 \
        and not value[7:].strip("0123456789abcdef")


def _is_key(value):
    """A layer key: it becomes a directory name, so hex digits only."""
    return isinstance(value, str) and 0 < len(value) <= 64 and \
        not value.strip("0123456789abcdef")


def _check_tags(value):
    return fsutil.is_dict_of(value, key_ok=lambda k: bool(k), value_ok=_is_digest)


def _check_record(image_id):
    def check(value):
        wrong = fsutil.is_dict_of(value)
        if wrong:
            return wrong
        if value.get("id") != image_id:
            return "it does not name the image its file name says"
        layers = value.get("layers")
        if not isinstance(layers, list) or not all(
                isinstance(layer, dict) and _is_digest(layer.get("diff_id"))
                and _is_key(layer.get("key")) for layer in layers):
            return "its list of layers is malformed"
        if not isinstance(value.get("size", 0), int) or \
                not isinstance(value.get("created", ""), str) or \
                not isinstance(value.get("repo_digests", []), list):
            return "its size, creation time or digests are malformed"
        return None
    return check


def _check_layer(value):
    wrong = fsutil.is_dict_of(value)
    if wrong:
        return wrong
    if not (_is_digest(value.get("diff_id")) and _is_digest(value.get("digest"))):
        return "its digests are malformed"
    if not all(isinstance(value.get(k), int) for k in ("size", "diff_size", "blob_size")):
        return "its sizes are malformed"
    return None


def _remove(path):
    """Remove a file or a directory tree (whiteouts and all); missing is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass





def _oserrors_as(what):
    """Decorator: an OSError escaping a store operation becomes a one-line
    ContainError ('load /path: No space left on device')."""
    def wrap(fn):
        def inner(*args, **kw):
            try:
                return fn(*args, **kw)
            except OSError as e:
                step = f"{what} {e.filename}" if e.filename else what
                raise ContainError(describe_oserror(step, e)) from None
        inner.__name__, inner.__doc__ = fn.__name__, fn.__doc__
        return inner
    return wrap


class _Txn:
    """What one operation created, so a failure can take it all back."""

    def __init__(self):
        self.created = []

    def add(self, path):
        self.created.append(path)

    def rollback(self):
        for path in reversed(self.created):
            _remove(path)
        self.created = []


class _Transaction:
    """A store write: the lock, leftovers of a crashed writer recovered, and
    a _Txn that is rolled back on any failure; tmp/ emptied at the end."""

    def __init__(self, store):
        self.store = store
        self.lock = store._lock()
        self.txn = _Txn()

    def __enter__(self):
        self.lock.__enter__()
        try:
            self.store._recover()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self.txn

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self.txn.rollback()
        finally:
            try:
                self.store._empty_tmp()
            finally:
                self.lock.__exit__(exc_type, exc, tb)
        return False


# ------------------------------------------------------------------ platforms
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64",
                 "armhf": "arm", "armel": "arm", "i386": "386", "i686": "386"}


def host_platform():
    """{'os', 'architecture', 'variant'} of this machine, in OCI's words."""
    import platform
    machine = platform.machine()
    arch, variant = {
        "x86_64": ("amd64", None), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"), "i686": ("386", None), "i386": ("386", None),
    }.get(machine, (machine, None))
    return {"os": "linux", "architecture": arch, "variant": variant}


def parse_platform(text):
    """'linux/arm64/v8' -> {'os', 'architecture', 'variant'}; UsageError if malformed."""
    parts = (text or "").lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform '{text}': use os/arch[/variant], "
                         "e.g. linux/amd64 or linux/arm/v7")
    arch = _ARCH_ALIASES.get(parts[1], parts[1])
    return {"os": parts[0], "architecture": arch,
            "variant": parts[2] if len(parts) == 3 else None}


def format_platform(p):
    text = f"{p.get('os') or '?'}/{p.get('architecture') or '?'}"
    return text + (f"/{p['variant']}" if p.get("variant") else "")


def platform_matches(want, have):
    """Does the platform have (a descriptor's or config's) satisfy want?"""
    if (have.get("os") or "linux") != want["os"]:
        return False
    if _ARCH_ALIASES.get(have.get("architecture"), have.get("architecture")) != \
            want["architecture"]:
        return False
    default = "v8" if want["architecture"] == "arm64" else None
    wv, hv = want.get("variant") or default, have.get("variant") or default
    return not wv or not hv or wv == hv


def _is_attestation(desc):
    ann = desc.get("annotations") or {}
    plat = desc.get("platform") or {}
    return ann.get("vnd.docker.reference.type") == "attestation-manifest" or \
        plat.get("os") == "unknown"


def choose_platform(leaves, want, explicit, label, platform_of):
    """The manifest descriptor among an index's leaves that fits want
    (attestations skipped; a lone image is taken unless a platform was
    asked for explicitly).  platform_of(desc) is asked when a descriptor
    carries no platform."""
    leaves = [d for d in leaves if not _is_attestation(d)] or leaves
    if not leaves:
        raise ContainError(f"{label}: the index lists no image")
    if len(leaves) == 1 and not explicit:
        return leaves[0]
    platforms = [d.get("platform") or platform_of(d) for d in leaves]
    for desc, plat in zip(leaves, platforms):
        if platform_matches(want, plat):
            return desc
    have = ", ".join(format_platform(p) for p in platforms)
    raise ContainError(f"{label}: no image for platform {format_platform(want)} "
                       f"(it has: {have}); choose one with --platform")


# ------------------------------------------------------------------ the image
class Image:
    """One stored image, as the runtime and the CLI see it.

    id           'sha256:<hex>' (the config's digest)
    refs         its tags, e.g. ['busybox:latest']
    config       the config's "config" section: Env, Entrypoint, Cmd,
                 WorkingDir, User, StopSignal, ExposedPorts, Labels...
    image_config the whole config JSON
    layer_dirs   absolute directories of the unpacked layers, bottom first
    layers       their diff_ids, bottom first
    created      the config's creation time (RFC 3339 text, may be '')
    size         bytes of file data in all layers
    """

    def __init__(self, store, record, refs):
        self._store = store
        self.id = record["id"]
        self.short_id = short_digest(self.id)
        self.refs = sorted(refs)
        self.layers = [layer["diff_id"] for layer in record["layers"]]
        self.layer_dirs = [store.layer_dir(layer["key"]) for layer in record["layers"]]
        self.created = record.get("created") or ""
        self.size = record.get("size", 0)
        self.repo_digests = record.get("repo_digests", [])
        self._image_config = None

    @property
    def image_config(self):
        if self._image_config is None:
            self._image_config = self._store.read_config(self.id)
        return self._image_config

    @property
    def config(self):
        return self.image_config.get("config") or {}

    def __repr__(self):
        return f"<Image {self.short_id} {' '.join(self.refs)}>"


# ------------------------------------------------------------------ archives
class _Candidate:
    """An image found in an archive, before anything is stored."""

    def __init__(self, refs, config_bytes, config_digest, layers, manifest_digest=None,
                 manifest_type=None, digest_names=()):
        self.refs = refs                     # normalized 'name:tag' strings
        self.config_bytes = config_bytes
        self.config_digest = config_digest
        self.config = None
        self.layers = layers                 # [{'path', 'digest', 'media_type', 'size'}]
        self.manifest_digest = manifest_digest
        self.manifest_type = manifest_type   # OCI or Docker schema2, when known
        self.digest_names = list(digest_names)   # names pulled by digest (no tag)


class _DirArchive:
    """The files of an image layout in a directory."""

    def __init__(self, root):
        self.root = root
        self.label = root

    def _path(self, name):
        parts = [p for p in name.split("/") if p and p != "."]
        if name.startswith("/") or ".." in parts or not parts:
            raise ContainError(f"{self.label}: refusing the path '{name}' named "
                               "in the archive (it leaves the archive)")
        return os.path.join(self.root, *parts)

    def exists(self, name):
        return os.path.isfile(self._path(name))

    def open(self, name):
        try:
            return open(self._path(name), "rb", buffering=0)
        except FileNotFoundError:
            raise ContainError(f"{self.label}: missing blob or file '{name}'") from None

    def close(self):
        pass


class _TarArchive:
    """The files of an image archive in a (seekable, uncompressed) tar."""

    def __init__(self, path, label):
        import tarfile
        self.label = label
        try:
            self.tar = tarfile.open(path, "r:")
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError) as e:
            raise ContainError(f"{label}: not a tar archive or a directory ({e})") from None
        self.members = {}
        for m in members:
            if m.isfile() or m.issym() or m.islnk():
                self.members[os.path.normpath(m.name.lstrip("/"))] = m

    def _member(self, name):
        return self.members.get(os.path.normpath(name.lstrip("/")))

    def exists(self, name):
        return self._member(name) is not None

    def open(self, name):
        m = self._member(name)
        f = None
        if m is not None:
            try:
                f = self.tar.extractfile(m)     # follows links inside the tar
            except KeyError:
                f = None
        if f is None:
            raise ContainError(f"{self.label}: missing blob or file '{name}'")
        return f

    def close(self):
        self.tar.close()


def _read_limited(archive, name, what):
    f = archive.open(name)
    try:
        data = f.read(MAX_JSON + 1)
    finally:
        f.close()
    if len(data) > MAX_JSON:
        raise ContainError(f"{archive.label}: {what} '{name}' is larger than {MAX_JSON} bytes")
    return data


def _parse_json(data, what, label):
    try:
        value = fastjson.loads(data)
    except ValueError as e:
        raise ContainError(f"{label}: {what} is not valid JSON ({e})") from None
    return value


def _blob_path(digest, what):
    return "blobs/sha256/" + _hex(digest, what)


def _read_blob(archive, desc, what):
    """The verified content of a small blob (manifest, index, config)."""
    digest = desc.get("digest") if isinstance(desc, dict) else None
    data = _read_limited(archive, _blob_path(digest, f"{archive.label}: {what}"), what)
    if _sha256(data) != digest:
        raise ContainError(f"{archive.label}: {what} {digest}: content does not match "
                           "its digest (corrupted)")
    if isinstance(desc.get("size"), int) and desc["size"] != len(data):
        raise ContainError(f"{archive.label}: {what} {digest}: size {len(data)} is not "
                           f"the {desc['size']} its descriptor says")
    return data


def _annotated_name(desc):
    """The name an OCI index entry gives its image ('' for none)."""
    ann = desc.get("annotations") if isinstance(desc, dict) else None
    ann = ann if isinstance(ann, dict) else {}
    name = ann.get(CONTAINERD_NAME) or ann.get(REF_NAME)
    return name if isinstance(name, str) else ""


def _ref_from_annotations(desc, log, repository):
    """The reference an OCI index entry names, normalized, or None.

    umoci and `skopeo copy ... oci:DIR:TAG` name an image by a bare tag
    ('latest', 'v3'): it is given the repository (see bare_tag_repository)."""
    name = _annotated_name(desc)
    if not name:
        return None
    if not any(c in name for c in ":/@"):
        if not _refs.is_tag(name):
            log(f"ignoring the image name '{name}': not a valid tag")
            return None
        name = f"{repository}:{name}"
    return _tag_or_none(name, log)


def bare_tag_repository(label):
    """The repository an OCI layout's bare tags are put in: localhost/ and
    the layout's directory or file name ('/tmp/app.tar' -> 'localhost/app'),
    made a valid repository name; 'localhost/image' when nothing is left."""
    import re
    base = os.path.basename(os.path.normpath(label)) if label != "stdin" else ""
    for ext in (".tar.gz", ".tgz", ".tar", ".oci"):
        if base.endswith(ext):
            base = base[:-len(ext)]
    base = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    return f"localhost/{base or 'image'}"


def _tag_or_none(name, log):
    """name normalized as a tag, or None (logged) when it cannot be one."""
    try:
        ref = _refs.normalize(name)
    except UsageError:
        log(f"ignoring the image name '{name}': not a valid reference")
        return None
    if "@" in ref:
        log(f"ignoring the image name '{name}': a digest is not a tag")
        return None
    return ref


def _docker_archive_images(archive, log):
    """Candidates from a docker-archive's manifest.json."""
    label = archive.label
    manifest = _parse_json(_read_limited(archive, "manifest.json", "manifest.json"),
                           "manifest.json", label)
    if not isinstance(manifest, list):
        raise ContainError(f"{label}: manifest.json is not a list of images")
    out = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list):
            raise ContainError(f"{label}: manifest.json has an entry without Config and Layers")
        config_bytes = _read_limited(archive, entry["Config"], "config")
        digest = _sha256(config_bytes)
        named = _digest_in_path(entry["Config"])
        if named and named != digest:
            raise ContainError(f"{label}: config {entry['Config']}: content does not "
                               f"match its digest (corrupted)")
        layers = [{"path": path, "digest": _digest_in_path(path),
                   "media_type": DOCKER_ARCHIVE_LAYER, "size": None}
                  for path in entry["Layers"]]
        tags = []
        for tag in entry.get("RepoTags") or []:
            try:
                _refs.parse_reference(tag)
            except UsageError as e:
                raise ContainError(f"{label}: {e}") from None
            tag = _tag_or_none(tag, log)
            if tag:
                tags.append(tag)
        out.append(_Candidate(tags, config_bytes, digest, layers,
                              manifest_type=DOCKER_MANIFEST))
    return out


def _load_naming(name):
    """(repository, full reference or None) from `load --name`."""
    if not name:
        return None, None
    repo, tag = _refs.parse_reference(name)
    if tag.startswith("@"):
        raise UsageError(f"load --name {name}: a digest is not a name to give")
    has_tag = ":" in name.rsplit("/", 1)[-1]
    return repo, (_refs.format_reference(repo, tag) if has_tag else None)


def _apply_naming(candidates, repository, tagged, label):
    """load --name: REPO:TAG tags the one image; REPO names unnamed ones."""
    if tagged:
        if len(candidates) != 1:
            raise UsageError(f"{label}: holds {len(candidates)} images: give --name a "
                             "repository without a tag, or load them one by one")
        if tagged not in candidates[0].refs:
            candidates[0].refs.append(tagged)
    elif repository:
        for cand in candidates:
            if not cand.refs:
                cand.refs.append(_refs.format_reference(repository, _refs.DEFAULT_TAG))


def _digest_in_path(path):
    """The digest a docker-archive path names: blobs/sha256/<hex> (Docker 25),
    <hex>.json (a config), <hex>.tar (podman's layers)."""
    parts = path.strip("/").split("/")
    name = parts[-1]
    if name.endswith((".json", ".tar")):
        name = name.rsplit(".", 1)[0]
    if len(name) == 64 and not name.strip("0123456789abcdef") and \
            (len(parts) == 1 or parts[-2] == "sha256"):
        return "sha256:" + name
    return None


class _OciReader:
    """Walks an OCI layout's index.json down to image manifests."""

    def __init__(self, archive, platform, log, repository=None):
        self.archive = archive
        self.label = archive.label
        self.want = platform or host_platform()
        self.explicit = platform is not None
        self.log = log
        self.repository = repository or bare_tag_repository(archive.label)

    def images(self):
        index = _parse_json(_read_limited(self.archive, "index.json", "index.json"),
                            "index.json", self.label)
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ContainError(f"{self.label}: index.json has no manifests list")
        if not self.archive.exists("oci-layout"):
            self.log(f"{self.label}: no oci-layout file; reading it as an OCI layout anyway")
        groups = {}     # each name is an image; unnamed entries: platforms of one
        for desc in index["manifests"]:
            if not isinstance(desc, dict):
                raise ContainError(f"{self.label}: index.json has a malformed descriptor")
            groups.setdefault(_annotated_name(desc), []).append(desc)
        out = []
        for descs in groups.values():
            manifest_desc = self._choose(self._leaves(descs, 0))
            cand = self._candidate(manifest_desc)
            ref = _ref_from_annotations(descs[0], self.log, self.repository)
            if ref:
                cand.refs.append(ref)
            out.append(cand)
        return out

    def _media_type(self, desc, data=None):
        mt = desc.get("mediaType")
        if mt is None and data is not None:
            mt = (_parse_json(data, "manifest", self.label) or {}).get("mediaType")
        return mt

    def _leaves(self, descs, depth):
        """Image manifest descriptors below descs (indexes expanded)."""
        if depth > 4:
            raise ContainError(f"{self.label}: indexes nested too deep")
        out = []
        for desc in descs:
            mt = desc.get("mediaType")
            if mt in MANIFEST_TYPES:
                out.append(desc)
            elif mt in INDEX_TYPES or mt is None:
                data = _read_blob(self.archive, desc, "index")
                body = _parse_json(data, "index", self.label)
                body_mt = body.get("mediaType") if isinstance(body, dict) else None
                if mt is None and (body_mt in MANIFEST_TYPES or "config" in body):
                    out.append(dict(desc, mediaType=body_mt or OCI_MANIFEST))
                    continue
                children = body.get("manifests") if isinstance(body, dict) else None
                if not isinstance(children, list):
                    raise ContainError(f"{self.label}: index {desc.get('digest')} has "
                                       "no manifests list")
                out += self._leaves(children, depth + 1)
            else:
                raise ContainError(f"{self.label}: unknown media type '{mt}' for "
                                   f"{desc.get('digest')} in the index")
        return out

    def _choose(self, leaves):
        return choose_platform(leaves, self.want, self.explicit, self.label,
                               self._config_platform)

    def _config_platform(self, desc):
        manifest = self._manifest(desc)
        config = _parse_json(_read_blob(self.archive, manifest["config"], "config"),
                             "config", self.label)
        return {k: config.get(k) for k in ("os", "architecture", "variant")}

    def _manifest(self, desc):
        data = _read_blob(self.archive, desc, "manifest")
        manifest = _parse_json(data, "manifest", self.label)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) \
                or not isinstance(manifest.get("layers"), list):
            raise ContainError(f"{self.label}: manifest {desc.get('digest')} has no "
                               "config and layers")
        return manifest

    def _candidate(self, desc):
        manifest = self._manifest(desc)
        config_desc = manifest["config"]
        mt = config_desc.get("mediaType")
        if mt not in CONFIG_TYPES:
            raise ContainError(f"{self.label}: manifest {desc['digest']}: unknown config "
                               f"media type '{mt}' (not a container image)")
        config_bytes = _read_blob(self.archive, config_desc, "config")
        layers = []
        for layer in manifest["layers"]:
            if not isinstance(layer, dict):
                raise ContainError(f"{self.label}: manifest {desc['digest']} has a "
                                   "malformed layer descriptor")
            digest = layer.get("digest")
            mt = layer.get("mediaType")
            if mt not in LAYER_TYPES:
                raise ContainError(f"{self.label}: layer {digest}: unknown media type '{mt}'")
            layers.append({"path": _blob_path(digest, f"{self.label}: layer"),
                           "digest": digest, "media_type": mt, "size": layer.get("size")})
        return _Candidate([], config_bytes, config_desc["digest"], layers,
                          manifest_digest=desc["digest"], manifest_type=desc.get("mediaType"))


# ------------------------------------------------------------------ the store
class ImageStore:
    """Images under root/images (root: the state root, e.g. /var/lib/contain)."""

    def __init__(self, root):
        self.root = root
        self.dir = os.path.join(root, "images")
        self.blobs = os.path.join(self.dir, "blobs", "sha256")
        self.layers_dir = os.path.join(self.dir, "layers")
        self.records = os.path.join(self.dir, "records")
        self.tmp = os.path.join(self.dir, "tmp")
        self.tags_path = os.path.join(self.dir, "tags.json")
        if os.path.isdir(self.dir):     # (an older store: 0755 directories)
            secure_state_root(root, self.dir)

    # -- paths and reads (no lock needed: every file is replaced atomically)
    def layer_dir(self, key):
        return os.path.join(self.layers_dir, key, "diff")

    def blob_path(self, digest):
        return os.path.join(self.blobs, _hex(digest, "blob"))

    def read_config(self, image_id):
        short = short_digest(image_id)
        try:
            return fsutil.read_state_json(
                self.blob_path(image_id), fsutil.is_dict_of,
                f"load image {short} again to repair it, or remove it with 'contain rmi {short}'")
        except FileNotFoundError:
            raise NotFound(f"the config of image {short} is missing "
                           "from the store") from None

    TAGS_REMEDY = ("the next 'contain load', 'tag' or 'rmi' sets it aside as "
                   "tags.json.damaged; the images stay, untagged ('contain tag ID NAME' "
                   "names one again)")

    def tags(self):
        """{ref: image id}: every tag (DamagedFile if tags.json is damaged)."""
        return fsutil.read_state_json(self.tags_path, _check_tags, self.TAGS_REMEDY, default={})

    def _tags_locked(self):
        """The tags, for a writer (who holds the lock): a damaged tags.json
        is set aside with a warning, and the store goes on without tags."""
        try:
            return self.tags()
        except DamagedFile as e:
            aside = self.tags_path + ".damaged"
            os.replace(self.tags_path, aside)
            _warn(f"{e.path} was damaged ({e.problem}): set aside as {aside}; "
                  "every image is untagged now ('contain tag ID NAME' names one again)")
            return {}

    def _write_tags(self, tags):
        """Replace tags.json (locked); a tag whose image record is gone (a
        removal cut short) goes with it."""
        write_atomic(self.tags_path, {ref: image_id for ref, image_id in tags.items()
                                      if os.path.exists(self._record_path(image_id))})

    def _set_tag(self, ref, image_id):
        """Point ref at image_id (the caller holds the store's lock)."""
        tags = self._tags_locked()
        tags[ref] = image_id
        self._write_tags(tags)

    def _record_path(self, image_id):
        return os.path.join(self.records, _hex(image_id, "image") + ".json")

    def _record(self, image_id):
        """The record of image_id, None if there is none; DamagedFile if damaged."""
        short = short_digest(image_id)
        return fsutil.read_state_json(
            self._record_path(image_id), _check_record(image_id),
            f"'contain rmi -f {short}' removes the image (load it again afterwards)",
            default=None)

    def _records(self, damaged=None):
        """Every image record.  A damaged one raises DamagedFile, or with a
        list for damaged, is skipped and added to it."""
        try:
            names = os.listdir(self.records)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if name.endswith(".json") and len(name) == 69:
                try:
                    record = self._record("sha256:" + name[:-5])
                except DamagedFile as e:
                    if damaged is None:
                        raise
                    damaged.append(e)
                    continue
                if record:
                    out.append(record)
        return out

    def _image(self, record, tags=None):
        tags = self.tags() if tags is None else tags
        return Image(self, record, [t for t, i in tags.items() if i == record["id"]])

    def _layer_info(self, diff_id):
        """(key, layer.json dict or None): where diff_id's layer is or would
        go.  DamagedFile if its layer.json is damaged."""
        key, info, damaged = self._layer_lookup(diff_id)
        if damaged:
            raise damaged
        return key, info

    def _layer_lookup(self, diff_id):
        """(key, info or None, DamagedFile or None).  A damaged layer.json
        at diff_id's first free key is taken to be this layer's: a load
        of it unpacks it again and replaces the directory."""
        hexd = _hex(diff_id, "layer")
        for n in (SHORT_KEY, 16, 24, 32, 64):
            try:
                info = self._read_layer_json(hexd[:n])
            except DamagedFile as e:
                return hexd[:n], None, e
            if info is None or info.get("diff_id") == diff_id:
                return hexd[:n], info, None
        raise ContainError(f"layer {diff_id}: no free key in the store")  # pragma: no cover

    def _read_layer_json(self, key):
        return fsutil.read_state_json(
            os.path.join(self.layers_dir, key, "layer.json"), _check_layer,
            "load an image with this layer again to repair it", default=None)

    # -- writers' helpers
    def _lock(self):
        # images/ is 0700: no other user may reach a layer's setuid programs
        secure_state_root(self.root, self.dir, os.path.dirname(self.blobs), self.blobs,
                          self.layers_dir, self.records, self.tmp)
        return FileLock(os.path.join(self.dir, "lock"))

    def _recover(self):
        """Before a write: empty tmp/ (we hold the lock, so nothing there is
        in use); if a crashed writer left work there, also collect the
        layers and blobs it stored without a record referencing them."""
        if self._empty_tmp():
            self._gc_locked()

    def _empty_tmp(self):
        leftovers = os.listdir(self.tmp)
        for name in leftovers:
            _remove(os.path.join(self.tmp, name))
        return leftovers

    def _mkdtemp(self, prefix):
        import tempfile
        return tempfile.mkdtemp(prefix=prefix, dir=self.tmp)

    def _put_blob(self, txn, data):
        """Store a small blob; one already there is checked, and replaced
        when its content no longer matches its digest."""
        digest = _sha256(data)
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                if _sha256(f.read()) == digest:
                    return digest
        except FileNotFoundError:
            txn.add(path)
        write_atomic(path, data)
        return digest

    # -- resolving references
    def resolve(self, ref, log=None):
        """The Image ref names: a tag ('busybox', 'app:v1'), 'name@sha256:...'
        (a manifest digest), or an image ID or unique prefix of one.  The
        built-in 'busybox' image is built when first asked for."""
        image = self._find(ref)
        if image is not None:
            return image
        name, tag = self._parse(ref)
        if tag == "latest" and name in BUILTIN_IMAGES:
            return self._build_builtin(name, log or _log_nothing)
        raise NotFound(f"no such image: {ref}")

    def _parse(self, ref):
        try:
            return _refs.parse_reference(ref)
        except UsageError:
            return None, None

    def _find(self, ref):
        """The Image for ref, or None."""
        tags = self.tags()
        text = ref.strip() if isinstance(ref, str) else ""
        name, tag = self._parse(text)
        if name is not None:
            if tag.startswith("@"):
                damaged = []
                for record in self._records(damaged):
                    if f"{name}{tag}" in record.get("repo_digests", []):
                        return self._image(record, tags)
                if damaged:     # (a plain error: rmi must not take it for this image)
                    raise ContainError(f"no readable image has the digest {tag[1:]}; "
                                       f"{damaged[0]}")
            else:
                image_id = tags.get(_refs.format_reference(name, tag))
                if image_id:
                    record = self._record(image_id)
                    if record:
                        return self._image(record, tags)
        return self._find_id(text, tags)

    def _find_id(self, text, tags):
        prefix = text[7:] if text.startswith("sha256:") else text
        if not prefix or len(prefix) > 64 or prefix.strip("0123456789abcdef"):
            return None
        try:
            names = os.listdir(self.records)
        except FileNotFoundError:
            return None
        matches = [n for n in names if n.startswith(prefix) and n.endswith(".json")]
        if len(matches) > 1:
            raise Conflict(f"the image ID prefix '{text}' is ambiguous "
                           f"({len(matches)} images match)")
        if matches and len(matches[0]) == 69:
            record = self._record("sha256:" + matches[0][:-5])
            if record:
                return self._image(record, tags)
        return None

    def list(self):
        """Every image, newest first."""
        tags = self.tags()
        images = [self._image(r, tags) for r in self._records()]
        images.sort(key=lambda i: (i.created, i.id), reverse=True)
        return images

    def inspect(self, ref):
        """Docker's `image inspect` object for ref."""
        image = self.resolve(ref)
        c = image.image_config
        return {
            "Id": image.id,
            "RepoTags": image.refs,
            "RepoDigests": image.repo_digests,
            "Parent": "",
            "Comment": c.get("comment", ""),
            "Created": image.created,
            "Author": c.get("author", ""),
            "Config": image.config,
            "Architecture": c.get("architecture", ""),
            "Variant": c.get("variant"),
            "Os": c.get("os", ""),
            "Size": image.size,
            "GraphDriver": {"Name": "overlay",
                            "Data": {"LowerDir": ":".join(reversed(image.layer_dirs))}},
            "RootFS": {"Type": "layers", "Layers": image.layers},
            "History": c.get("history", []),
        }

    # -- load
    @_oserrors_as("load")
    def load(self, source, platform=None, log=None, name=None):
        """Load every image in source (a docker-archive or OCI layout: a tar
        file, a directory, or '-' for stdin).  platform: 'os/arch[/variant]'
        to pick from a multi-platform index (default: this host's).

        name ('load --name'): REPOSITORY is where an OCI layout's bare tags
        go ('latest' -> REPOSITORY:latest) and what an unnamed image is
        called (REPOSITORY:latest); REPOSITORY:TAG tags the archive's one
        image.  Returns [(ref or None, image_id)], one per tag loaded (None
        for an untagged image).  All or nothing: on any error nothing is
        stored.
        """
        log = log or _log_nothing
        want = parse_platform(platform) if isinstance(platform, str) else platform
        naming = _load_naming(name)
        with _Transaction(self) as txn:
            return self._load_locked(source, want, log, txn, naming)

    def _load_locked(self, source, platform, log, txn, naming=(None, None)):
        repository, tagged = naming
        archive = self._open_archive(source)
        try:
            if archive.exists("manifest.json"):
                candidates = _docker_archive_images(archive, log)
            elif archive.exists("index.json"):
                candidates = _OciReader(archive, platform, log, repository).images()
            else:
                raise ContainError(
                    f"{archive.label}: not an image archive (no manifest.json or "
                    "index.json); for a root filesystem tarball use 'contain import'")
            if not candidates:
                raise ContainError(f"{archive.label}: the archive holds no image")
            _apply_naming(candidates, repository, tagged, archive.label)
            for cand in candidates:       # check everything cheap before unpacking
                self._check_candidate(archive, cand, platform)
            tags = self._tags_locked()
            result = []
            for cand in candidates:
                image_id = self._store_image(archive, cand, log, txn)
                for ref in cand.refs:
                    if tags.get(ref) not in (None, image_id):
                        log(f"{ref} moved from {short_digest(tags[ref])} to "
                            f"{short_digest(image_id)}")
                    tags[ref] = image_id
                    result.append((ref, image_id))
                if not cand.refs:
                    result.append((None, image_id))
            self._write_tags(tags)
            return result
        finally:
            archive.close()

    def _open_archive(self, source):
        """An archive object for a directory, a tar file, or '-' (stdin)."""
        if isinstance(source, str) and source != "-" and os.path.isdir(source):
            return _DirArchive(source)
        from . import unpack
        label = "stdin" if source == "-" else str(source)
        raw, close = unpack.open_source(source)
        try:
            seekable = close and raw.seekable()
            head = raw.read(8) if seekable else b""
            if seekable and not unpack.compression_name(head):
                return _TarArchive(source, label)
            if seekable:
                raw.seek(0)
            # compressed, or a pipe: spool the (uncompressed) tar to tmp/
            spool = os.path.join(self._mkdtemp("load-"), "archive.tar")
            fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                stream = unpack.TarStream(raw, label)
                if not stream.copy_to(fd, 1 << 62) and stream.diff_size == 0:
                    raise ContainError(f"{label}: empty input")
            finally:
                os.close(fd)
            return _TarArchive(spool, label)
        finally:
            if close:
                raw.close()

    def _check_candidate(self, archive, cand, platform):
        label = archive.label
        self._check_config(label, cand, platform)
        for layer in cand.layers:
            if layer["media_type"] != DOCKER_ARCHIVE_LAYER and \
                    self._layer_info(layer["diff_id"])[1] is not None:
                continue    # an OCI layout may leave out a blob the store has
            # (a docker-archive's layers are hashed even when present)
            if not archive.exists(layer["path"]):
                raise ContainError(f"{label}: layer {layer['digest'] or layer['path']}: "
                                   f"missing blob '{layer['path']}'")

    def _check_config(self, label, cand, platform):
        """Check cand's config against its manifest (and platform) before
        anything is stored; give each layer its diff_id."""
        config = _parse_json(cand.config_bytes, "the image config", label)
        if not isinstance(config, dict):
            raise ContainError(f"{label}: the image config is not a JSON object")
        rootfs = config.get("rootfs") or {}
        diff_ids = rootfs.get("diff_ids")
        if rootfs.get("type") != "layers" or not isinstance(diff_ids, list):
            raise ContainError(f"{label}: image {short_digest(cand.config_digest)}: "
                               "the config has no rootfs diff_ids")
        for d in diff_ids:
            _hex(d, f"{label}: diff_id")
        if len(diff_ids) != len(cand.layers):
            raise ContainError(f"{label}: image {short_digest(cand.config_digest)}: the "
                               f"config lists {len(diff_ids)} layers, the manifest "
                               f"{len(cand.layers)}")
        if platform is not None and config.get("architecture") and \
                not platform_matches(platform, config):
            raise ContainError(f"{label}: image {short_digest(cand.config_digest)} is "
                               f"for {format_platform(config)}, not "
                               f"{format_platform(platform)}")
        from . import unpack
        for layer, diff_id in zip(cand.layers, diff_ids):
            layer["diff_id"] = diff_id
            if LAYER_TYPES.get(layer["media_type"]) == "zstd" and \
                    self._layer_info(diff_id)[1] is None:
                unpack.decompressor_factory(unpack.ZSTD_MAGIC, f"{label}: layer "
                                            f"{layer['digest']}")
        cand.config = config

    def _store_image(self, archive, cand, log, txn):
        """Store one checked candidate: its layers, then config and record."""
        total = len(cand.layers)
        layers = []
        for n, layer in enumerate(cand.layers, 1):
            what = f"layer {n}/{total} ({short_digest(layer['digest'] or layer['diff_id'])})"
            key, info, _ = self._layer_lookup(layer["diff_id"])
            if info is not None:
                log(f"{what}: already present, not unpacked again")
                if archive.exists(layer["path"]):   # (it is hashed all the same)
                    self._verify_layer(archive, layer, f"{archive.label}: {what}")
            else:
                log(f"{what}: unpacking")
                f = archive.open(layer["path"])
                try:
                    key, info = self._ingest_layer(
                        txn, f, f"{archive.label}: {what}", layer["diff_id"],
                        layer["digest"], layer["media_type"], layer["size"])
                finally:
                    f.close()
            layers.append((key, info))
        return self._write_record(cand, layers, log, txn)

    def _verify_layer(self, archive, layer, label):
        """Hash a layer of the archive that is already in the store: the
        archive must still hold what its config says (Docker refuses a
        corrupted layer even when it has it: "invalid diffID")."""
        from . import unpack
        f = archive.open(layer["path"])
        try:
            stream = unpack.TarStream(f, label, blob_digest=True, diff_digest=True)
            stream.rest_is_zeros()      # reads (and hashes) it to the end
        finally:
            f.close()
        _check_digests(label, stream, layer["digest"], layer["size"], layer["diff_id"])

    def _write_record(self, cand, layers, log, txn):
        """Store the config blob and the image record for stored layers
        [(key, layer info)]."""
        image_id = cand.config_digest
        record_layers = [{"diff_id": info["diff_id"], "key": key} for key, info in layers]
        size = sum(info.get("size", 0) for _, info in layers)
        self._put_blob(txn, cand.config_bytes)
        record_path = self._record_path(image_id)
        try:
            old = self._record(image_id)
        except DamagedFile as e:
            log(f"{e.path} was damaged ({e.problem}): written afresh")
            old = None
        record = {"id": image_id, "layers": record_layers, "size": size,
                  "created": cand.config.get("created") or "",
                  "loaded": (old or {}).get("loaded") or _now(),
                  "repo_digests": list((old or {}).get("repo_digests", []))}
        if cand.manifest_digest:
            names = [_refs.parse_reference(ref)[0] for ref in cand.refs] + cand.digest_names
            for name in names:
                rd = f"{name}@{cand.manifest_digest}"
                if rd not in record["repo_digests"]:
                    record["repo_digests"].append(rd)
        manifest_type = cand.manifest_type or (old or {}).get("manifest_type")
        if manifest_type:
            record["manifest_type"] = manifest_type
        if old is None:
            log(f"image {short_digest(image_id)}: stored")
            txn.add(record_path)
        else:
            log(f"image {short_digest(image_id)}: already present")
        if record != old:
            write_atomic(record_path, record)
        return image_id

    def _ingest_layer(self, txn, raw, label, diff_id=None, digest=None,
                      media_type=None, size=None):
        """Unpack one layer from the file object raw, verifying it, and move
        it with its blob into the store.  Returns (key, layer info)."""
        from . import unpack
        work = self._mkdtemp("layer-")
        blob_tmp = os.path.join(work, "blob")
        fd = os.open(blob_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            stream = unpack.TarStream(raw, label, blob_digest=True, diff_digest=True,
                                      tee_fd=fd)
            os.mkdir(os.path.join(work, "diff"))
            os.chmod(os.path.join(work, "diff"), 0o755)
            unpacked = unpack.unpack_stream(stream, os.path.join(work, "diff"))
        finally:
            os.close(fd)
        got_digest, got_diff = _check_digests(label, stream, digest, size, diff_id)
        if media_type in (None, DOCKER_ARCHIVE_LAYER):
            media_type = OCI_LAYER + ("+" + stream.compression if stream.compression else "")
        info = {"diff_id": got_diff, "digest": got_digest, "media_type": media_type,
                "blob_size": stream.blob_size, "diff_size": stream.diff_size,
                "size": unpacked, "created": _now()}
        key, present, damaged = self._layer_lookup(got_diff)
        if present is not None:          # (import: the same content was there)
            return key, present
        if damaged:                      # replaced: tmp/ is emptied at the end
            os.rename(os.path.join(self.layers_dir, key), self._mkdtemp("damaged-") + "/layer")
        info["key"] = key
        blob = self.blob_path(got_digest)
        if os.path.exists(blob):
            os.unlink(blob_tmp)
        else:
            os.rename(blob_tmp, blob)
            txn.add(blob)
        write_atomic(os.path.join(work, "layer.json"), info)
        os.chmod(work, 0o700)
        target = os.path.join(self.layers_dir, key)
        os.rename(work, target)
        txn.add(target)
        return key, info

    # -- registries (contain/engine/registry.py speaks the protocol)
    @_oserrors_as("pull")
    def store_pulled(self, label, refs, config_bytes, layers, fetch, manifest_digest,
                     manifest_type, digest_names=(), platform=None, log=None, on_layer=None,
                     workers=4):
        """Store an image a registry served, all or nothing; returns its ID.

        The caller has verified the manifest and config_bytes against their
        digests.  layers: the manifest's [{'digest', 'media_type', 'size'}].
        fetch(layer, stop) opens one layer's blob as a file object; it should
        fail soon after the threading.Event stop is set.  Layers already
        stored are not fetched; the others are fetched and unpacked in
        parallel, each checked against its digest, its size and the config's
        diff_id, as load does.  on_layer(layer, 'exists'|'done') reports.
        """
        log, on_layer = log or _log_nothing, on_layer or (lambda layer, what: None)
        cand = _Candidate(list(refs), config_bytes, _sha256(config_bytes),
                          [dict(layer, path=None) for layer in layers],
                          manifest_digest=manifest_digest, manifest_type=manifest_type,
                          digest_names=digest_names)
        with _Transaction(self) as txn:
            self._check_config(label, cand, platform)
            missing = {}
            for layer in cand.layers:
                if self._layer_info(layer["diff_id"])[1] is not None:
                    on_layer(layer, "exists")
                else:
                    missing.setdefault(layer["diff_id"], layer)
            self._fetch_layers(txn, label, list(missing.values()), fetch, workers, on_layer)
            stored = [self._layer_info(layer["diff_id"]) for layer in cand.layers]
            image_id = self._write_record(cand, stored, log, txn)
            tags = self.tags()
            for ref in cand.refs:
                tags[ref] = image_id
            write_atomic(self.tags_path, tags)
        return image_id

    def _fetch_layers(self, txn, label, layers, fetch, workers, on_layer):
        """Fetch and unpack layers in threads; the first failure stops the
        others (through the Event fetch was given) and is raised."""
        import threading
        from concurrent.futures import ThreadPoolExecutor
        stop, first = threading.Event(), []

        def one(layer):
            try:
                f = fetch(layer, stop)
                try:
                    self._ingest_layer(txn, f, f"{label}: layer "
                                       f"{short_digest(layer['digest'])}", layer["diff_id"],
                                       layer["digest"], layer["media_type"], layer["size"])
                finally:
                    f.close()
            except BaseException as e:
                if not stop.is_set():
                    first.append(e)
                    stop.set()
                raise
            on_layer(layer, "done")

        if not layers:
            return
        pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(layers))))
        try:
            futures = [pool.submit(one, layer) for layer in layers]
            for f in futures:
                f.exception()        # waits
        finally:
            stop.set()               # (an interrupt here: the threads give up soon)
            pool.shutdown(wait=True)
        if first:
            raise first[0]
        for f in futures:
            if f.exception() is not None:
                raise f.exception()

    def push_contents(self, image):
        """What a registry needs to hold image: (manifest media type, config
        descriptor, layer descriptors), each descriptor with the 'path' of
        its blob in the store.  The manifest is Docker schema2 when the image
        came as one (and its layers fit it), OCI otherwise."""
        record = self._record(image.id) or {}
        layers = []
        for diff_id in image.layers:
            info = self._layer_info(diff_id)[1]
            if info is None:
                raise NotFound(f"image {image.short_id}: layer {diff_id} is missing "
                               "from the store")
            layers.append({"digest": info["digest"], "size": info["blob_size"],
                           "compression": LAYER_TYPES.get(info["media_type"]),
                           "path": self.blob_path(info["digest"])})
        docker = record.get("manifest_type") == DOCKER_MANIFEST and \
            all(layer["compression"] != "zstd" for layer in layers)
        for layer in layers:
            comp = layer.pop("compression")
            if docker:
                layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar" + \
                    (".gzip" if comp == "gzip" else "")
            else:
                layer["mediaType"] = OCI_LAYER + (f"+{comp}" if comp else "")
        path = self.blob_path(image.id)
        config = {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": image.id,
                  "size": os.stat(path).st_size, "path": path}
        return (DOCKER_MANIFEST if docker else OCI_MANIFEST), config, layers

    @_oserrors_as("recording a repository digest")
    def add_repo_digest(self, image_id, repo_digest):
        """Remember that name@digest (a pushed manifest) is image_id."""
        with self._lock():
            path = os.path.join(self.records, _hex(image_id, "image") + ".json")
            record = self._record(image_id)
            if record and repo_digest not in record.setdefault("repo_digests", []):
                record["repo_digests"].append(repo_digest)
                write_atomic(path, record)

    # -- import
    @_oserrors_as("import")
    def import_tarball(self, source, ref=None, log=None, config=None, message=None):
        """Make a one-layer image of a root filesystem tarball (a path, '-'
        or a binary file object; plain or compressed).  ref names it;
        config is an optional "config" section (Cmd, Env...; see
        parse_changes); message goes in its history.  Returns the image ID."""
        log = log or _log_nothing
        ref = _refs.normalize(ref) if ref else None
        if ref and "@" in ref:
            raise UsageError(f"cannot tag an image with the digest reference '{ref}'")
        from . import unpack
        with _Transaction(self) as txn:
            raw, close = unpack.open_source(source)
            try:
                label = "stdin" if source == "-" else str(getattr(source, "name", source))
                log(f"{label}: unpacking")
                layer = self._ingest_layer(txn, raw, label)
            finally:
                if close:
                    raw.close()
            comment = message or (f"Imported from {label}" if isinstance(source, str)
                                  else "Imported")
            image_id = self._store_config_image(txn, [layer], config or {}, comment, log)
            if ref:
                self._set_tag(ref, image_id)
        return image_id

    def _store_config_image(self, txn, layers, section, comment, log):
        """Write a fresh config for stored layers [(key, info)], and its record."""
        plat = host_platform()
        created = _now()
        config = {"architecture": plat["architecture"], "os": "linux", "created": created,
                  "config": section,
                  "rootfs": {"type": "layers",
                             "diff_ids": [info["diff_id"] for _, info in layers]},
                  "history": [{"created": created, "comment": comment}]}
        if plat["variant"]:
            config["variant"] = plat["variant"]
        data = fastjson.dumps(config, sort_keys=True).encode()
        cand = _Candidate([], data, _sha256(data), [])
        cand.config = config
        return self._write_record(cand, layers, log, txn)

    # -- built-in images
    @_oserrors_as("building the built-in image")
    def _build_builtin(self, name, log):
        """Build a built-in image from its recipe in images/ and tag it."""
        ref = f"{name}:latest"
        with self._lock():
            image_id = self._tags_locked().get(ref)
            if image_id and self._record(image_id):
                return self.resolve(ref)      # another process built it meanwhile
            log(f"{ref}: not in the store; building the built-in image")
            recipe = _load_recipe(name)
            self._recover()
            txn = _Txn()
            try:
                work = self._mkdtemp("build-")
                rootfs = os.path.join(work, "rootfs")
                os.mkdir(rootfs, 0o755)
                try:
                    recipe.build(rootfs)
                except (SystemExit, OSError, subprocess_error()) as e:
                    raise ContainError(f"building the built-in image {name}: "
                                       f"{getattr(e, 'strerror', None) or e}") from None
                tarball = os.path.join(work, "rootfs.tar")
                _tar_directory(rootfs, tarball)
                with open(tarball, "rb", buffering=0) as raw:
                    layer = self._ingest_layer(txn, raw, f"built-in image {name}")
                section = dict(getattr(recipe, "IMAGE_CONFIG", None) or {"Cmd": ["sh"]})
                section.setdefault("Env", [DEFAULT_PATH_ENV])
                image_id = self._store_config_image(
                    txn, [layer], section, f"contain built-in image (images/{name}.py)", log)
                self._set_tag(ref, image_id)
            except BaseException:
                txn.rollback()
                raise
            finally:
                self._empty_tmp()
        return self.resolve(ref)

    # -- tags and removal
    @_oserrors_as("tag")
    def tag(self, src, dst):
        """Point the tag dst at the image src names."""
        ref = _refs.normalize(dst)
        if "@" in ref:
            raise UsageError(f"cannot tag with the digest reference '{dst}'")
        with self._lock():
            self._tags_locked()            # a damaged tags.json is set aside first
        image = self.resolve(src)          # (may build a built-in image: not under the lock)
        with self._lock():
            if self._record(image.id) is None:
                raise NotFound(f"no such image: {src}")
            self._set_tag(ref, image.id)
        return ref

    @_oserrors_as("rmi")
    def remove(self, ref, force=False, in_use=lambda image_id: False):
        """Docker's rmi: untag ref; when it was the image's last tag (or ref
        is an ID) delete the image and the layers no other image uses.

        An image a container uses (in_use(image_id) is true) is refused
        unless force; forced, it is untagged but kept until no container
        needs it.  Returns the lines to print ('Untagged: x', 'Deleted: id').
        """
        with self._lock():
            tags = self._tags_locked()
            image = self._find_for_removal(ref, tags)
            by_id = not any(_refs_equal(ref, t) for t in image.refs)
            if by_id:
                untag = list(image.refs)
                if len(untag) > 1 and not force:
                    raise Conflict(f"unable to delete {image.short_id} (must be forced): "
                                   f"the image is referenced in several repositories "
                                   f"({', '.join(untag)})")
            else:
                untag = [_refs.normalize(ref)]
            last = len(untag) == len(image.refs)
            used = last and in_use(image.id)
            if used and not force:
                what = f"repository reference '{ref}'" if not by_id else f"image {image.short_id}"
                raise Conflict(f"unable to remove {what} (must be forced): a container "
                               f"is using image {image.short_id}")
            lines = []
            for t in untag:
                tags.pop(t, None)
                lines.append(f"Untagged: {t}")
            if last and not used:
                # the record and the files go first: on a full disk, that
                # makes room for the new tags.json (a tag left without its
                # record, should this be cut short, counts for nothing)
                _remove(self._record_path(image.id))
                lines.append(f"Deleted: {image.id}")
                self._gc_locked()
            self._write_tags(tags)
        return lines

    def _find_for_removal(self, ref, tags):
        """The image rmi removes; one whose record is damaged too (then only
        its id and tags are known, which is all that removal needs)."""
        try:
            image = self._find(ref)
        except DamagedFile as e:
            if os.path.dirname(e.path) != self.records:
                raise
            image = _Damaged("sha256:" + os.path.basename(e.path)[:-5], tags)
        if image is None:
            raise NotFound(f"no such image: {ref}")
        return image

    @_oserrors_as("image prune")
    def prune(self, in_use=lambda image_id: False):
        """Docker's `image prune`: delete untagged images no container uses,
        then collect their layers.  Returns (deleted image IDs, bytes freed)."""
        with self._lock():
            tags = self._tags_locked()
            tagged = set(tags.values())
            deleted = []
            for record in self._records([]):
                if record["id"] not in tagged and not in_use(record["id"]):
                    _remove(os.path.join(self.records, _hex(record["id"], "image") + ".json"))
                    deleted.append(record["id"])
            self._empty_tmp()
            return deleted, self._gc_locked()

    @_oserrors_as("image gc")
    def gc(self):
        """Remove layers and blobs no image references, and tmp leftovers.
        Returns the number of bytes freed (blobs and layer file data)."""
        with self._lock():
            self._empty_tmp()
            return self._gc_locked()

    def _gc_locked(self):
        """Remove what no image record references.  While a record is
        damaged, what it references is unknown: nothing is removed then."""
        damaged = []
        records = self._records(damaged)
        if damaged:
            return 0
        keep_layers = {layer["key"] for r in records for layer in r["layers"]}
        keep_blobs = {_hex(r["id"], "image") for r in records}
        freed, blobs_known = 0, True
        for key in os.listdir(self.layers_dir):
            path = os.path.join(self.layers_dir, key)
            try:
                info = self._read_layer_json(key) or {}
            except DamagedFile:
                info = None
            if key in keep_layers:
                if info:
                    keep_blobs.add(info["digest"].split(":")[-1])
                else:
                    blobs_known = False   # its blob is unknown: keep every blob
                continue
            freed += (info or {}).get("size", 0)
            _remove(path)
        if not blobs_known:
            return freed
        for name in os.listdir(self.blobs):
            if name not in keep_blobs:
                path = os.path.join(self.blobs, name)
                try:
                    freed += os.stat(path).st_size
                except FileNotFoundError:
                    pass
                _remove(path)
        return freed

    # -- save
    @_oserrors_as("save")
    def save(self, refs, out_path):
        """Write the images refs name to out_path ('-': stdout) as a tar that
        is both a docker-archive (manifest.json) and an OCI layout."""
        import tarfile
        images = {}       # image ID -> (Image, tags asked for): one entry per image
        for ref in refs:
            image = self.resolve(ref)
            name, tag = self._parse(ref)
            normalized = _refs.format_reference(name, tag) if name else None
            tagged = images.setdefault(image.id, (image, []))[1]
            if normalized in image.refs and normalized not in tagged:
                tagged.append(normalized)
        images = list(images.values())
        tmp = None
        if out_path == "-":
            import sys
            out = sys.stdout.buffer
        else:
            tmp = f"{out_path}.tmp-{os.getpid()}"
            out = open(tmp, "wb")
        try:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                self._write_archive(tar, images)
            if tmp:
                out.close()
                os.replace(tmp, out_path)
        except BaseException:
            if tmp:
                out.close()
                _remove(tmp)
            raise

    def _write_archive(self, tar, images):
        written = set()
        manifest_json, index = [], []

        def add_bytes(name, data):
            if name in written:
                return
            written.add(name)
            _tar_add(tar, name, len(data), _BytesReader(data))

        for image, tagged in images:
            layer_descs = []
            for diff_id in image.layers:
                info = self._layer_info(diff_id)[1]
                name = "blobs/sha256/" + _hex(diff_id, "layer")
                if name not in written:
                    written.add(name)
                    self._add_layer(tar, name, info)
                layer_descs.append({"mediaType": OCI_LAYER, "digest": diff_id,
                                    "size": info["diff_size"]})
            with open(self.blob_path(image.id), "rb") as f:
                config_bytes = f.read()
            add_bytes("blobs/sha256/" + _hex(image.id, "image"), config_bytes)
            manifest = fastjson.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": image.id,
                           "size": len(config_bytes)},
                "layers": layer_descs}).encode()
            mdigest = _sha256(manifest)
            add_bytes("blobs/sha256/" + _hex(mdigest, "manifest"), manifest)
            desc = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
            for ref in tagged:
                name, tag = _refs.parse_reference(ref)
                index.append(dict(desc, annotations={
                    CONTAINERD_NAME: f"{_refs.full_name(name)}:{tag}", REF_NAME: tag}))
            if not tagged:
                index.append(desc)
            manifest_json.append({
                "Config": "blobs/sha256/" + _hex(image.id, "image"),
                "RepoTags": tagged or None,
                "Layers": ["blobs/sha256/" + _hex(d, "layer") for d in image.layers]})
        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("index.json", fastjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                "manifests": index}).encode())
        add_bytes("manifest.json", fastjson.dumps(manifest_json).encode())

    def _add_layer(self, tar, name, info):
        """Add a layer as an uncompressed tar (its digest is its diff_id)."""
        from . import unpack
        with open(self.blob_path(info["digest"]), "rb", buffering=0) as raw:
            stream = unpack.TarStream(raw, f"layer {info['diff_id']}")
            _tar_add(tar, name, info["diff_size"], stream)


def _check_digests(label, stream, digest, size, diff_id):
    """(blob digest, diff_id) of a layer read through stream, checked
    against what the archive says (each may be None: not known)."""
    got_digest = "sha256:" + stream.blob_hash.hexdigest()
    got_diff = "sha256:" + stream.diff_hash.hexdigest()
    if digest and got_digest != digest:
        raise ContainError(f"{label}: content does not match its digest {digest} "
                           f"(got {got_digest}): the blob is corrupted")
    if isinstance(size, int) and size != stream.blob_size:
        raise ContainError(f"{label}: {stream.blob_size} bytes, not the {size} "
                           "its descriptor says")
    if diff_id and got_diff != diff_id:
        raise ContainError(f"{label}: uncompressed content does not match the "
                           f"config's diff_id {diff_id} (got {got_diff}): the layer "
                           "is corrupted")
    return got_digest, got_diff


class _Damaged:
    """An image whose record is damaged, as far as rmi needs to know it."""

    def __init__(self, image_id, tags):
        self.id, self.short_id = image_id, short_digest(image_id)
        self.refs = sorted(t for t, i in tags.items() if i == image_id)


class _BytesReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        end = len(self.data) if n is None or n < 0 else self.pos + n
        out = self.data[self.pos:end]
        self.pos += len(out)
        return out


def _tar_add(tar, name, size, fileobj):
    import tarfile
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    tar.addfile(info, fileobj)


def _refs_equal(ref, tag):
    try:
        return _refs.normalize(ref) == tag
    except UsageError:
        return False


# ------------------------------------------------------------ built-in images
BUILTIN_IMAGES = ("busybox",)


def _recipes_dir():
    import contain
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(contain.__file__))),
                        "images")


def _load_recipe(name):
    """The recipe module images/<name>.py (it has build(dest))."""
    import importlib.util
    path = os.path.join(_recipes_dir(), name + ".py")
    if not os.path.isfile(path):
        raise NotFound(f"no such image: {name} (and no recipe {path} to build it)")
    spec = importlib.util.spec_from_file_location(f"contain_recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def subprocess_error():
    import subprocess
    return subprocess.SubprocessError


def _tar_directory(src, out_path):
    """Write a tar of the directory src (numeric owners, sorted names)."""
    import tarfile
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                path = os.path.join(dirpath, name)
                info = tar.gettarinfo(path, os.path.relpath(path, src))
                info.uname = info.gname = ""
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


# ------------------------------------------------------------ overlay option
def _escape_overlay(path):
    """overlayfs splits its options on ',' and lowerdir on ':'; '\\' escapes."""
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def overlay_mount_data(layer_dirs, upper=None, work=None):
    """(data, cwd) for mount("overlay", target, "overlay", 0, data).

    layer_dirs is bottom first; lowerdir lists them topmost first.  The
    whole string must fit in one page: when absolute paths are too long the
    lower dirs are given relative to their common parent, cwd, and the
    caller must chdir(cwd) before mount(2) (in its own mount namespace);
    cwd is None when absolute paths fit.  Raises ContainError when even the
    short form does not fit.
    """
    if not layer_dirs:
        raise ContainError("an overlay root needs at least one image layer")
    lowers = list(reversed(layer_dirs))
    tail = ""
    if upper is not None:
        tail = f",upperdir={_escape_overlay(upper)},workdir={_escape_overlay(work)}"
    limit = os.sysconf("SC_PAGE_SIZE") - 1

    def data(dirs):
        return "lowerdir=" + ":".join(_escape_overlay(d) for d in dirs) + tail

    text = data(lowers)
    if len(text.encode()) <= limit:
        return text, None
    cwd = os.path.commonpath([os.path.abspath(d) for d in lowers])
    text = data([os.path.relpath(d, cwd) for d in lowers])
    if len(text.encode()) <= limit:
        return text, cwd
    raise ContainError(f"the image has {len(lowers)} layers, too many for one overlay "
                       f"mount (its options need {len(text.encode())} bytes, the limit "
                       f"is {limit})")


# ------------------------------------------------------------ image config
def apply_image_config(config, user_argv=None, entrypoint=None, env=(), workdir=None,
                       user=None, stop_signal=None, labels=None, host_env=None):
    """What to run, by Docker's rules, from an image's config section and
    the user's `run` arguments.  Pure: no I/O.

    Two ways to call it:
      apply_image_config(image.config, cfg)  -- cfg: the container
          configuration dict (argv, entrypoint, env, cwd, user, stop_signal,
          labels); returns the keys to update in it: argv, env, cwd, user,
          stop_signal (a number), labels, exposed_ports.
      apply_image_config(image.config, argv, entrypoint, env, workdir, user,
          stop_signal, labels)  -- returns argv, env, workdir, user,
          stop_signal (as given or the image's text), labels,
          exposed_ports, volumes.

    entrypoint: None (not given), '' (clear it), a string (--entrypoint is
    one word, as in Docker) or a list.  Given, it replaces the image's
    Entrypoint *and* drops the image's Cmd (docker run reference);
    user_argv (the arguments after the image name) replace Cmd.  env: 'K=V'
    strings (-e; a bare 'K' copies K from host_env, default os.environ)
    overriding the image's Env by key.  Raises UsageError when there is no
    command at all or -w is not absolute.
    """
    if isinstance(user_argv, dict):
        return _apply_to_cfg(config, user_argv, host_env)
    config = config or {}
    if entrypoint is not None:
        if isinstance(entrypoint, str):
            ep = [entrypoint] if entrypoint else []
        else:
            ep = [a for a in entrypoint]
            if ep == [""]:
                ep = []
        cmd = list(user_argv or [])
    else:
        ep = list(config.get("Entrypoint") or [])
        cmd = list(user_argv) if user_argv else list(config.get("Cmd") or [])
    argv = ep + cmd
    if not argv:
        raise UsageError("no command specified: the image has no Entrypoint or Cmd; "
                         "give a command after the image name")
    if workdir:
        if not workdir.startswith("/"):
            raise UsageError(f"the working directory '{workdir}' is invalid, it needs "
                             "to be an absolute path")
    else:
        workdir = config.get("WorkingDir") or "/"
        if not workdir.startswith("/"):
            workdir = "/" + workdir
    return {
        "argv": argv,
        "env": merge_env(config.get("Env") or [], env or [], host_env),
        "workdir": workdir,
        "user": user if user else (config.get("User") or ""),
        "stop_signal": stop_signal or config.get("StopSignal") or "SIGTERM",
        "exposed_ports": sorted(config.get("ExposedPorts") or {}),
        "labels": dict(config.get("Labels") or {}, **(labels or {})),
        "volumes": sorted(config.get("Volumes") or {}),
    }


def _apply_to_cfg(config, cfg, host_env):
    """apply_image_config for the runtime's configuration dict."""
    merged = apply_image_config(
        config, cfg.get("argv"), cfg.get("entrypoint"), cfg.get("env") or [],
        cfg.get("cwd"), cfg.get("user"), None, cfg.get("labels"), host_env)
    stop_signal = cfg.get("stop_signal")
    if stop_signal is None and (config or {}).get("StopSignal"):
        from .flags import parse_signal
        stop_signal = parse_signal(config["StopSignal"])
    out = {"argv": merged["argv"], "env": merged["env"], "cwd": merged["workdir"],
           "user": merged["user"] or None, "stop_signal": stop_signal,
           "labels": merged["labels"]}
    if merged["exposed_ports"]:
        out["exposed_ports"] = merged["exposed_ports"]
    return out


def merge_env(image_env, user_env, host_env=None):
    """The image's Env with the user's -e entries on top (same key: user
    wins, in the image's position); PATH defaults as in Docker."""
    host_env = os.environ if host_env is None else host_env
    merged = {}
    for item in image_env:
        key, _, value = item.partition("=")
        merged[key] = value
    for item in user_env:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable '{item}'")
        if eq:
            merged[key] = value
        elif key in host_env:
            merged[key] = host_env[key]
    if "PATH" not in merged:
        merged = dict([("PATH", DEFAULT_PATH_ENV[5:])], **merged)
    return [f"{k}={v}" for k, v in merged.items()]


# ------------------------------------------------------------ import --change
CHANGE_WORDS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER",
                "VOLUME", "WORKDIR")


def parse_changes(changes, section=None):
    """A config section from Dockerfile instructions (`import --change`):
    CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR."""
    import shlex
    section = dict(section or {})
    for change in changes or ():
        word, _, rest = change.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word not in CHANGE_WORDS:
            raise UsageError(f"invalid --change '{change}': {word or 'nothing'} is not one "
                             f"of {', '.join(CHANGE_WORDS)}")
        if word in ("CMD", "ENTRYPOINT"):
            section["Cmd" if word == "CMD" else "Entrypoint"] = _exec_form(rest, change)
        elif word == "ENV":
            env = dict(item.partition("=")[::2] for item in section.get("Env", []))
            if "=" in rest.split(" ", 1)[0]:
                pairs = [item.partition("=")[::2] for item in shlex.split(rest)]
            else:
                key, _, value = rest.partition(" ")
                pairs = [(key, value.strip())]
            for key, value in pairs:
                if not key:
                    raise UsageError(f"invalid --change '{change}': ENV needs a name")
                env[key] = value
            section["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif word == "EXPOSE":
            ports = section.setdefault("ExposedPorts", {})
            for port in rest.split():
                ports[port if "/" in port else port + "/tcp"] = {}
        elif word == "LABEL":
            labels = section.setdefault("Labels", {})
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                labels[key] = value
        elif word == "VOLUME":
            volumes = section.setdefault("Volumes", {})
            for path in (_exec_form(rest, change) if rest.startswith("[") else rest.split()):
                volumes[path] = {}
        else:
            section[{"STOPSIGNAL": "StopSignal", "USER": "User",
                     "WORKDIR": "WorkingDir"}[word]] = rest
    return section


def _exec_form(rest, change):
    """'["a", "b"]' (exec form) or 'a b' (shell form: /bin/sh -c)."""
    if rest.startswith("["):
        try:
            value = fastjson.loads(rest)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"invalid --change '{change}': not a JSON array of strings")
        return value
    return ["/bin/sh", "-c", rest] if rest else []


# ------------------------------------------------------------ presentation
def human_size(size):
    """Docker's units.HumanSizeWithPrecision(size, 3): '4.26MB', '512B'."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    value, i = float(size), 0
    while value >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    return f"{value:.3g}{units[i]}"


def created_epoch(text):
    """Seconds since the epoch from an RFC 3339 time ('...Z', '+02:00',
    fractions of any length), or None."""
    import calendar
    import re
    import time
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text or "")
    if not m:
        return None
    seconds = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    if m.group(2):
        seconds += float(m.group(2))
    zone = m.group(3)
    if zone and zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds


def image_rows(images, no_trunc=False, now=None, match=None):
    """Rows of `contain images`: one per tag (an untagged image: '<none>'),
    keys Repository, Tag, Digest, ID, CreatedSince, CreatedAt, Size (Docker's
    --format names).  match: 'name' or 'name:tag' to show only those."""
    import time
    from .views import human_duration
    now = time.time() if now is None else now
    want = None
    if match:
        name, _, tag = match.rpartition(":") if ":" in match.rsplit("/", 1)[-1] \
            else (match, "", "")
        want = (_refs.familiar(name), tag or None)
    rows = []
    for image in images:
        pairs = [_refs.parse_reference(r) for r in image.refs] or [("<none>", "<none>")]
        for name, tag in pairs:
            if want and (name != want[0] or (want[1] and tag != want[1])):
                continue
            when = created_epoch(image.created)
            digests = [d.partition("@")[2] for d in image.repo_digests
                       if d.partition("@")[0] == name]
            rows.append({
                "Repository": name, "Tag": tag, "Digest": digests[0] if digests else "<none>",
                "ID": image.id if no_trunc else image.short_id,
                "CreatedSince": human_duration(now - when) + " ago" if when else "N/A",
                "CreatedAt": image.created, "Size": human_size(image.size),
            })
    return rows


def image_for_run(root, ref, policy="missing", log=None):
    """The stored Image for run/create, pulled first as --pull says:
    missing (when not stored), always, never."""
    if policy not in ("missing", "always", "never"):
        raise UsageError(f"invalid --pull value '{policy}': use missing, always or never")
    store = ImageStore(root)
    if policy == "always":
        from .registry import pull
        pull(root, ref, out=sys.stderr, log=log)
        return store.resolve(ref, log=log)
    try:
        return store.resolve(ref, log=log)
    except NotFound:
        if policy == "never":
            raise
        try:
            name = _refs.normalize(ref)
        except UsageError:
            raise NotFound(f"no such image: {ref}") from None
        sys.stderr.write(f"Unable to find image '{name}' locally\n")
        from .registry import pull      # (the registry client only when needed)
        pull(root, ref, out=sys.stderr, log=log)
        return store.resolve(ref, log=log)
