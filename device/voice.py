"""Speech out: the bundled offline voice (hibari-tts: numpy and onnxruntime, the voice in
its wheel, nothing downloaded), and a speaker to play it on."""

import threading
from typing import Any

import numpy as np

from glasses.device.audio import SAMPLE_RATE, resample
from glasses.device.errors import DeviceFailure
from glasses.device.microphone import quiet_stderr

VOICE_RATE = 24000  # Hz, what the voice produces
NO_VOICE = "speech out needs hibari-tts (pip install '.[voice]')"


class Voice:
    """Text -> speech, (n,) float32 at 16 kHz."""

    def __init__(self, speed: float = 1.0):
        try:
            from hibari import Hibari
        except ImportError as e:
            raise DeviceFailure(NO_VOICE) from e
        self._tts = Hibari(threads=1)
        self.speed = speed
        self._lock = threading.Lock()  # one synthesis at a time

    def speak(self, text: str) -> np.ndarray:
        text = " ".join(text.split())
        if not text:
            return np.zeros(0, np.float32)
        with self._lock:
            audio = np.asarray(self._tts(text, speed=self.speed, seed=0), np.float32)
        return resample(audio, VOICE_RATE, SAMPLE_RATE)


class Speaker:
    """The default sound output, through PyAudio; DeviceFailure when there is none."""

    def __init__(self) -> None:
        try:
            import pyaudio
        except ImportError as e:
            raise DeviceFailure("pyaudio not installed (pip install '.[mic]')") from e
        with quiet_stderr():  # PortAudio/ALSA chatter
            self._pa: Any = pyaudio.PyAudio()
        try:
            self._pa.get_default_output_device_info()
            with quiet_stderr():
                self._stream = self._pa.open(format=pyaudio.paFloat32, channels=1,
                                             rate=SAMPLE_RATE, output=True)
        except OSError as e:
            self._pa.terminate()
            raise DeviceFailure(f"no speaker: {e}") from e

    def play(self, samples: np.ndarray) -> None:
        """Blocks until the samples are handed to the device."""
        self._stream.write(np.asarray(samples, np.float32).tobytes())

    def close(self) -> None:
        self._stream.close()
        self._pa.terminate()


def speech_out_report() -> tuple[bool, str]:
    """Whether answers can be spoken here, and a one-line note. Never raises."""
    import importlib.util

    if importlib.util.find_spec("hibari") is None:
        return False, NO_VOICE
    try:
        Speaker().close()
        where = "to the default speaker"
    except DeviceFailure as e:
        where = f"into recordings only ({e})"
    except Exception as e:  # a sound library failing in its own way
        where = f"into recordings only (no speaker: {type(e).__name__})"
    return True, f"the bundled voice (hibari-tts) speaks {where}"
