"""Stream-encoding an animated GIF from timed screenshots, with Pillow.

`GifRecorder` takes one compressed screenshot at a time (JPEG/PNG bytes and the millisecond it
was taken), decodes it, scales it to the output size and quantizes it to a 256-colour palette
right away, then LZW-encodes it as soon as the next frame tells how long it lasted. So memory
holds the encoded GIF so far plus one paletted frame, never a list of full-size screenshots.
Identical consecutive frames (a page that does not move) are merged into one longer frame.
Imports neither aiohttp nor Playwright.
"""

from __future__ import annotations

import io

from PIL import GifImagePlugin, Image

# Browsers play GIF delays under 2 centiseconds as 10 cs; never write one that short.
MIN_FRAME_CS = 2


def decode_frame(data: bytes, size: tuple[int, int]) -> Image.Image:
    """A screenshot scaled to `size` and quantized to a palette image (mode "P")."""
    with Image.open(io.BytesIO(data)) as shot:
        # For JPEG, draft() decodes at a power-of-two reduction: most of a downscale for free.
        shot.draft("RGB", size)
        rgb = shot.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    return rgb.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


class GifRecorder:
    """Builds a looping GIF frame by frame; `finish(end_ms)` returns its bytes."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.frame_count = 0
        self._out = io.BytesIO()
        self._pending: Image.Image | None = None
        self._pending_raster: bytes = b""
        self._pending_start_cs = 0

    def add(self, data: bytes, at_ms: float) -> None:
        """Add the screenshot taken `at_ms` after the recording started (increasing)."""
        frame = decode_frame(data, self.size)
        raster = frame.tobytes()
        if self._pending is not None and raster == self._pending_raster:
            return  # unchanged: the pending frame simply lasts longer
        start_cs = round(at_ms / 10)
        if self._pending is not None:
            if start_cs - self._pending_start_cs < MIN_FRAME_CS:
                return  # too close to the previous frame to be shown; drop it
            self._write(start_cs)
        self._pending, self._pending_raster, self._pending_start_cs = frame, raster, start_cs

    @property
    def has_pending(self) -> bool:
        """A frame is waiting for its end time."""
        return self._pending is not None

    def finish(self, end_ms: float) -> bytes:
        """Close the last frame at `end_ms` and return the whole GIF."""
        if self._pending is None:
            raise ValueError("no frame was recorded")
        # The first frame is shown from 0 whenever it was actually taken.
        self._write(max(round(end_ms / 10), self._pending_start_cs + MIN_FRAME_CS))
        self._out.write(b";")  # GIF trailer
        return self._out.getvalue()

    def _write(self, end_cs: int) -> None:
        frame = self._pending
        assert frame is not None
        start_cs = 0 if self.frame_count == 0 else self._pending_start_cs
        params = {"duration": (end_cs - start_cs) * 10, "include_color_table": True}
        if self.frame_count == 0:
            header, _ = GifImagePlugin.getheader(frame.copy(), info={"loop": 0, "duration": 1})
            for chunk in header:
                self._out.write(chunk)
        for chunk in GifImagePlugin.getdata(frame, **params):
            self._out.write(chunk)
        self.frame_count += 1
        self._pending = None
        self._pending_raster = b""
