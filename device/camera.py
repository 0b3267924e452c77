"""Camera sources: a webcam, a video file or a folder of stills, read as BGR frames.

This layer only reads: it yields each frame with its position in the media and never
sleeps or paces. The pipeline layer stamps capture times and paces playback. A camera that
goes away (a webcam that stops delivering, a folder of stills moved away) raises
`DeviceGone`; `reopen()` opens it again, and `frames()` goes on where it stopped.
"""

import glob
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from glasses.device.clock import NS_PER_S, now_ns
from glasses.device.errors import BadInput, DeviceFailure, DeviceGone
from glasses.device.images import (  # read_image and image_dims are also used from here
    MAX_PIXELS,
    STILL_EXTENSIONS,
    fit,
    image_dims,
    quiet_opencv,
    read_image,
)

STILLS_FPS = 1.0  # default rate of a folder of stills, frames per second
DEFAULT_VIDEO_FPS = 30.0  # used when a file or webcam reports no rate
WEBCAM_READ_TIMEOUT_S = 2.0  # a webcam read that takes longer is a device failure
WEBCAM_OPEN_TIMEOUT_S = 5.0
FRAME_COUNT_SLACK = 2  # CAP_PROP_FRAME_COUNT is approximate by this many frames
PROBE_TIMEOUT_S = 1.0  # per device in list_cameras()

_DEV_VIDEO = re.compile(r"^/dev/video(\d+)$")

# FFmpeg's own log (e.g. "moov atom not found") repeats our one-line errors. OpenCV reads
# this at its first FFmpeg capture; a value the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """One frame as the device delivered it.

    `image` (H, W, 3) uint8 BGR; `index` counted from 0; `media_ns` the position in the
    media in nanoseconds: index / fps for stills and files, time since open for a webcam.
    """

    image: np.ndarray
    index: int
    media_ns: int


def _call_with_timeout(fn: Callable[[], Any], timeout_s: float) -> tuple[bool, Any]:
    """Run `fn` in a daemon thread; return (finished, result) and re-raise its exception.

    A call that does not finish in `timeout_s` is abandoned (the thread is a daemon, so
    it cannot keep the process alive) and (False, None) is returned.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=work, name="camera-read", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return False, None
    if "error" in box:
        raise box["error"]
    return True, box.get("result")


def _rate(cap: cv2.VideoCapture) -> float | None:
    """The frame rate a capture reports, or None when it reports none that is plausible."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and np.isfinite(fps) and 0 < fps <= 1000 else None


def _webcam_index(source: str | int) -> int | None:
    """The webcam index `source` names (an int, digits or /dev/videoN), else None."""
    if isinstance(source, int):
        return source
    text = str(source).strip()
    if text.isdigit():
        return int(text)
    match = _DEV_VIDEO.match(text)
    return int(match.group(1)) if match else None


class Camera:
    """A source of BGR frames: a webcam (`live`), a video file or a folder of stills.

    Use `Camera.open(...)`, then iterate `frames()`; `close()` when done (or `with`).
    Attributes: `live`, `fps` (frames per second), `name`, `frame_count` (None when
    unknown or live) and `size` (width, height) of the delivered frames.
    """

    def __init__(self) -> None:  # use Camera.open
        self.live = False
        self.fps = STILLS_FPS
        self.name = ""
        self.frame_count: int | None = None
        self.size: tuple[int, int] = (0, 0)
        self._cap: cv2.VideoCapture | None = None
        self._webcam: int | None = None
        self._path: Path | None = None
        self._stills: list[Path] = []
        self._first: np.ndarray | None = None
        self._open_ns = 0
        self._first_ns = 0  # media time of the frame decoded at open
        self._index = 0  # the next frame to deliver
        self._asked: tuple[float | None, tuple[int, int] | None] = (None, None)  # fps, size
        self._hung = False
        self._closed = False

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        source: str | int,
        fps: float | None = None,
        size: tuple[int, int] | None = None,
    ) -> "Camera":
        """Open a webcam index (int or digits, or /dev/videoN), a video file or a folder.

        `fps` overrides the media's rate (stills default to 1.0; for a webcam it is
        requested). `size` (width, height) resizes every frame. Raises BadInput for a
        missing or undecodable file or an empty folder, DeviceFailure for a webcam that
        does not open or deliver.
        """
        if size is not None:
            size = (int(size[0]), int(size[1]))
            if size[0] <= 0 or size[1] <= 0:
                raise BadInput(f"size {size[0]}x{size[1]}: width and height must be positive")
        if fps is not None and not fps > 0:
            raise BadInput(f"fps {fps}: must be positive")
        cam = cls()
        index = _webcam_index(source)
        try:
            if index is not None:
                cam._open_webcam(index, fps, size)
            else:
                path = Path(source).expanduser()
                if not path.exists():
                    raise BadInput(f"{path}: no such file or folder")
                if path.is_dir():
                    cam._open_stills(path, fps, size)
                else:
                    cam._open_video(path, fps, size)
        except BaseException:
            cam.close()
            raise
        return cam

    def _open_stills(self, folder: Path, fps: float | None, size) -> None:
        self._path = folder
        self.name = str(folder)
        self._stills = _list_stills(folder)
        if not self._stills:
            exts = "/".join(e[1:] for e in STILL_EXTENSIONS)
            raise BadInput(f"{folder}: folder holds no images ({exts})")
        self.fps = float(fps) if fps is not None else STILLS_FPS
        self.frame_count = len(self._stills)
        first = read_image(self._stills[0])
        # Every still is delivered at one size: the requested one, else the first still's.
        self.size = size or (first.shape[1], first.shape[0])
        self._first = fit(first, self.size)

    def _open_video(self, path: Path, fps: float | None, size) -> None:
        self._path = path
        self.name = str(path)
        head = np.fromfile(str(path), dtype=np.uint8, count=64 * 1024)
        if (dims := image_dims(head)) is not None and dims[0] * dims[1] > MAX_PIXELS:
            raise BadInput(f"{path}: a still image of {dims[0]} x {dims[1]} pixels; images "
                           f"of at most {MAX_PIXELS // 1_000_000} megapixels are accepted")
        with quiet_opencv():
            cap = cv2.VideoCapture(str(path))
        self._cap = cap
        if not cap.isOpened():
            raise BadInput(f"{path}: cannot decode video (not a video OpenCV can open)")
        try:
            ok, image = cap.read()
        except cv2.error:
            ok, image = False, None
        if not ok or image is None:
            raise BadInput(f"{path}: cannot decode video (first frame unreadable)")
        self.fps = float(fps or _rate(cap) or DEFAULT_VIDEO_FPS)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count and np.isfinite(count) and count > 0 else None
        self._first = fit(image, size)
        self.size = (self._first.shape[1], self._first.shape[0])

    def _open_webcam(self, index: int, fps: float | None, size) -> None:
        self.live = True
        self._webcam = index
        self.name = f"camera {index}"
        self._asked = (fps, size)
        self._cap = self._start_webcam()
        self._open_ns = now_ns()
        image = self._read_webcam()
        self._first_ns = now_ns() - self._open_ns
        self.fps = float(_rate(self._cap) or fps or DEFAULT_VIDEO_FPS)
        self._first = fit(image, size)
        self.size = (self._first.shape[1], self._first.shape[0])

    def _start_webcam(self) -> cv2.VideoCapture:
        """An opened capture of webcam `_webcam`, or DeviceFailure."""
        index, (fps, size) = self._webcam, self._asked

        def start() -> cv2.VideoCapture:
            with quiet_opencv():
                cap = cv2.VideoCapture(index)
                if cap.isOpened():
                    if size is not None:
                        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
                    if fps is not None:
                        cap.set(cv2.CAP_PROP_FPS, fps)
            return cap

        try:
            done, cap = _call_with_timeout(start, WEBCAM_OPEN_TIMEOUT_S)
        except cv2.error as exc:
            raise DeviceFailure(f"camera {index}: cannot open ({_one_line(exc)})") from exc
        if not done:
            self._hung = True
            raise DeviceFailure(f"camera {index}: did not open within {WEBCAM_OPEN_TIMEOUT_S:g} s")
        if not cap.isOpened():
            cap.release()
            raise DeviceFailure(f"camera {index}: cannot open (no such camera or it is busy)")
        return cap

    def reopen(self) -> None:
        """Open the camera again after `DeviceGone`, to go on where it stopped.

        Raises DeviceFailure (DeviceGone) while it is still away (a folder with no images
        yet counts as away), BadInput if a video came back as something else."""
        if self._closed:
            raise DeviceFailure(f"{self.name}: camera is closed")
        if self.live:
            cap, self._cap = self._cap, None
            if cap is not None and not self._hung:  # a hung read keeps its capture
                with suppress(cv2.error):
                    cap.release()
            self._hung = False
            self._cap = self._start_webcam()
        elif self._stills:
            if not self._path.is_dir():
                raise DeviceGone(f"{self._path}: the folder of stills is still gone")
            try:
                stills = _list_stills(self._path)
            except OSError as exc:
                raise DeviceGone(f"{self._path}: cannot list the stills ({exc})") from None
            if not stills:
                raise DeviceGone(f"{self._path}: the folder came back with no images yet")
            self._stills, self.frame_count = stills, len(stills)
        else:
            if not self._path.is_file():
                raise DeviceGone(f"{self._path}: the video is still gone")
            with quiet_opencv():
                cap = cv2.VideoCapture(str(self._path))
            if not cap.isOpened():
                raise BadInput(f"{self._path}: came back as something that is not a video")
            cap.set(cv2.CAP_PROP_POS_FRAMES, self._index)
            old, self._cap = self._cap, cap
            if old is not None:
                with suppress(cv2.error):
                    old.release()

    # -- reading ----------------------------------------------------------------------

    def _read_webcam(self) -> np.ndarray:
        """One webcam frame, or DeviceFailure when it fails or takes too long."""
        cap = self._cap
        if cap is None or self._hung:
            raise DeviceGone(f"camera {self._webcam} stopped delivering frames")
        try:
            done, result = _call_with_timeout(cap.read, WEBCAM_READ_TIMEOUT_S)
        except cv2.error as exc:
            raise DeviceGone(
                f"camera {self._webcam} stopped delivering frames ({_one_line(exc)})"
            ) from exc
        if not done:
            self._hung = True
            raise DeviceGone(
                f"camera {self._webcam} stopped delivering frames "
                f"(no frame within {WEBCAM_READ_TIMEOUT_S:g} s)"
            )
        ok, image = result
        if not ok or image is None:
            raise DeviceGone(f"camera {self._webcam} stopped delivering frames")
        return image

    def _read_still(self, path: Path) -> np.ndarray:
        """One still; DeviceGone when it (or its folder) has gone away."""
        try:
            return read_image(path)
        except BadInput:
            if path.exists():
                raise
            where = "folder of stills" if not path.parent.is_dir() else "still"
            raise DeviceGone(f"{path}: the {where} is gone") from None

    def _read_video(self, i: int) -> np.ndarray | None:
        """Frame `i` of a video file; None at its end, DeviceFailure if it ends early."""
        try:
            ok, image = self._cap.read() if self._cap is not None else (False, None)
        except cv2.error:
            ok, image = False, None
        if ok and image is not None:
            return image
        n = self.frame_count
        if n is not None and i < n - FRAME_COUNT_SLACK:
            if not self._path.is_file():
                raise DeviceGone(f"{self._path}: the video is gone (at frame {i} of {n})")
            raise DeviceFailure(f"{self._path}: video ended early at frame {i} of {n}")
        return None

    def _media_ns(self, index: int) -> int:
        return round(index * NS_PER_S / self.fps)

    def frames(self) -> Iterator[CameraFrame]:
        """Yield frames in order until the media ends (never for a webcam); a second
        call goes on where the first stopped.

        Raises BadInput for an undecodable still, DeviceFailure for a video that ends
        well before its reported frame count, DeviceGone for a webcam that stops
        delivering or stills (or a video) that have gone away.
        """
        if self._closed:
            raise DeviceFailure(f"{self.name}: camera is closed")
        if self._stills:
            while not self._closed and (i := self._index) < len(self._stills):
                if i == 0 and self._first is not None:  # decoded at open
                    image, self._first = self._first, None
                else:
                    image = self._read_still(self._stills[i])
                self._index = i + 1
                yield CameraFrame(fit(image, self.size), i, self._media_ns(i))
            return
        if self._first is not None:  # decoded at open
            first, self._first = self._first, None
            self._index = 1
            yield CameraFrame(first, 0, self._first_ns)
        while not self._closed:
            i = self._index
            image = self._read_webcam() if self.live else self._read_video(i)
            if image is None:
                return
            media_ns = now_ns() - self._open_ns if self.live else self._media_ns(i)
            self._index = i + 1
            yield CameraFrame(fit(image, self.size), i, media_ns)

    # -- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the device or file; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        cap, self._cap = self._cap, None
        self._first = None
        # A capture whose read hung is abandoned: releasing it under the stuck reader
        # could crash the process.
        if cap is not None and not self._hung:
            with suppress(cv2.error):
                cap.release()

    def __enter__(self) -> "Camera":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        w, h = self.size
        kind = "live" if self.live else f"{self.frame_count} frames"
        return f"Camera({self.name!r}, {w}x{h}, {self.fps:g} fps, {kind})"


def _list_stills(folder: Path) -> list[Path]:
    """The stills in `folder`, by name."""
    return sorted((p for p in folder.iterdir()
                   if p.suffix.lower() in STILL_EXTENSIONS and p.is_file()), key=lambda p: p.name)


def _one_line(exc: BaseException) -> str:
    """The last non-empty line of an exception's message (OpenCV's span several)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def list_cameras() -> tuple[list[str], str]:
    """Webcams OpenCV can open, as names for `Camera.open`, and a one-line note.

    Linux only lists /dev/video* (each probed with a short timeout); elsewhere OpenCV
    cannot enumerate cameras, so the list is empty and the note says to try index 0.
    Never raises.
    """
    try:
        if not sys.platform.startswith("linux"):
            return [], "cameras cannot be listed on this system; try camera index 0"
        nodes = sorted(
            (p for p in glob.glob("/dev/video*") if _DEV_VIDEO.match(p)),
            key=lambda p: int(_DEV_VIDEO.match(p).group(1)),
        )
        if not nodes:
            return [], "no /dev/video* devices"
        found = [node for node in nodes if _probe(node)]
        if not found:
            return [], f"{len(nodes)} /dev/video* devices, none opens as a camera"
        return found, f"{len(found)} of {len(nodes)} /dev/video* devices open as cameras"
    except Exception as exc:  # listing is advisory: never fail
        return [], f"cannot list cameras ({_one_line(exc)})"


def _probe(node: str) -> bool:
    """Whether OpenCV opens `node` (/dev/videoN) as a capture device, within a timeout."""
    if not os.access(node, os.R_OK):
        return False
    index = int(_DEV_VIDEO.match(node).group(1))

    def probe() -> bool:
        with quiet_opencv():
            cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
            try:
                return bool(cap.isOpened())
            finally:
                cap.release()

    try:
        done, ok = _call_with_timeout(probe, PROBE_TIMEOUT_S)
    except Exception:
        return False
    return bool(done and ok)
