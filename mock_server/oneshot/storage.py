"""The local object store that stands in for the user's S3 bucket (`fileName`, `s3Acl`,
`s3Redirect`, `skipUpload`; reference 6.2, DOCS/screenshot-storage).

`parse_storage(query)` checks the four options (400 naming the option: a `fileName` holding `/`,
`\\`, `..` or NUL would leave the store). `ObjectStore` keeps each capture as a file under its
root, `<API key>/<fileName or a generated name>.<ext>`; the root is `--storage-dir`, or a
temporary folder made when the server starts and removed when it stops. Nothing is uploaded
anywhere. `GET /__storage/<key>` serves an object as S3 would: a `public-read` (or
`public-read-write`) object's bytes with its content type, any other ACL 403 with S3's
`AccessDenied` XML, an unknown key 404 `NoSuchKey`. `deliver` turns a rendered one-shot into
its answer: stored (unless `skipUpload`), then the bytes, or with `s3Redirect=true` a 302 to
the object. Must not import `mock_server.app`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from mock_server.errors import BadRequestError, CaptureError
from mock_server.oneshot.cache import Rendered, cache_key
from mock_server.oneshot.options import Query
from mock_server.state import SOURCE

STORAGE_PREFIX = "/__storage/"
# S3's canned ACLs; objects are private unless one of PUBLIC_ACLS is asked for.
CANNED_ACLS = (
    "private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
    "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write",
)  # fmt: skip
PUBLIC_ACLS = frozenset({"public-read", "public-read-write"})
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "application/pdf": "pdf",
}
# The endpoints whose captures are stored (content and metadata answer JSON, never stored).
STORED_ENDPOINTS = frozenset({"image", "pdf", "animated"})
MAX_FILE_NAME_BYTES = 200  # leaves room for the extension under a file system's 255
_SAFE_FOLDER = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class StorageOptions:
    file_name: str | None = None
    acl: str = "private"
    redirect: bool = False
    skip_upload: bool = False


def check_file_name(name: str, option: str = "fileName") -> str:
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        raise BadRequestError(
            f"{option} must be a plain file name, without '/', '\\', '..' or NUL (got {name!r})"
        )
    if len(name.encode("utf-8")) > MAX_FILE_NAME_BYTES:
        raise BadRequestError(f"{option} is longer than {MAX_FILE_NAME_BYTES} bytes")
    return name


def parse_storage(query: Query) -> StorageOptions:
    """The storage options of an image, pdf or animated request; 400 naming a bad one."""
    name = query.text("fileName")
    acl = query.text("s3Acl") or "private"
    if acl not in CANNED_ACLS:
        raise BadRequestError(f"s3Acl must be one of {', '.join(CANNED_ACLS)} (got {acl!r})")
    options = StorageOptions(
        file_name=None if name is None else check_file_name(name),
        acl=acl,
        redirect=query.flag("s3Redirect"),
        skip_upload=query.flag("skipUpload"),
    )
    if options.redirect and options.skip_upload:
        raise BadRequestError("s3Redirect=true needs the upload that skipUpload=true turns off")
    return options


def object_key(
    api_key: str, endpoint: str, raw_query: str, options: StorageOptions, ext: str
) -> str:
    """`<folder of the API key>/<fileName or a name derived from the request>.<ext>`: the same
    request names the same object; two API keys never share one."""
    folder = api_key if _SAFE_FOLDER.match(api_key) else "key-" + _digest(api_key)[:16]
    name = options.file_name
    if name is None:
        name = _digest(repr(cache_key(api_key, endpoint, raw_query)))[:32]
    if not name.lower().endswith("." + ext):
        name = f"{name}.{ext}"
    return f"{folder}/{name}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredObject:
    path: Path
    content_type: str
    acl: str
    size: int


class ObjectStore:
    """Files under one root, with each object's content type and ACL kept in memory."""

    def __init__(self, root: Path | None = None) -> None:
        self._given = root
        self.root: Path | None = None
        self._temporary = False
        self._objects: dict[str, StoredObject] = {}

    def open(self) -> Path:
        if self.root is None:
            if self._given is None:
                self.root = Path(tempfile.mkdtemp(prefix="capture-replay-storage-"))
                self._temporary = True
            else:
                self._given.mkdir(parents=True, exist_ok=True)
                self.root = self._given.resolve()
        return self.root

    def close(self) -> None:
        if self.root is not None and self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root, self._temporary = None, False
        self._objects.clear()

    def _path(self, key: str) -> Path:
        root = self.open()
        path = (root / key).resolve()
        if not path.is_relative_to(root) or path == root:
            raise BadRequestError(f"{key!r} is not a key inside the object store")
        return path

    async def put(self, key: str, data: bytes, content_type: str, acl: str) -> StoredObject:
        path = self._path(key)
        await asyncio.to_thread(_write_replacing, path, data)
        stored = StoredObject(path, content_type, acl, len(data))
        self._objects[key] = stored
        return stored

    def get(self, key: str) -> StoredObject | None:
        return self._objects.get(key)

    def __len__(self) -> int:
        return len(self._objects)


def _write_replacing(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def object_url(base: str, key: str) -> str:
    """Where `key` is served, below the server's own `base` URL (`http://host:port`)."""
    return base.rstrip("/") + STORAGE_PREFIX + quote(key)


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def store(
    objects: ObjectStore,
    api_key: str,
    endpoint: str,
    raw_query: str,
    options: StorageOptions,
    rendered: Rendered,
) -> str | None:
    """Store a capture as the request asks; its key, or None with `skipUpload`."""
    if options.skip_upload:
        return None
    ext = EXTENSIONS.get(rendered.content_type, "bin")
    key = object_key(api_key, endpoint, raw_query, options, ext)
    try:
        await objects.put(key, rendered.body, rendered.content_type, options.acl)
    except OSError as err:
        raise CaptureError(
            f"Could not store {key} in the local object store ({objects.root}): "
            f"{err.strerror or err}"
        ) from err
    return key


async def deliver(
    request: web.Request,
    objects: ObjectStore,
    options: StorageOptions | None,
    rendered: Rendered,
) -> web.Response:
    """A one-shot's answer: the bytes, after storing them; with `s3Redirect`, a 302 instead."""
    if options is not None:
        info = request.match_info
        raw_query = request.raw_path.partition("?")[2]
        key = await store(objects, info["key"], info["endpoint"], raw_query, options, rendered)
        if options.redirect and key is not None:
            return web.Response(
                status=302, headers={"Location": object_url(base_url(request), key)}
            )
    return web.Response(body=rendered.body, content_type=rendered.content_type)


def s3_error(status: int, code: str, message: str, key: str | None = None) -> web.Response:
    """An error as S3 writes it (`NoSuchKey` names the key, `AccessDenied` does not)."""
    named = "" if key is None else f"<Key>{escape(key)}</Key>"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{named}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId>"
        f"<HostId>{secrets.token_urlsafe(24)}</HostId></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def add_storage_routes(app: web.Application, objects: ObjectStore) -> None:
    """`GET /__storage/{key}`: the object as S3 serves it to an anonymous client."""

    async def get_object(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        request[SOURCE] = "storage"
        found = objects.get(key)
        if found is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.", key)
        if found.acl not in PUBLIC_ACLS:
            return s3_error(403, "AccessDenied", "Access Denied")
        data = await asyncio.to_thread(found.path.read_bytes)
        return web.Response(body=data, content_type=found.content_type)

    app.router.add_get(STORAGE_PREFIX + "{key:.+}", get_object)
