"""Still images: decoded to BGR with their size bounded before any decoding.

A still's header is read first: one too large is refused (or, for a JPEG, decoded at a
fraction of its size), so a small file cannot claim gigabytes.
"""

import struct
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from glasses.device.errors import BadInput

STILL_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_IMAGE_SIDE = 4096  # stills with a longer side are shrunk to it when read
MAX_PIXELS = 50_000_000  # larger stills are refused from their header (JPEGs decoded smaller)


@contextmanager
def quiet_opencv():
    """Silence OpenCV's own log (probing absent devices is noisy) for the block."""
    logging = cv2.utils.logging
    old = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(old)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Any 8-bit image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as (H, W, 3) BGR."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1.0, float(image.max())))
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def fit(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize to `size` (width, height) if given and different; BGR in, BGR out."""
    image = to_bgr(image)
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def read_image(path: str | Path) -> np.ndarray:
    """Decode one still to (H, W, 3) BGR or raise BadInput naming it.

    An image with a side over `MAX_IMAGE_SIDE` is shrunk to it (area averaging): no model
    looks at more, and every later copy stays small."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: cannot read image ({getattr(exc, 'strerror', None) or exc})"
                       ) from exc
    if not data.size:
        raise BadInput(f"{path}: empty file, not an image")
    flags = cv2.IMREAD_COLOR
    if (dims := image_dims(data)) is not None and dims[0] * dims[1] > MAX_PIXELS:
        w, h = dims
        if data[:2].tobytes() != b"\xff\xd8" or w * h > MAX_PIXELS * 64:
            raise BadInput(f"{path}: {w} x {h} pixels; images of at most "
                           f"{MAX_PIXELS // 1_000_000} megapixels are accepted")
        # a JPEG decodes at 1/2, 1/4 or 1/8 of its size for next to nothing
        factor = next(f for f in (2, 4, 8) if w * h / f**2 <= MAX_PIXELS)
        flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
    with quiet_opencv():
        image = cv2.imdecode(data, flags)
    if image is None or not image.size:
        raise BadInput(f"{path}: not a readable image (corrupt or unsupported format)")
    image = to_bgr(image)
    side = max(image.shape[:2])
    if side > MAX_IMAGE_SIDE:
        scale = MAX_IMAGE_SIDE / side
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def image_dims(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or BMP header, before any decoding; None for
    other formats (or a header that does not say)."""
    head = data[:64 * 1024].tobytes()
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return struct.unpack("<HH", head[6:10])
    if head[:2] == b"BM" and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    if head[:2] == b"\xff\xd8":  # JPEG: the first start-of-frame marker has the size
        i = 2
        while i + 9 < len(head) and head[i] == 0xFF:
            marker, length = head[i + 1], struct.unpack(">H", head[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", head[i + 5:i + 9])
                return w, h
            i += 2 + length
    return None
