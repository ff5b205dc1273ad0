using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels;

/// <summary>
/// Horizontal sums of four AVX-512 accumulators at once, for kernels that end many independent dot products: fewer than
/// half the shuffles and adds of four separate <see cref="Vector512.Sum{T}(Vector512{T})"/> calls.
/// </summary>
internal static class HorizontalSum
{
    /// <summary>{Σa, Σb, Σc, Σd}: two rounds of unpack-and-add inside 128-bit lanes, then the lanes folded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Of4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] and likewise for c, d.
        Vector512<float> ab = Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b);
        Vector512<float> cd = Avx512F.UnpackLow(c, d) + Avx512F.UnpackHigh(c, d);

        // Per 128-bit lane: [Σa, Σb, Σc, Σd] of that lane.
        Vector512<float> abcd = Avx512F.UnpackLow(ab.AsDouble(), cd.AsDouble()).AsSingle() + Avx512F.UnpackHigh(ab.AsDouble(), cd.AsDouble()).AsSingle();
        Vector256<float> half = abcd.GetLower() + abcd.GetUpper();
        return half.GetLower() + half.GetUpper();
    }
}
