"""Camera sources on real media written with OpenCV into tmp_path."""

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from glasses.device.camera import Camera, CameraFrame, list_cameras
from glasses.device.clock import NS_PER_S
from glasses.device.errors import BadInput, DeviceFailure, GlassesError

W, H, N, FPS = 160, 120, 30, 10.0


def _frame(i: int) -> np.ndarray:
    """Frame i: its number drawn in, and a grey block of level 8 * i to check order."""
    image = np.zeros((H, W, 3), np.uint8)
    image[:, :40] = 8 * i
    cv2.putText(image, str(i), (60, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
    return image


def _write_video(path: Path, fourcc: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
    assert writer.isOpened(), f"cannot write {path}"
    for i in range(N):
        writer.write(_frame(i))
    writer.release()
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and cap.read()[0], f"{path} does not reopen"
    cap.release()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return _write_video(tmp_path / "clip.mp4", "mp4v")


@pytest.fixture
def stills(tmp_path: Path) -> Path:
    folder = tmp_path / "stills"
    folder.mkdir()
    # Written out of name order; c is grey, a is 4-channel, b is a grayscale JPEG.
    cv2.imwrite(str(folder / "c.png"), np.full((H, W, 3), 200, np.uint8))
    bgra = np.zeros((H, W, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 255
    cv2.imwrite(str(folder / "a.png"), bgra)
    cv2.imwrite(str(folder / "b.jpg"), np.full((H, W), 100, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _all(cam: Camera) -> list[CameraFrame]:
    return list(cam.frames())


def test_video_yields_all_frames_in_order(video: Path) -> None:
    with Camera.open(video) as cam:
        assert not cam.live and cam.fps == pytest.approx(FPS)
        assert cam.frame_count == N and cam.size == (W, H)
        frames = _all(cam)
    assert [f.index for f in frames] == list(range(N))
    for f in frames:
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
        assert f.media_ns == round(f.index * NS_PER_S / FPS)
        assert abs(float(f.image[10:-10, 5:35].mean()) - 8 * f.index) < 6
    assert all(a.media_ns < b.media_ns for a, b in zip(frames, frames[1:], strict=False))


def test_video_size_and_fps_override(video: Path) -> None:
    with Camera.open(str(video), fps=25.0, size=(80, 60)) as cam:
        assert cam.size == (80, 60)
        frames = _all(cam)
    assert len(frames) == N
    assert all(f.image.shape == (60, 80, 3) for f in frames)
    assert frames[5].media_ns == 5 * NS_PER_S // 25


def test_stills_in_name_order_as_bgr(stills: Path) -> None:
    with Camera.open(stills) as cam:
        assert cam.fps == 1.0 and cam.frame_count == 3 and cam.size == (W, H)
        frames = _all(cam)
    assert len(frames) == 3
    for f in frames:
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
    a, b, c = (f.image.astype(int) for f in frames)
    assert a[..., 0].mean() == 255 and a[..., 1:].max() == 0  # BGRA blue -> BGR
    assert abs(b.mean() - 100) < 3 and np.array_equal(b[..., 0], b[..., 2])  # grey JPEG
    assert c.mean() == 200
    assert [f.media_ns for f in frames] == [0, NS_PER_S, 2 * NS_PER_S]


def test_stills_resized(stills: Path) -> None:
    with Camera.open(stills, fps=2.0, size=(64, 48)) as cam:
        frames = _all(cam)
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    assert frames[1].media_ns == NS_PER_S // 2


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(BadInput, match="nope.mp4"):
        Camera.open(path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(BadInput, match="fake.mp4.*cannot decode video"):
        Camera.open(path)


def test_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    with pytest.raises(BadInput, match="empty"):
        Camera.open(folder)


def test_corrupt_still_named_when_reached(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((H, W, 3), np.uint8))
    (folder / "b.jpg").write_bytes(np.random.default_rng(0).bytes(2000))
    cam = Camera.open(folder)
    stream = cam.frames()
    assert next(stream).index == 0
    with pytest.raises(BadInput, match=r"b\.jpg"):
        next(stream)
    cam.close()
    cam.close()  # idempotent


@pytest.mark.parametrize("name,fourcc", [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")])
def test_truncated_video_never_hangs(tmp_path: Path, name: str, fourcc: str) -> None:
    data = _write_video(tmp_path / name, fourcc).read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    outcome: dict[str, object] = {}

    def play() -> None:
        try:
            with Camera.open(cut) as cam:
                outcome["frames"] = len(_all(cam))
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=play, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "reading a truncated video hung"
    error = outcome.get("error")
    if error is not None:
        assert isinstance(error, GlassesError), repr(error)
        assert isinstance(error, BadInput | DeviceFailure)
        assert "cut-clip" in str(error) and "\n" not in str(error)
    else:
        assert 0 < outcome["frames"] <= N


def test_missing_webcam_fails_fast() -> None:
    start = time.monotonic()
    with pytest.raises(DeviceFailure, match="camera 57"):
        Camera.open(57)
    with pytest.raises(DeviceFailure, match="camera 57"):
        Camera.open("57")
    assert time.monotonic() - start < 10


def test_list_cameras_does_not_raise() -> None:
    names, note = list_cameras()
    assert isinstance(names, list) and all(isinstance(n, str) for n in names)
    assert isinstance(note, str) and note and "\n" not in note


def test_timed_call_gives_up() -> None:
    """The guard around webcam reads: a stuck call is abandoned after its timeout."""
    from glasses.device.camera import _call_with_timeout

    start = time.monotonic()
    assert _call_with_timeout(lambda: time.sleep(5), 0.1) == (False, None)
    assert _call_with_timeout(lambda: 7, 1.0) == (True, 7)
    assert time.monotonic() - start < 2
