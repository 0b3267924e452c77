"""A .tflite model -> ONNX, walking the flatbuffer itself (the `tflite` package reads it).

tf2onnx and tflite2onnx need TensorFlow, or do not know the ops these models use, so this
converter writes the ONNX graph op by op. It covers the models the project takes from
wheels:

- microWakeWord's int8 streaming graphs (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
  LOGISTIC, CONCATENATION, STRIDED_SLICE, SPLIT_V, RESHAPE, QUANTIZE), whose streaming
  buffers are resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, initialised
  once by CALL_ONCE): every variable becomes an input `state:NAME` and an output
  `state:NAME:next` of the same shape, float32, zero at the start of a stream (checked);
- MediaPipe's float detectors with float16 and sparse weights (DEQUANTIZE and DENSIFY of
  constants are folded here), ADD, MUL, RELU, RELU6, PAD, MAX_POOL_2D, AVERAGE_POOL_2D,
  DEPTH_TO_SPACE and RESIZE_BILINEAR.

Tensors stay in TFLite's NHWC layout; each convolution, pooling, depth-to-space and resize
is wrapped in transposes (onnxruntime's optimiser cancels the pairs). Int8 weights are
dequantised to float32, and every int8 activation a computing op writes is fake-quantised
(QuantizeLinear then DequantizeLinear with the tensor's own scale and zero point), so the
float graph reproduces the integer one up to the TFLite kernels' fixed-point rounding.
The builds check each converted graph against the TFLite runtime (`export/tflite_runtime.py`)
before anything is stored.

Build-time code (the `tflite` flatbuffer reader, `onnx`).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPSET = 17
STATE_PREFIX = "state:"
NEXT_SUFFIX = ":next"


@dataclass(frozen=True)
class Converted:
    model: object  # onnx.ModelProto
    inputs: dict[str, tuple[int, ...]]  # the graph's own inputs (no states), in order
    outputs: dict[str, tuple[int, ...]]
    states: dict[str, tuple[int, ...]]  # state input name -> shape


class ConversionError(ValueError):
    pass


def convert(tflite_path: Path, inputs: tuple[str, ...], outputs: tuple[str, ...],
            name: str) -> Converted:
    """Read `tflite_path` and return the equivalent ONNX model (not yet checked against
    TFLite), its inputs and outputs named `inputs` and `outputs` in the TFLite order."""
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    buf = Path(tflite_path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    act = tflite.ActivationFunctionType
    graph = model.Subgraphs(0)
    if (graph.InputsLength(), graph.OutputsLength()) != (len(inputs), len(outputs)):
        raise ConversionError(f"{tflite_path.name}: {graph.InputsLength()} inputs and "
                              f"{graph.OutputsLength()} outputs, not {len(inputs)} and "
                              f"{len(outputs)}")
    dtypes = {tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32,
              tflite.TensorType.UINT8: np.uint8, tflite.TensorType.FLOAT32: np.float32,
              tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.INT64: np.int64}

    def opcode(op) -> str:
        code = model.OperatorCodes(op.OpcodeIndex())
        return op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]

    def shape_of(g, t: int) -> tuple[int, ...]:
        tensor = g.Tensors(t)
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def raw_data(g, t: int) -> np.ndarray | None:
        tensor = g.Tensors(t)
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw is None or raw.size == 0:
            return None
        return np.frombuffer(raw.tobytes(), dtype=dtypes[tensor.Type()])

    folded: dict[int, np.ndarray] = {}  # tensor -> constant computed here (DEQUANTIZE...)

    def data(g, t: int) -> np.ndarray | None:
        if g is graph and t in folded:
            return folded[t]
        values = raw_data(g, t)
        if values is None:
            return None
        if g.Tensors(t).Sparsity() is not None:
            return _densify(values, g.Tensors(t).Sparsity(), shape_of(g, t), tflite)
        return values.reshape(shape_of(g, t))

    def quant(g, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        q = g.Tensors(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy().astype(np.int64)

    def dequantised(g, t: int) -> np.ndarray:
        values, q = data(g, t), quant(g, t)
        if values is None:
            raise ConversionError(f"tensor {t} has no constant data")
        if q is None or values.dtype.kind == "f":
            return values.astype(np.float32)
        scale, zero = q
        shape = [1] * values.ndim
        if scale.size > 1:  # per output channel: axis 0 for conv, 3 for depthwise
            shape[g.Tensors(t).Quantization().QuantizedDimension()] = scale.size
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
        if values.dtype == np.float16:
            values = values.astype(np.float32)
        names[t] = const(values)
        return names[t]

    def node(kind: str, ins: list[str], stem: str | None = None, **attrs) -> str:
        out = fresh(stem or kind.lower())
        nodes.append(helper.make_node(kind, ins, [out], **attrs))
        return out

    def fake_quant(x: str, t: int) -> str:
        q = quant(graph, t)
        kind = graph.Tensors(t).Type()
        if q is None or kind not in (tflite.TensorType.INT8, tflite.TensorType.UINT8):
            return x
        scale, zero = q
        zp = zero.astype(np.int8 if kind == tflite.TensorType.INT8 else np.uint8)
        s, z = const(scale[0], "scale"), const(zp[0], "zero")
        return node("DequantizeLinear", [node("QuantizeLinear", [x, s, z]), s, z])

    def activation(x: str, fused: int) -> str:
        if fused == act.NONE:
            return x
        if fused == act.RELU:
            return node("Relu", [x])
        if fused == act.RELU6:
            return node("Clip", [x, const(np.float32(0)), const(np.float32(6))])
        if fused == act.RELU_N1_TO_1:
            return node("Clip", [x, const(np.float32(-1)), const(np.float32(1))])
        if fused == act.TANH:
            return node("Tanh", [x])
        raise ConversionError(f"fused activation {fused} is not supported")

    def same_pads(t: int, kernel: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int]) -> list[int]:
        """TensorFlow's SAME padding for input tensor `t` (NHWC): [top, left, bottom, right]."""
        size = shape_of(graph, t)[1:3]
        before, after = [], []
        for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after

    def nchw(x: str, kind: str, ins: list[str], **attrs) -> str:
        """`kind` applied to NHWC `x` by way of NCHW."""
        a = node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
        return node("Transpose", [node(kind, [a, *ins], **attrs)], "nhwc", perm=[0, 2, 3, 1])

    def conv(t_in: int, w: np.ndarray, b: np.ndarray, group: int, opts) -> str:
        stride = (opts.StrideH(), opts.StrideW())
        dilation = (opts.DilationHFactor(), opts.DilationWFactor())
        pads = [0, 0, 0, 0]
        if opts.Padding() == tflite.Padding.SAME:
            pads = same_pads(t_in, w.shape[2:], stride, dilation)
        return nchw(value(t_in), "Conv", [const(w, "w"), const(b, "b")], group=group,
                    strides=list(stride), pads=pads, dilations=list(dilation))

    def bias(op, t: int, n: int) -> np.ndarray:
        return (dequantised(graph, t) if op.InputsLength() > 2 and t >= 0
                else np.zeros(n, np.float32))

    for k, t in enumerate(graph.InputsAsNumpy()):
        names[int(t)] = fake_quant(inputs[k], int(t))

    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = opcode(op)
        ins = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
        opts = op.BuiltinOptions()

        def options(cls, opts=opts):
            o = cls()
            o.Init(opts.Bytes, opts.Pos)
            return o

        if kind == "CALL_ONCE":
            continue
        if kind == "VAR_HANDLE":
            handles[outs[0]] = _var_name(op, tflite)
            continue
        if kind == "READ_VARIABLE":
            var = handles[ins[0]]
            if var in outputs_next:
                raise ConversionError(f"variable {var} is read after it is assigned")
            shape = shape_of(graph, outs[0])
            if var not in initial or initial[var].shape != shape or np.any(initial[var]):
                raise ConversionError(f"variable {var} does not start at zeros of {shape}")
            reads[var] = names[outs[0]] = STATE_PREFIX + var
            states[reads[var]] = shape
            continue
        if kind == "ASSIGN_VARIABLE":
            outputs_next[handles[ins[0]]] = value(ins[1])
            continue
        if kind in ("DEQUANTIZE", "DENSIFY") and data(graph, ins[0]) is not None:
            folded[outs[0]] = (dequantised(graph, ins[0]) if kind == "DEQUANTIZE"
                               else data(graph, ins[0]))
            continue

        if kind == "RESHAPE":
            out = node("Reshape", [value(ins[0]), const(np.array(shape_of(graph, outs[0]),
                                                                 np.int64))])
        elif kind == "CONCATENATION":
            o = options(tflite.ConcatenationOptions)
            out = activation(node("Concat", [value(t) for t in ins], axis=o.Axis()),
                             o.FusedActivationFunction())
        elif kind in ("ADD", "MUL", "SUB"):
            cls = {"ADD": tflite.AddOptions, "MUL": tflite.MulOptions, "SUB": tflite.SubOptions}
            out = node(kind.capitalize(), [value(ins[0]), value(ins[1])])
            out = activation(out, options(cls[kind]).FusedActivationFunction())
        elif kind == "RELU":
            out = activation(value(ins[0]), act.RELU)
        elif kind == "RELU6":
            out = activation(value(ins[0]), act.RELU6)
        elif kind in ("PAD", "PADV2"):
            pads = data(graph, ins[1]).astype(np.int64)  # (rank, 2)
            extra = [value(ins[2])] if kind == "PADV2" else []
            out = node("Pad", [value(ins[0]), const(np.concatenate([pads[:, 0], pads[:, 1]])),
                               *extra])
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            o = options(tflite.Pool2DOptions)
            kernel, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
            pads = (same_pads(ins[0], kernel, stride, (1, 1))
                    if o.Padding() == tflite.Padding.SAME else [0, 0, 0, 0])
            pool = "MaxPool" if kind == "MAX_POOL_2D" else "AveragePool"
            out = activation(nchw(value(ins[0]), pool, [], kernel_shape=list(kernel),
                                  strides=list(stride), pads=pads),
                             o.FusedActivationFunction())
        elif kind == "DEPTH_TO_SPACE":
            o = options(tflite.DepthToSpaceOptions)
            out = nchw(value(ins[0]), "DepthToSpace", [], blocksize=o.BlockSize(), mode="DCR")
        elif kind == "RESIZE_BILINEAR":
            o = options(tflite.ResizeBilinearOptions)
            n, h, w, c = shape_of(graph, outs[0])
            mode = ("align_corners" if o.AlignCorners() else
                    "half_pixel" if o.HalfPixelCenters() else "asymmetric")
            out = nchw(value(ins[0]), "Resize", ["", "", const(np.array([n, c, h, w], np.int64))],
                       mode="linear", coordinate_transformation_mode=mode)
        elif kind == "STRIDED_SLICE":
            o = options(tflite.StridedSliceOptions)
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
            out = node("Slice", [value(ins[0]), const(begin), const(end), const(axes),
                                 const(step)])
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
            o = options(tflite.Conv2DOptions)
            w = dequantised(graph, ins[1]).transpose(0, 3, 1, 2)  # OHWI -> OIHW
            out = activation(conv(ins[0], w, bias(op, ins[2], w.shape[0]), 1, o),
                             o.FusedActivationFunction())
        elif kind == "DEPTHWISE_CONV_2D":
            o = options(tflite.DepthwiseConv2DOptions)
            w = dequantised(graph, ins[1]).transpose(3, 0, 1, 2)  # 1HWC -> C1HW
            groups = shape_of(graph, ins[0])[3]
            out = activation(conv(ins[0], w, bias(op, ins[2], w.shape[0]), groups, o),
                             o.FusedActivationFunction())
        elif kind == "FULLY_CONNECTED":
            o = options(tflite.FullyConnectedOptions)
            w = dequantised(graph, ins[1])  # out, in
            flat = node("Reshape", [value(ins[0]), const(np.array([-1, w.shape[1]], np.int64))],
                        "flat")
            out = node("Gemm", [flat, const(w, "w"), const(bias(op, ins[2], w.shape[0]), "b")],
                       transB=1)
            out = activation(out, o.FusedActivationFunction())
        elif kind == "LOGISTIC":
            out = node("Sigmoid", [value(ins[0])])
        elif kind == "QUANTIZE":
            out = node("Identity", [value(ins[0])])
        else:
            raise ConversionError(f"{tflite_path.name}: op {kind} is not supported")
        names[outs[0]] = fake_quant(out, outs[0])

    missing = set(reads) - set(outputs_next)
    if missing:
        raise ConversionError(f"variables never assigned: {sorted(missing)}")
    out_shapes = {}
    for k, t in enumerate(graph.OutputsAsNumpy()):
        nodes.append(helper.make_node("Identity", [names[int(t)]], [outputs[k]]))
        out_shapes[outputs[k]] = shape_of(graph, int(t))
    for var, src in outputs_next.items():
        nodes.append(helper.make_node("Identity", [src], [reads[var] + NEXT_SUFFIX]))
    in_shapes = {inputs[k]: shape_of(graph, int(t))
                 for k, t in enumerate(graph.InputsAsNumpy())}

    def info(name: str, shape) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))

    onnx_graph = helper.make_graph(
        nodes, name,
        [*(info(n, s) for n, s in in_shapes.items()), *(info(n, s) for n, s in states.items())],
        [*(info(n, s) for n, s in out_shapes.items()),
         *(info(n + NEXT_SUFFIX, s) for n, s in states.items())],
        inits)
    onnx_model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="glasses.export.tflite_onnx")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model, full_check=True)
    return Converted(onnx_model, in_shapes, out_shapes, states)


def _densify(values: np.ndarray, sparsity, shape: tuple[int, ...], tflite) -> np.ndarray:
    """A TFLite sparse constant (dense dimensions, then compressed ones: CSR segments and
    indices) in its identity traversal order, without blocks, as a dense array."""
    order = list(sparsity.TraversalOrderAsNumpy())
    if order != list(range(len(shape))) or sparsity.BlockMapLength():
        raise ConversionError("sparse weights with blocks or a traversal order")
    dense = np.zeros(int(np.prod(shape)), values.dtype)
    positions = np.zeros(1, np.int64)  # flat index prefix of every stored row so far
    for d in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(d)
        if meta.Format() == tflite.DimensionType.DENSE:
            positions = (positions[:, None] * shape[d] + np.arange(meta.DenseSize())).ravel()
            continue
        segments = _index_vector(meta.ArraySegments(), meta.ArraySegmentsType(), tflite)
        indices = _index_vector(meta.ArrayIndices(), meta.ArrayIndicesType(), tflite)
        counts = np.diff(segments)
        positions = np.repeat(positions, counts) * shape[d] + indices
    if len(positions) != len(values):
        raise ConversionError("sparse weights whose indices do not match their values")
    dense[positions] = values
    return dense.reshape(shape)


def _index_vector(table, kind: int, tflite) -> np.ndarray:
    cls = {tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
           tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
           tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector}[kind]
    vector = cls()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy().astype(np.int64)


def _var_name(op, tflite) -> str:
    o = tflite.VarHandleOptions()
    opts = op.BuiltinOptions()
    o.Init(opts.Bytes, opts.Pos)
    return o.SharedName().decode()
