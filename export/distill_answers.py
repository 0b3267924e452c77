"""The teacher answering a split's questions for `glasses distill`: in this process, or
spread over Ray workers (`--ray`), with the same answers either way.

Each worker makes its own teacher from a `TeacherSpec` (the model store's home: on a
cluster of several machines every node needs glasses and that store); the images travel
as their JPEG bytes, so a worker needs no access to the work folder. Answers come back in
the cases' order whatever order the chunks finish in. Ray's usage statistics are turned
off before it starts (nothing leaves the machine).

This is build-time code.
"""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glasses.device.boards import BoardProfile
from glasses.device.errors import BadInput
from glasses.models.answers import read_text
from glasses.models.store import ModelStore
from glasses.models.vlm import Teacher, Vlm

Case = tuple[str, str]  # (an image file in the split's folder, its question)
Counted = Callable[[int], None]  # told how many cases are answered so far
Said = tuple[str, str]  # (the teacher's answer, the text it read: `answer`)
Answerer = Callable[[Path, list[Case], Counted], list[Said]]  # (folder, cases) -> answers
CHUNK = 25  # cases a worker answers at a time (and between progress lines)


@dataclass(frozen=True)
class TeacherSpec:
    """How to make the teacher anywhere: the home of the store that holds its models."""

    home: Path
    name = Teacher.name

    def make(self) -> Vlm:
        return Teacher(ModelStore(self.home), BoardProfile.laptop())


def answer(teacher: Vlm, images: list[bytes], questions: list[str]) -> list[Said]:
    """The teacher's answer to each (JPEG image, question), and the text it read for it
    (`read_text`: "" where it read none or read none for the question's intent)."""
    out = []
    for jpeg, question in zip(images, questions, strict=True):
        stream = teacher.stream(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR),
                                question)
        said = "".join(stream).strip()  # the stream's facts are complete once it is read
        out.append((said, read_text(stream.facts.text or ())))
    return out


def _chunks(folder: Path, cases: list[Case]) -> Iterator[tuple[list[bytes], list[str]]]:
    """(JPEG bytes, questions) of `CHUNK` cases at a time, each read when it is taken."""
    for i in range(0, len(cases), CHUNK):
        part = cases[i : i + CHUNK]
        yield [(folder / f).read_bytes() for f, _ in part], [q for _, q in part]


class LocalAnswers:
    """One teacher, in this process (made at the first question)."""

    def __init__(self, spec: TeacherSpec):
        self.spec = spec
        self._teacher: Vlm | None = None

    def __call__(self, folder: Path, cases: list[Case], counted: Counted) -> list[Said]:
        self._teacher = self._teacher or self.spec.make()
        said: list[Said] = []
        for images, questions in _chunks(folder, cases):
            said += answer(self._teacher, images, questions)
            counted(len(said))
        return said

    def close(self) -> None:
        self._teacher = None


class RayAnswers:
    """Teachers on Ray workers, one per CPU Ray offers: `address` "local" starts Ray on
    this machine (stopped by `close`), otherwise it is a running cluster's address."""

    def __init__(self, spec: TeacherSpec, address: str):
        self.spec, self.address = spec, address
        self._pool = None

    def _start(self):
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before ray is imported
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise BadInput("--ray needs Ray: pip install -e '.[ray]'") from None
        env = {"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}}
        if self.address == "local":
            ray.init(include_dashboard=False, log_to_driver=False, runtime_env=env,
                     logging_level="ERROR")
        else:
            try:
                ray.init(address=self.address, log_to_driver=False, runtime_env=env,
                         logging_level="ERROR")
            except ConnectionError as e:
                raise BadInput(f"--ray {self.address}: no Ray cluster there ({e})") from None
        worker = ray.remote(num_cpus=1)(_Worker)
        n = max(1, int(ray.available_resources().get("CPU", 1)))
        return ActorPool([worker.remote(self.spec) for _ in range(n)])

    def __call__(self, folder: Path, cases: list[Case], counted: Counted) -> list[Said]:
        self._pool = self._pool or self._start()
        said: list[Said] = []
        for part in self._pool.map(lambda w, chunk: w.answer.remote(*chunk),
                                   _chunks(folder, cases)):
            said += part
            counted(len(said))
        return said

    def close(self) -> None:
        if self._pool is not None:
            import ray

            ray.shutdown()
            self._pool = None


class _Worker:
    """A Ray actor holding one teacher."""

    def __init__(self, spec: TeacherSpec):
        self.teacher = spec.make()

    def answer(self, images: list[bytes], questions: list[str]) -> list[Said]:
        return answer(self.teacher, images, questions)


def answerer(spec: TeacherSpec, ray: str | None) -> LocalAnswers | RayAnswers:
    return LocalAnswers(spec) if ray is None else RayAnswers(spec, ray)
