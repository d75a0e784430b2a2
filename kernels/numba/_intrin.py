"""LLVM intrinsics the vectorised math needs and Numba does not expose.

Each one lowers to a single LLVM instruction (or intrinsic call) that the loop
vectoriser maps to packed code: bit casts between floats and integers (for the
exponent tricks of exp/log), a fused multiply-add (``llvm.fma``, exact
contraction chosen explicitly, never by a fast-math flag), an addition that may be
reassociated (used *only* for the private per-row sums of exp, never for the
contract's block sums) and the NaN-propagating maximum ``llvm.maximum``.
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
def radd(typingctx, a, b):
    """``a + b`` carrying the ``reassoc`` flag, so that a loop summing with it vectorises.

    Only for private partial sums whose order is not part of the contract (the
    per-row sum of exponentials); the result is deterministic for a given
    compiled loop and input, whatever the thread count.
    """
    if a == b and a in (types.float32, types.float64):
        def codegen(context, builder, sig, args):
            return builder.fadd(args[0], args[1], flags=("reassoc",))
        return a(a, a), codegen
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
