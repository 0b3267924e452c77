"""A microWakeWord streaming .tflite model -> ONNX, with its state made explicit.

microWakeWord models are int8 TFLite graphs of a dozen op kinds (CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED, LOGISTIC, CONCATENATION, STRIDED_SLICE, SPLIT_V,
RESHAPE, QUANTIZE) whose streaming buffers are resource variables (VAR_HANDLE,
READ_VARIABLE, ASSIGN_VARIABLE, initialised once by CALL_ONCE). tf2onnx and tflite2onnx
need TensorFlow or do not know the variable ops, so this converter walks the flatbuffer
itself (the `tflite` package reads it) and writes an ONNX graph where:

- `features` (1, stride, 40) float32 is the frontend's output for `stride` 10 ms frames
  (microWakeWord's 40 log filterbank channels), quantised on entry as the TFLite input is;
- every variable becomes an input `state:NAME` and an output `state:NAME:next` of the
  same shape, float32, zero at the start of a stream (checked here);
- `probability` (1, 1) float32 is the model's wake-word probability for those frames.

Tensors stay in TFLite's NHWC layout; each convolution is wrapped in transposes. Weights
and biases are dequantised to float32, and every int8 activation a computing op writes is
fake-quantised (QuantizeLinear then DequantizeLinear with the tensor's own scale and zero
point), so the float graph reproduces the integer one up to the TFLite kernels' fixed-point
rounding (about one quantisation step now and then). `export/wake_build.py` checks it
against the TFLite runtime before anything is stored.

Build-time code (the `tflite` flatbuffer reader, `onnx`); the run time is `models/wake.py`.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPSET = 17
INPUT = "features"
OUTPUT = "probability"
STATE_PREFIX = "state:"
NEXT_SUFFIX = ":next"


@dataclass(frozen=True)
class Converted:
    model: object  # onnx.ModelProto
    states: dict[str, tuple[int, ...]]  # input name -> shape
    stride: int  # feature frames per inference
    n_features: int


class ConversionError(ValueError):
    pass


def convert(tflite_path: Path) -> Converted:
    """Read `tflite_path` and return the equivalent ONNX model (not yet checked)."""
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    buf = Path(tflite_path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.Subgraphs(0)

    def opcode(op) -> str:
        code = model.OperatorCodes(op.OpcodeIndex())
        return op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]

    def data(g, t: int) -> np.ndarray | None:
        tensor = g.Tensors(t)
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw is None or raw.size == 0:
            return None
        dtype = {tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32,
                 tflite.TensorType.UINT8: np.uint8, tflite.TensorType.FLOAT32: np.float32}[
            tensor.Type()]
        shape = tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape)

    def quant(g, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        q = g.Tensors(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy().astype(np.int64)

    def dequantised(g, t: int) -> np.ndarray:
        values, q = data(g, t), quant(g, t)
        if values is None:
            raise ConversionError(f"tensor {t} has no constant data")
        if q is None:
            return values.astype(np.float32)
        scale, zero = q
        shape = [1] * values.ndim
        if scale.size > 1:  # per output channel: axis 0 for conv, 3 for depthwise
            axis = g.Tensors(t).Quantization().QuantizedDimension()
            shape[axis] = scale.size
        return ((values.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)
                ).astype(np.float32)

    # the variables' initial values: CALL_ONCE runs a subgraph of VAR_HANDLE + ASSIGN_VARIABLE
    initial: dict[str, np.ndarray] = {}
    for s in range(1, model.SubgraphsLength()):
        init = model.Subgraphs(s)
        handles = {}
        for i in range(init.OperatorsLength()):
            op = init.Operators(i)
            if opcode(op) == "VAR_HANDLE":
                handles[op.Outputs(0)] = _var_name(op, tflite)
            elif opcode(op) == "ASSIGN_VARIABLE":
                initial[handles[op.Inputs(0)]] = dequantised(init, op.Inputs(1))

    nodes, inits = [], []
    names: dict[int, str] = {}  # tensor index -> ONNX value name
    handles: dict[int, str] = {}  # resource tensor -> variable name
    reads: dict[str, str] = {}  # variable -> its input name
    states: dict[str, tuple[int, ...]] = {}
    outputs_next: dict[str, str] = {}  # variable -> value assigned
    counter = iter(range(10**6))

    def fresh(stem: str) -> str:
        return f"{stem}_{next(counter)}"

    def const(values: np.ndarray, stem: str = "c") -> str:
        name = fresh(stem)
        inits.append(numpy_helper.from_array(np.asarray(values), name))
        return name

    def value(t: int) -> str:
        if t in names:
            return names[t]
        values = data(graph, t)
        if values is None:
            raise ConversionError(f"tensor {t} ({graph.Tensors(t).Name()}) is never written")
        names[t] = const(values)
        return names[t]

    def fake_quant(x: str, t: int) -> str:
        q = quant(graph, t)
        kind = graph.Tensors(t).Type()
        if q is None or kind not in (tflite.TensorType.INT8, tflite.TensorType.UINT8):
            return x
        scale, zero = q
        zp = zero.astype(np.int8 if kind == tflite.TensorType.INT8 else np.uint8)
        s, z = const(scale[0], "scale"), const(zp[0], "zero")
        qn, dq = fresh("q"), fresh("dq")
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [qn]))
        nodes.append(helper.make_node("DequantizeLinear", [qn, s, z], [dq]))
        return dq

    def activation(x: str, fused: int) -> str:
        if fused == tflite.ActivationFunctionType.NONE:
            return x
        if fused == tflite.ActivationFunctionType.RELU:
            out = fresh("relu")
            nodes.append(helper.make_node("Relu", [x], [out]))
            return out
        raise ConversionError(f"fused activation {fused} is not supported")

    def nhwc_conv(x: str, w: np.ndarray, b: np.ndarray, group: int, opts) -> str:
        pads = [0, 0, 0, 0]
        if opts.Padding() == tflite.Padding.SAME:  # only trivial for 1x1 kernels here
            if w.shape[2:] != (1, 1) and (opts.StrideH(), opts.StrideW()) != (1, 1):
                raise ConversionError("SAME padding with a stride is not supported")
            th = (w.shape[2] - 1) * opts.DilationHFactor()
            tw = (w.shape[3] - 1) * opts.DilationWFactor()
            pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        a, y, z = fresh("nchw"), fresh("conv"), fresh("nhwc")
        nodes.append(helper.make_node("Transpose", [x], [a], perm=[0, 3, 1, 2]))
        nodes.append(helper.make_node(
            "Conv", [a, const(w, "w"), const(b, "b")], [y], group=group,
            strides=[opts.StrideH(), opts.StrideW()], pads=pads,
            dilations=[opts.DilationHFactor(), opts.DilationWFactor()]))
        nodes.append(helper.make_node("Transpose", [y], [z], perm=[0, 2, 3, 1]))
        return z

    in_t = graph.Inputs(0)
    in_shape = tuple(int(d) for d in graph.Tensors(in_t).ShapeAsNumpy())
    if len(in_shape) != 3 or in_shape[0] != 1:
        raise ConversionError(f"unexpected input shape {in_shape}")
    names[in_t] = fake_quant(INPUT, in_t)

    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = opcode(op)
        ins = list(op.InputsAsNumpy()) if op.InputsLength() else []
        outs = list(op.OutputsAsNumpy()) if op.OutputsLength() else []
        opts = op.BuiltinOptions()
        if kind == "CALL_ONCE":
            continue
        if kind == "VAR_HANDLE":
            handles[outs[0]] = _var_name(op, tflite)
            continue
        if kind == "READ_VARIABLE":
            var = handles[ins[0]]
            if var in outputs_next:
                raise ConversionError(f"variable {var} is read after it is assigned")
            shape = tuple(int(d) for d in graph.Tensors(outs[0]).ShapeAsNumpy())
            if var not in initial or initial[var].shape != shape or np.any(initial[var]):
                raise ConversionError(f"variable {var} does not start at zeros of {shape}")
            reads[var] = names[outs[0]] = STATE_PREFIX + var
            states[reads[var]] = shape
            continue
        if kind == "ASSIGN_VARIABLE":
            outputs_next[handles[ins[0]]] = value(ins[1])
            continue

        out = fresh(kind.lower())
        if kind == "RESHAPE":
            shape = tuple(int(d) for d in graph.Tensors(outs[0]).ShapeAsNumpy())
            nodes.append(helper.make_node("Reshape", [value(ins[0]), const(
                np.array(shape, np.int64))], [out]))
        elif kind == "CONCATENATION":
            o = tflite.ConcatenationOptions()
            o.Init(opts.Bytes, opts.Pos)
            nodes.append(helper.make_node("Concat", [value(t) for t in ins], [out],
                                          axis=o.Axis()))
            out = activation(out, o.FusedActivationFunction())
        elif kind == "STRIDED_SLICE":
            o = tflite.StridedSliceOptions()
            o.Init(opts.Bytes, opts.Pos)
            if o.EllipsisMask() or o.NewAxisMask() or o.ShrinkAxisMask():
                raise ConversionError("strided slice masks other than begin/end")
            begin, end, step = (data(graph, t).astype(np.int64) for t in ins[1:4])
            big = np.iinfo(np.int64).max
            for d in range(len(begin)):
                if o.BeginMask() >> d & 1:
                    begin[d] = 0
                if o.EndMask() >> d & 1:
                    end[d] = big
            axes = np.arange(len(begin), dtype=np.int64)
            nodes.append(helper.make_node(
                "Slice", [value(ins[0]), const(begin), const(end), const(axes), const(step)],
                [out]))
        elif kind == "SPLIT_V":
            sizes = data(graph, ins[1]).astype(np.int64)
            axis = int(data(graph, ins[2]))
            parts = [fresh("split") for _ in outs]
            nodes.append(helper.make_node("Split", [value(ins[0]), const(sizes)], parts,
                                          axis=axis))
            for t, part in zip(outs, parts, strict=True):
                names[t] = fake_quant(part, t)
            continue
        elif kind == "CONV_2D":
            o = tflite.Conv2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            w = dequantised(graph, ins[1]).transpose(0, 3, 1, 2)  # OHWI -> OIHW
            out = nhwc_conv(value(ins[0]), w, dequantised(graph, ins[2]), 1, o)
            out = activation(out, o.FusedActivationFunction())
        elif kind == "DEPTHWISE_CONV_2D":
            o = tflite.DepthwiseConv2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            if o.DepthMultiplier() != 1:
                raise ConversionError("depthwise multiplier other than 1")
            w = dequantised(graph, ins[1])  # 1, H, W, C
            w = w.transpose(3, 0, 1, 2)  # C, 1, H, W
            out = nhwc_conv(value(ins[0]), w, dequantised(graph, ins[2]), w.shape[0], o)
            out = activation(out, o.FusedActivationFunction())
        elif kind == "FULLY_CONNECTED":
            o = tflite.FullyConnectedOptions()
            o.Init(opts.Bytes, opts.Pos)
            w = dequantised(graph, ins[1])  # out, in
            flat = fresh("flat")
            nodes.append(helper.make_node("Reshape", [value(ins[0]), const(
                np.array([-1, w.shape[1]], np.int64))], [flat]))
            nodes.append(helper.make_node(
                "Gemm", [flat, const(w, "w"), const(dequantised(graph, ins[2]), "b")], [out],
                transB=1))
            out = activation(out, o.FusedActivationFunction())
        elif kind == "LOGISTIC":
            nodes.append(helper.make_node("Sigmoid", [value(ins[0])], [out]))
        elif kind == "QUANTIZE":
            nodes.append(helper.make_node("Identity", [value(ins[0])], [out]))
        else:
            raise ConversionError(f"op {kind} is not supported")
        names[outs[0]] = fake_quant(out, outs[0])

    missing = set(reads) - set(outputs_next)
    if missing:
        raise ConversionError(f"variables never assigned: {sorted(missing)}")
    out_t = graph.Outputs(0)
    nodes.append(helper.make_node("Reshape", [names[out_t], const(np.array([1, 1], np.int64))],
                                  [OUTPUT]))
    for var, src in outputs_next.items():
        nodes.append(helper.make_node("Identity", [src], [reads[var] + NEXT_SUFFIX]))

    def info(name: str, shape) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    onnx_graph = helper.make_graph(
        nodes, "microwakeword",
        [info(INPUT, in_shape), *(info(n, s) for n, s in states.items())],
        [info(OUTPUT, (1, 1)), *(info(n + NEXT_SUFFIX, s) for n, s in states.items())],
        inits)
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="glasses.export.wake_onnx")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model, full_check=True)
    return Converted(onnx_model, states, stride=in_shape[1], n_features=in_shape[2])


def _var_name(op, tflite) -> str:
    o = tflite.VarHandleOptions()
    opts = op.BuiltinOptions()
    o.Init(opts.Bytes, opts.Pos)
    return o.SharedName().decode()
