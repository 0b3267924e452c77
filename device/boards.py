"""Board profiles: the hardware a build targets, as named presets.

A profile says how inference runs (threads, execution providers in preference order,
precision), what the camera delivers and which display the wearer sees. Override a
field with `dataclasses.replace(BoardProfile.rpi5(), threads=2)`.
"""

import os
from dataclasses import asdict, dataclass, field, fields

from glasses.device.display import DisplayModel
from glasses.device.errors import BadInput


@dataclass(frozen=True)
class BoardProfile:
    name: str
    description: str

    # inference
    threads: int = 2  # onnxruntime intra-op threads
    cores: int = 2  # physical cores the board has (CPU affinity when emulating threads)
    providers: tuple[str, ...] = ("CPUExecutionProvider",)  # preference order; CPU is the fallback
    precision: str = "fp32"  # fp32 | int8 | fp16: which model variants a bundle carries
    memory_arena: bool = False  # onnxruntime CPU arena: faster first runs, much larger peak RSS
    # resident MB to stay under between requests: models few requests need are loaded when
    # one does and let go after it while over (`device/memory.py`); None: all kept loaded
    memory_budget_mb: float | None = None

    # camera
    camera_size: tuple[int, int] = (640, 480)  # width, height in pixels
    camera_fps: float = 15.0

    # display
    display: DisplayModel = field(default_factory=DisplayModel.monocular_640x400)

    # tracing
    op_profile_dir: str | None = None  # onnxruntime profiles every operator into this folder

    @classmethod
    def laptop(cls) -> "BoardProfile":
        return cls(
            name="laptop",
            description="x86-64 laptop or desktop, the simulator's default",
            threads=2,
            cores=2,
            memory_budget_mb=600,
        )

    @classmethod
    def rpi5(cls) -> "BoardProfile":
        return cls(
            name="rpi5",
            description="Raspberry Pi 5: 4x Cortex-A76 at 2.4 GHz, 8 GB, no accelerator",
            threads=4,
            cores=4,
            precision="int8",
            camera_size=(640, 480),
            camera_fps=15.0,
            memory_budget_mb=400,
        )

    @classmethod
    def jetson_orin_nano(cls) -> "BoardProfile":
        return cls(
            name="jetson-orin-nano",
            description="NVIDIA Jetson Orin Nano: 6x Cortex-A78AE, Ampere GPU (1024 cores)",
            threads=6,
            cores=6,
            providers=(
                "TensorrtExecutionProvider",
                "CUDAExecutionProvider",
                "CPUExecutionProvider",
            ),
            precision="fp16",
            camera_size=(1280, 720),
            camera_fps=30.0,
        )

    @classmethod
    def xr_phone(cls) -> "BoardProfile":
        return cls(
            name="xr-phone",
            description="phone-class XR chip (Snapdragon XR2-like): 6 big/little cores, NPU",
            threads=4,
            cores=6,
            providers=("QNNExecutionProvider", "XnnpackExecutionProvider", "CPUExecutionProvider"),
            precision="int8",
            camera_size=(640, 480),
            camera_fps=30.0,
            display=DisplayModel.binocular_1920x1080(),
            memory_budget_mb=400,
        )

    @classmethod
    def names(cls) -> list[str]:
        return list(_PRESETS)

    def to_dict(self) -> dict:
        """As JSON-ready data (a deploy bundle's board.json); `from_dict` reads it back."""
        data = asdict(self)
        data["op_profile_dir"] = None  # a tracing choice of one run, not the board's
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "BoardProfile":
        """Raises BadInput naming what is wrong with `data`."""
        try:
            known = {f.name for f in fields(cls)}
            if unknown := set(data) - known:
                raise ValueError(f"unknown fields {', '.join(sorted(unknown))}")
            values = {**data, "providers": tuple(data["providers"]),
                      "camera_size": tuple(data["camera_size"]),
                      "display": DisplayModel(**data["display"])}
            return cls(**values)
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"not a board profile: {e}") from None

    @classmethod
    def by_name(cls, name: str) -> "BoardProfile":
        try:
            return _PRESETS[name]()
        except KeyError:
            known = ", ".join(_PRESETS)
            raise BadInput(f"unknown board {name!r}; known boards: {known}") from None


_PRESETS = {
    "laptop": BoardProfile.laptop,
    "rpi5": BoardProfile.rpi5,
    "jetson-orin-nano": BoardProfile.jetson_orin_nano,
    "xr-phone": BoardProfile.xr_phone,
}


def pin_to_board(board: BoardProfile) -> str:
    """Limit this process to as many of this machine's CPUs as the board has cores (its
    threads are already the board's); a one-line note that says so plainly."""
    cpus = sorted(os.sched_getaffinity(0))
    used = cpus[: max(1, min(board.cores, len(cpus)))]
    os.sched_setaffinity(0, used)
    return (f"board {board.name}: {board.threads} onnxruntime threads on {len(used)} of this "
            f"machine's CPUs (the board has {board.cores} cores), precision {board.precision}; "
            "this limits threads and CPU affinity, it does not emulate the board's speed")
