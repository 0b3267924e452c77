"""Hostile and unlucky inputs (#19): each is bounded before any work, answered in one line
with exit 3 or 4, and leaves nothing behind. Every case here failed before its fix."""

import json
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from test_cli import ROOT, assert_one_line_error, glasses

from glasses.device.audio import SAMPLE_RATE, load_audio, wav_info, write_wav
from glasses.device.errors import BadInput
from glasses.models.vlm import check_question
from glasses.simulator.scenario import MAX_S, load_scenario, prepare


def wav_with_rate(path, rate: int, seconds_of_bytes: float = 0.2) -> None:
    """A valid 16-bit mono WAV whose header declares `rate` Hz."""
    n = int(16000 * seconds_of_bytes)
    data = np.zeros(n, "<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    path.write_bytes(header + fmt + b"data" + struct.pack("<I", len(data)) + data)


PEAK = ("\nprint(next(int(line.split()[1]) for line in open('/proc/self/status') "
        "if line.startswith('VmHWM')) // 1024)\n")  # this process's peak RSS, MB


def peak_mb(code: str, *args: str) -> int:
    """Run `code` in a fresh Python; its peak resident memory in MB (VmHWM, which, unlike
    ru_maxrss, does not carry the forking parent's size across exec)."""
    out = subprocess.run([sys.executable, "-c", code + PEAK, *args], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


@pytest.mark.parametrize("rate", [1, 427_000_000])
def test_a_wav_header_with_an_absurd_rate_is_refused_before_any_work(tmp_path, rate):
    wav_with_rate(tmp_path / "lie.wav", rate)
    with pytest.raises(BadInput, match=f"{rate} Hz"):
        load_audio(tmp_path / "lie.wav")
    code = ("import sys\nfrom glasses.device.audio import load_audio\n"
            "from glasses.device.errors import BadInput\n"
            "try:\n    load_audio(sys.argv[1])\nexcept BadInput:\n    pass\n")
    assert peak_mb(code, str(tmp_path / "lie.wav")) < 150


def test_a_long_wav_is_read_only_as_far_as_needed(tmp_path):
    long = np.zeros(20 * 60 * 48000, np.float32)  # 20 minutes at 48 kHz
    write_wav(tmp_path / "long.wav", long, 48000)
    del long
    assert wav_info(tmp_path / "long.wav").seconds == pytest.approx(1200)
    first = load_audio(tmp_path / "long.wav", first_s=30)
    assert len(first) == 30 * SAMPLE_RATE
    with pytest.raises(BadInput, match="20 min of audio; at most 10 min"):
        load_audio(tmp_path / "long.wav", max_s=600)


def test_transcribe_and_eval_asr_refuse_clips_longer_than_a_question(tmp_path):
    write_wav(tmp_path / "talk.wav", np.zeros(65 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    (tmp_path / "truth.tsv").write_text("talk.wav\thello\n")
    result = glasses("eval", "asr", str(tmp_path), "--engines", "onnx")
    assert_one_line_error(result, 3, "talk.wav", "65.0 s")


def test_a_question_that_is_not_text_is_bad_input():
    with pytest.raises(BadInput, match="not valid text"):
        check_question("what is \udcff this")


def write_scenario(path, body: str) -> None:
    """A scenario with one view; `body`: top-level keys, or tables after the view."""
    view = '[[view]]\nat = 0\nimage = "x.png"\n'
    top = not body.startswith("[[")
    path.write_text('name = "x"\n' + (body + view if top else view + body))


@pytest.mark.parametrize("body, words", [
    ("[[say]]\nat = 100000\ntext = \"hi\"\n", f"0 to {MAX_S}"),
    ("[[say]]\nat = nan\ntext = \"hi\"\n", "`at`"),
    ("[[say]]\nat = inf\ntext = \"hi\"\n", "`at`"),
    ("duration_s = inf\n", "duration_s"),
    ("say = [1, 2]\n", "list of tables"),
    ("[[say]]\nat = 1\ntext = \"hi\"\nexpect = [1]\n", "expect"),
])
def test_a_scenario_with_absurd_times_or_shapes_is_refused(tmp_path, body, words):
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    write_scenario(tmp_path / "s.toml", body)
    with pytest.raises(BadInput, match=words.replace("`", ".")):
        load_scenario(tmp_path / "s.toml")
    result = glasses("simulate", "--headless", "--scenario", str(tmp_path / "s.toml"))
    assert_one_line_error(result, 3, "s.toml")


def test_a_long_scenario_is_rendered_only_up_to_the_duration(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    write_scenario(tmp_path / "s.toml", "[[say]]\nat = 3600\ntext = \"hi\"\n")
    scenario = load_scenario(tmp_path / "s.toml")
    t0 = time.monotonic()
    view, audio = prepare(scenario, tmp_path, (64, 48), lambda text: np.ones(10, np.float32),
                          until_s=5)
    assert time.monotonic() - t0 < 30
    assert wav_info(audio).seconds == pytest.approx(5)
    cap = cv2.VideoCapture(view)
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5 * 15
    cap.release()


def test_an_hour_long_scenario_keeps_memory_bounded(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    says = "".join(f"[[say]]\nat = {t}\ntext = \"hi\"\n" for t in range(0, 3600, 600))
    write_scenario(tmp_path / "s.toml", says)
    code = ("import sys, numpy as np\n"
            "from pathlib import Path\n"
            "from glasses.simulator.scenario import load_scenario, _write_track\n"
            "s = load_scenario(sys.argv[1])\n"
            "_write_track(Path(sys.argv[2]), [(x.at, np.ones(16000, np.float32)) "
            "for x in s.says], 3600 * 16000)\n")
    peak = peak_mb(code, str(tmp_path / "s.toml"), str(tmp_path / "a.wav"))
    assert peak < 200, "an hour of track would be 230 MB of float32 held at once"
    assert wav_info(tmp_path / "a.wav").seconds == pytest.approx(3600)


def test_json_output_never_carries_lone_surrogates(capsys):
    from glasses.cli.output import result

    result({"file": "caf\udce9.jpg", "list": ["\udcff"]}, True, "")
    out = capsys.readouterr().out
    assert "\\ud" not in out and json.loads(out)["file"] == "caf\ufffd.jpg"


def huge_png(path, side: int = 20000) -> None:
    """A real PNG of side x side black pixels, ~1 MB (zlib packs the zeros)."""
    import zlib

    row = b"\x00" + b"\x00" * side * 3
    raw = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                     8, 2, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_a_huge_image_is_refused_from_its_header(tmp_path):
    from glasses.device.camera import read_image

    huge_png(tmp_path / "huge.png")
    t0 = time.monotonic()
    with pytest.raises(BadInput, match="20000 x 20000 pixels"):
        read_image(tmp_path / "huge.png")
    assert time.monotonic() - t0 < 1.0
    result = glasses("ask", "--image", str(tmp_path / "huge.png"), "--question", "What is it?")
    assert_one_line_error(result, 3, "20000 x 20000")


def test_a_huge_still_given_as_the_view_is_named_for_what_it_is(tmp_path):
    huge_png(tmp_path / "huge.png")
    result = glasses("simulate", "--headless", "--view", str(tmp_path / "huge.png"))
    assert_one_line_error(result, 3, "a still image of 20000 x 20000 pixels")


@pytest.mark.parametrize("line", ["/etc/hostname\tWhat is it?\tx", "../x.png\tWhat?\tx",
                                  "x.png\tWhat is it?\t |  "])
def test_a_look_set_line_that_points_outside_or_accepts_nothing_is_refused(tmp_path, line):
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "cases.tsv").write_text(f"x.png\tWhat is it?\tblack\n{line}\n")
    result = glasses("eval", "look", str(tmp_path))
    assert_one_line_error(result, 3, "cases.tsv")


@pytest.mark.models
def test_eval_look_records_a_bad_image_as_an_error_and_goes_on(store, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"PK\x03\x04 a zip, not a png")
    cv2.imwrite(str(tmp_path / "c.png"), np.full((64, 64, 3), 255, np.uint8))
    (tmp_path / "cases.tsv").write_text("a.png\tWhat is it?\tcant\nb.png\tWhat is it?\tx\n"
                                        "c.png\tWhat is it?\tcant\n")
    result = glasses("eval", "look", str(tmp_path), "--json", home=store.home, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cases"] == 3 and data["errors"] == 1 and data["passed"] == 2
    (bad,) = [r for r in data["results"] if "error" in r]
    assert bad["file"] == "b.png" and "b.png" in bad["error"]


@pytest.mark.models
def test_a_question_with_bytes_that_are_not_text_is_exit_3(store, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    result = subprocess.run([sys.executable, "-m", "glasses.cli.main", "ask", "--image",
                             str(tmp_path / "x.png"), "--question", b"is it \xff?".decode(
                                 "utf-8", "surrogateescape")], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "not valid text" in result.stderr
