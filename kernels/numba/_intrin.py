"""LLVM intrinsics the vectorised math needs and Numba does not expose.

Each one lowers to a single LLVM instruction (or intrinsic call) that the loop
vectoriser maps to packed code: bit casts between floats and integers (for the
exponent tricks of exp/log), a fused multiply-add (``llvm.fma``, exact
contraction chosen explicitly, never by a fast-math flag: the same bits on every
target) and the NaN-propagating maximum ``llvm.maximum``. There is deliberately no
reassociating addition: the order of a vectorised reassociated sum follows the
target's vector width (see the fixed-order lanes of ``_kernels``).
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def bits64(typingctx, x):
    """The IEEE bits of a float64 as an int64."""
    if x == types.float64:
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(64))
        return types.int64(types.float64), codegen
    return None


@intrinsic
def from_bits64(typingctx, i):
    """The float64 whose IEEE bits are the int64 ``i``."""
    if isinstance(i, types.Integer):
        def codegen(context, builder, sig, args):
            v = args[0]
            if i.bitwidth < 64:
                v = builder.sext(v, ir.IntType(64)) if i.signed else builder.zext(v, ir.IntType(64))
            return builder.bitcast(v, ir.DoubleType())
        return types.float64(i), codegen
    return None


@intrinsic
def bits32(typingctx, x):
    """The IEEE bits of a float32 as an int32."""
    if x == types.float32:
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], ir.IntType(32))
        return types.int32(types.float32), codegen
    return None


def _ll(ty):
    return ir.FloatType() if ty == types.float32 else ir.DoubleType()


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with a single rounding (``llvm.fma``)."""
    if a == b == c and a in (types.float32, types.float64):
        def codegen(context, builder, sig, args):
            t = _ll(a)
            fn = builder.module.declare_intrinsic("llvm.fma", [t], ir.FunctionType(t, [t, t, t]))
            return builder.call(fn, args)
        return a(a, a, a), codegen
    return None


@intrinsic
def fmaxnan(typingctx, a, b):
    """``llvm.maximum``: NaN if either is NaN, and ``+0 > -0``; vectorises as a reduction."""
    if a == b and a in (types.float32, types.float64):
        def codegen(context, builder, sig, args):
            t = _ll(a)
            fn = builder.module.declare_intrinsic("llvm.maximum", [t], ir.FunctionType(t, [t, t]))
            return builder.call(fn, args)
        return a(a, a), codegen
    return None


@intrinsic
def lanes_add8(typingctx, t, arr, m):
    """The 8 float64 lanes ``t`` plus ``arr[0:m - m % 8]``: lane k adds elements k, k+8,
    k+16, ... in that order (float32 elements widened exactly), as one ``<8 x double>``
    add per 8 elements. The lanes are explicit in the IR, so every target gives the same
    bits (AVX-512: one zmm add, AVX2: two ymm, SSE2: four xmm); the loop vectoriser
    would not vectorise eight scalar chains without a reassociation flag, and the SLP
    vectoriser does not either. The caller adds the last ``m % 8`` elements."""
    ok = (isinstance(t, types.UniTuple) and t.count == 8 and t.dtype == types.float64
          and isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
          and arr.dtype in (types.float32, types.float64) and isinstance(m, types.Integer))
    if not ok:
        return None

    def codegen(context, builder, sig, args):
        tv, av, mv = args
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        dbl = ir.DoubleType()
        vt = ir.VectorType(dbl, 8)
        et = _ll(arr.dtype)
        data = context.make_array(sig.args[1])(context, builder, av).data
        vec = ir.Constant(vt, ir.Undefined)
        for k in range(8):
            vec = builder.insert_element(vec, builder.extract_value(tv, k), ir.Constant(i32, k))
        mm = builder.sext(mv, i64) if m.bitwidth < 64 else mv
        n8 = builder.and_(mm, ir.Constant(i64, -8))
        pre = builder.block
        head = builder.append_basic_block("lanes.head")
        body = builder.append_basic_block("lanes.body")
        done = builder.append_basic_block("lanes.done")
        builder.branch(head)
        builder.position_at_end(head)
        i = builder.phi(i64)
        acc = builder.phi(vt)
        i.add_incoming(ir.Constant(i64, 0), pre)
        acc.add_incoming(vec, pre)
        builder.cbranch(builder.icmp_signed("<", i, n8), body, done)
        builder.position_at_end(body)
        ptr = builder.bitcast(builder.gep(data, [i]), ir.PointerType(ir.VectorType(et, 8)))
        ld = builder.load(ptr, align=arr.dtype.bitwidth // 8)
        if et != dbl:
            ld = builder.fpext(ld, vt)
        acc2 = builder.fadd(acc, ld)
        i.add_incoming(builder.add(i, ir.Constant(i64, 8)), body)
        acc.add_incoming(acc2, body)
        builder.branch(head)
        builder.position_at_end(done)
        vals = [builder.extract_element(acc, ir.Constant(i32, k)) for k in range(8)]
        return context.make_tuple(builder, sig.return_type, vals)

    return t(t, arr, m), codegen
