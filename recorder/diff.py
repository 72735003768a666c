"""Cassette-vs-cassette comparison: which exchanges were added, removed or changed.

Exchanges are paired as replay pairs them: by session (the k-th create of one side is the k-th
create of the other), method, path (a signed URL's hash blanked), query and canonical JSON body;
the n-th identical request of a session pairs with the n-th. Paired answers are compared on
status, then JSON field by field with time fields, session ids and `connectUrl` tokens ignored;
images (`bodyBase64` screenshots, one-shot `image` answers) are compared as pictures: the share
of pixels that differ, beside a 64-bit average-hash distance. Credits are reported separately.

`mock_server.verify` reuses this with a live side built from real answers. Plain functions over
`Exchange` records; must not import `mock_server`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from PIL import Image, ImageChops, UnidentifiedImageError

from recorder.bodies import decoded_or_raw, header_value, json_or_none
from recorder.cassette import Cassette
from recorder.comparison import diff_values, request_key
from recorder.contract import canonical_path, is_create, main_argument
from recorder.records import RecordedResponse

# Fields whose value depends on when or how long, or on a per-session secret: never drift.
IGNORED_FIELDS = frozenset(
    {
        "expiresAt",
        "expiresInSeconds",
        "startedAt",
        "createdAt",
        "closedAt",
        "durationSeconds",
        "billedCredits",
        "connectUrl",
    }
)
DEFAULT_IMAGE_THRESHOLD = 0.001  # share of pixels that may differ before a screenshot drifts
PIXEL_TOLERANCE = 16  # per-pixel luminance difference treated as rendering noise


class DiffKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One exchange as the diff sees it: the request, and the answer read only when compared."""

    label: str  # e.g. "flow.cassette#3" or "live#3"
    method: str
    path: str
    query: str
    request_body: bytes
    session_id: str | None
    action_type: str | None
    status: int
    load_response: Callable[[], RecordedResponse]

    @property
    def is_create(self) -> bool:
        return is_create(self.method, self.path)


@dataclass(frozen=True, slots=True)
class ImageDiff:
    where: str  # "body", "body.screenshot"
    changed_share: float  # 0..1 of pixels beyond PIXEL_TOLERANCE (1 when sizes differ)
    hash_distance: int  # average-hash Hamming distance, 0..64
    size_a: tuple[int, int]
    size_b: tuple[int, int]
    drift: bool


@dataclass(frozen=True, slots=True)
class ExchangeDiff:
    kind: DiffKind
    request: str  # "POST /v1/sessions/<session 1>/actions (goto http://…)"
    a: str | None  # label on side A
    b: str | None
    differences: tuple[str, ...] = ()
    images: tuple[ImageDiff, ...] = ()


@dataclass(frozen=True, slots=True)
class DiffReport:
    a: str
    b: str
    added: tuple[ExchangeDiff, ...]
    removed: tuple[ExchangeDiff, ...]
    changed: tuple[ExchangeDiff, ...]
    unchanged: int
    credits_a: int
    credits_b: int
    image_threshold: float = DEFAULT_IMAGE_THRESHOLD

    @property
    def drift(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        def item(d: ExchangeDiff) -> dict[str, Any]:
            out = asdict(d)
            out["kind"] = d.kind.value
            return out

        return {
            "a": self.a,
            "b": self.b,
            "drift": self.drift,
            "unchanged": self.unchanged,
            "added": [item(d) for d in self.added],
            "removed": [item(d) for d in self.removed],
            "changed": [item(d) for d in self.changed],
            "credits": {"a": self.credits_a, "b": self.credits_b},
            "imageThreshold": self.image_threshold,
        }

    def to_text(self) -> str:
        lines = [
            f"{self.a} -> {self.b}: {len(self.changed)} changed, {len(self.added)} added, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged; "
            f"credits {self.credits_a} -> {self.credits_b}"
        ]
        for d in (*self.removed, *self.added, *self.changed):
            where = " / ".join(x for x in (d.a, d.b) if x)
            lines.append(f"  {d.kind.value:8} {d.request}  [{where}]")
            lines.extend(f"      {text}" for text in d.differences)
            for img in d.images:
                lines.append(
                    f"      image {img.where}: {img.changed_share:.2%} of pixels differ, "
                    f"hash distance {img.hash_distance}/64, {_dims(img.size_a)} vs "
                    f"{_dims(img.size_b)}" + ("" if img.drift else " (within threshold)")
                )
        lines.append("drift" if self.drift else "no drift")
        return "\n".join(lines)


def _dims(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# -- reading a cassette as exchanges -------------------------------------------------------------


def exchanges_of(cassette: Cassette) -> list[Exchange]:
    """The exchanges of `cassette` in recorded order; answers are read on demand."""
    name = cassette.path.name
    out = []
    for entry in sorted(cassette.entries, key=lambda e: e.seq):
        out.append(
            Exchange(
                label=f"{name}#{entry.seq}",
                method=entry.method,
                path=entry.path,
                query=entry.query,
                request_body=cassette.request_body(entry),
                session_id=entry.session_id,
                action_type=entry.action_type,
                status=entry.status,
                load_response=lambda e=entry: cassette.load(e).response,  # type: ignore[misc]
            )
        )
    return out


# -- canonical forms -----------------------------------------------------------------------------


def session_aliases(exchanges: Iterable[Exchange]) -> dict[str, str]:
    """Session id -> `<session k>`, k counting successful creates in order (how sides pair)."""
    aliases: dict[str, str] = {}
    for ex in exchanges:
        if ex.is_create and ex.status < 300 and ex.session_id and ex.session_id not in aliases:
            aliases[ex.session_id] = f"<session {len(aliases) + 1}>"
    return aliases


def request_identity(ex: Exchange, aliases: dict[str, str]) -> tuple[Any, ...]:
    """What pairs two exchanges: replay's request key, session ids through `aliases`."""
    key = request_key(ex.method, ex.path, ex.query, ex.request_body, session_ids=aliases)
    return key.hashable[:4]


def describe(ex: Exchange, aliases: dict[str, str]) -> str:
    text = f"{ex.method} {canonical_path(ex.path, aliases)}"
    argument = main_argument(ex.path, ex.query, ex.request_body)
    detail = " ".join(x for x in (ex.action_type, argument) if x)
    return f"{text} ({detail})" if detail else text


# -- answers -------------------------------------------------------------------------------------


def _id_pattern(aliases: dict[str, str]) -> re.Pattern[str] | None:
    if not aliases:
        return None
    return re.compile("|".join(re.escape(s) for s in sorted(aliases, key=len, reverse=True)))


def _normalize_answer(
    value: Any,
    aliases: dict[str, str],
    pattern: re.Pattern[str] | None,
    where: str,
    images: dict[str, bytes],
) -> Any:
    """Drop ignored fields, alias session ids, and pull images out into `images` by location."""
    if isinstance(value, dict):
        data = value.get("bodyBase64")
        kind = value.get("contentType")
        out = {}
        for key, item in value.items():
            if key in IGNORED_FIELDS:
                continue
            if key == "bodyBase64" and isinstance(data, str):
                if isinstance(kind, str) and kind.startswith("image/"):
                    try:
                        images[where] = base64.b64decode(data)
                    except (binascii.Error, ValueError):
                        out[key] = data
                        continue
                # images are compared as pictures; PDFs embed their creation time: not compared
                out[key] = "<binary>"
                continue
            out[key] = _normalize_answer(item, aliases, pattern, f"{where}.{key}", images)
        return out
    if isinstance(value, list):
        return [
            _normalize_answer(v, aliases, pattern, f"{where}[{i}]", images)
            for i, v in enumerate(value)
        ]
    if isinstance(value, str) and pattern is not None:
        return pattern.sub(lambda m: aliases[m.group(0)], value)
    return value


def _average_hash(image: Image.Image) -> int:
    small = image.convert("L").resize((8, 8), Image.Resampling.BILINEAR)
    pixels = list(small.tobytes())
    mean = sum(pixels) / len(pixels)
    return sum(1 << i for i, p in enumerate(pixels) if p > mean)


def compare_images(a: bytes, b: bytes, where: str, threshold: float) -> ImageDiff | None:
    """Two encoded images compared as pictures; None when either is not a readable image."""
    try:
        with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
            ra, rb = ia.convert("RGB"), ib.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    distance = bin(_average_hash(ra) ^ _average_hash(rb)).count("1")
    if ra.size != rb.size:
        share = 1.0
    else:
        diff = ImageChops.difference(ra, rb).convert("L")
        mask = diff.point(lambda v: 255 if v > PIXEL_TOLERANCE else 0)
        share = mask.histogram()[255] / (ra.size[0] * ra.size[1])
    return ImageDiff(
        where=where,
        changed_share=round(share, 6),
        hash_distance=distance,
        size_a=ra.size,
        size_b=rb.size,
        drift=share > threshold,
    )


def _is_image(response: RecordedResponse) -> bool:
    kind = header_value(response.headers, "content-type") or ""
    return kind.split(";")[0].strip().lower().startswith("image/")


def compare_answers(
    a: RecordedResponse,
    b: RecordedResponse,
    aliases_a: dict[str, str],
    aliases_b: dict[str, str],
    threshold: float = DEFAULT_IMAGE_THRESHOLD,
) -> tuple[list[str], list[ImageDiff]]:
    """Differences between two answers to the same request, and their image comparisons."""
    found: list[str] = []
    if a.status != b.status:
        found.append(f"status: {a.status} -> {b.status}")
    body_a, body_b = decoded_or_raw(a.headers, a.body), decoded_or_raw(b.headers, b.body)
    if _is_image(a) and _is_image(b):
        image = compare_images(body_a, body_b, "body", threshold)
        if image is not None:
            return found, [image]
    json_a, json_b = json_or_none(body_a), json_or_none(body_b)
    if json_a is None or json_b is None:
        if body_a != body_b:
            found.append(f"body: {len(body_a)} bytes -> {len(body_b)} bytes, content differs")
        return found, []
    images_a: dict[str, bytes] = {}
    images_b: dict[str, bytes] = {}
    norm_a = _normalize_answer(json_a, aliases_a, _id_pattern(aliases_a), "body", images_a)
    norm_b = _normalize_answer(json_b, aliases_b, _id_pattern(aliases_b), "body", images_b)
    found += diff_values(norm_a, norm_b, "body")
    images = []
    for where in sorted(set(images_a) & set(images_b)):
        image = compare_images(images_a[where], images_b[where], where, threshold)
        if image is None and images_a[where] != images_b[where]:
            found.append(f"{where}: undecodable image differs")
        elif image is not None:
            images.append(image)
    for where in sorted(set(images_a) ^ set(images_b)):
        found.append(f"{where}: image {'missing' if where in images_a else 'added'}")
    return found, images


def _credits(exchanges: Iterable[Exchange], answers: dict[str, RecordedResponse]) -> int:
    """Sum over sessions of the last `billedCredits` a GET/DELETE answer gave."""
    billed: dict[str, int] = {}
    for ex in exchanges:
        response = answers.get(ex.label)
        if response is None or ex.method not in ("GET", "DELETE") or ex.session_id is None:
            continue
        body = json_or_none(decoded_or_raw(response.headers, response.body))
        session = body.get("session") if isinstance(body, dict) else None
        if isinstance(session, dict) and isinstance(session.get("billedCredits"), int):
            billed[ex.session_id] = session["billedCredits"]
    return sum(billed.values())


def diff_exchanges(
    a: Sequence[Exchange],
    b: Sequence[Exchange],
    *,
    name_a: str = "A",
    name_b: str = "B",
    threshold: float = DEFAULT_IMAGE_THRESHOLD,
) -> DiffReport:
    """Pair `a` with `b` as replay would and report what was added, removed or changed."""
    aliases_a, aliases_b = session_aliases(a), session_aliases(b)
    queues: dict[tuple[Any, ...], list[Exchange]] = {}
    for ex in b:
        queues.setdefault(request_identity(ex, aliases_b), []).append(ex)
    pairs: list[tuple[Exchange, Exchange]] = []
    removed: list[ExchangeDiff] = []
    for ex in a:
        queue = queues.get(request_identity(ex, aliases_a))
        if queue:
            pairs.append((ex, queue.pop(0)))
        else:
            removed.append(ExchangeDiff(DiffKind.REMOVED, describe(ex, aliases_a), ex.label, None))
    paired_b = {id(y) for _, y in pairs}
    added = [
        ExchangeDiff(DiffKind.ADDED, describe(ex, aliases_b), None, ex.label)
        for ex in b
        if id(ex) not in paired_b
    ]
    answers_a: dict[str, RecordedResponse] = {}
    answers_b: dict[str, RecordedResponse] = {}
    changed: list[ExchangeDiff] = []
    unchanged = 0
    for x, y in pairs:
        ra, rb = x.load_response(), y.load_response()
        answers_a[x.label], answers_b[y.label] = ra, rb
        found, images = compare_answers(ra, rb, aliases_a, aliases_b, threshold)
        if found or any(i.drift for i in images):
            changed.append(
                ExchangeDiff(
                    DiffKind.CHANGED,
                    describe(x, aliases_a),
                    x.label,
                    y.label,
                    tuple(found),
                    tuple(images),
                )
            )
        else:
            unchanged += 1
    for ex in a:
        if ex.label not in answers_a and ex.method in ("GET", "DELETE"):
            answers_a[ex.label] = ex.load_response()
    for ex in b:
        if ex.label not in answers_b and ex.method in ("GET", "DELETE"):
            answers_b[ex.label] = ex.load_response()
    return DiffReport(
        a=name_a,
        b=name_b,
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        unchanged=unchanged,
        credits_a=_credits(a, answers_a),
        credits_b=_credits(b, answers_b),
        image_threshold=threshold,
    )


def diff_cassettes(
    a: Cassette, b: Cassette, threshold: float = DEFAULT_IMAGE_THRESHOLD
) -> DiffReport:
    return diff_exchanges(
        exchanges_of(a),
        exchanges_of(b),
        name_a=str(a.path),
        name_b=str(b.path),
        threshold=threshold,
    )
