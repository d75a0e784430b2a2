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
