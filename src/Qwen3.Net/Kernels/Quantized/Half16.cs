using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// IEEE half to float32 by bit manipulation: exact for every one of the 65,536 inputs (tested), and a few integer
/// operations where the runtime's conversion is a call, which would cost more than a block's dot product.
/// </summary>
internal static class Half16
{
    private const float SubnormalUnit = 5.9604645e-8f; // 2^-24, the value of a half subnormal's lowest mantissa bit

    // Normal halves move into float position with an integer add to the exponent. Subnormal halves are mantissa·2^-24,
    // computed from the integer mantissa: the obvious multiply of the shifted bits by 2^112 takes a float32 denormal as
    // input, which costs a microcode assist of ~100 cycles on x64 — and the K formats' d and dmin of typical weights
    // are half subnormals.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits)
    {
        uint magnitude = (uint)(bits & 0x7FFF);
        uint exponent = magnitude & 0x7C00;
        uint result = (magnitude << 13) + (112u << 23);
        if (exponent == 0)
        {
            result = BitConverter.SingleToUInt32Bits((int)magnitude * SubnormalUnit);
        }
        else if (exponent == 0x7C00)
        {
            result = (magnitude << 13) | 0x7F800000; // infinity or NaN (payload kept)
        }

        return BitConverter.UInt32BitsToSingle(result | ((uint)(bits & 0x8000) << 16));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Read(byte* source) => ToSingle(Unsafe.ReadUnaligned<ushort>(source));

    /// <summary>
    /// Eight halves <paramref name="stride"/> bytes apart (eight blocks' scales), each as <see cref="ToSingle(ushort)"/>
    /// converts it: with AVX2 gathered and converted at once, as converting them one at a time, or a row's at once in a
    /// pass before its dot products, costs a decoded token more than the blocks' dot products (docs/benchmarks.md).
    /// Reads 4 bytes at each half where AVX2 gathers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<float> ReadStrided8(byte* source, int stride)
    {
        if (Avx2.IsSupported)
        {
            return ToSingle(Avx2.GatherVector256((int*)source, Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * stride, 1));
        }

        return Vector256.Create(
            Read(source), Read(source + stride), Read(source + 2 * stride), Read(source + 3 * stride),
            Read(source + 4 * stride), Read(source + 5 * stride), Read(source + 6 * stride), Read(source + 7 * stride));
    }

    /// <summary>
    /// The halves <paramref name="offset"/> bytes into eight rows (their blocks' scales), each as
    /// <see cref="ToSingle(ushort)"/> converts it, converted at once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<float> Read8(byte* r0, byte* r1, byte* r2, byte* r3, byte* r4, byte* r5, byte* r6, byte* r7, int offset) =>
        ToSingle(Vector256.Create(
            (int)Unsafe.ReadUnaligned<ushort>(r0 + offset), Unsafe.ReadUnaligned<ushort>(r1 + offset), Unsafe.ReadUnaligned<ushort>(r2 + offset), Unsafe.ReadUnaligned<ushort>(r3 + offset),
            Unsafe.ReadUnaligned<ushort>(r4 + offset), Unsafe.ReadUnaligned<ushort>(r5 + offset), Unsafe.ReadUnaligned<ushort>(r6 + offset), Unsafe.ReadUnaligned<ushort>(r7 + offset)));

    /// <summary><see cref="ToSingle(ushort)"/> of the low 16 bits of each lane, with the same operations per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> ToSingle(Vector256<int> bits)
    {
        Vector256<int> magnitude = bits & Vector256.Create(0x7FFF);
        Vector256<int> exponent = magnitude & Vector256.Create(0x7C00);
        Vector256<int> normal = Vector256.ShiftLeft(magnitude, 13) + Vector256.Create(112 << 23);
        Vector256<int> subnormal = (Vector256.ConvertToSingle(magnitude) * SubnormalUnit).AsInt32();
        Vector256<int> special = Vector256.ShiftLeft(magnitude, 13) | Vector256.Create(0x7F800000);
        Vector256<int> result = Vector256.ConditionalSelect(
            Vector256.Equals(exponent, Vector256<int>.Zero), subnormal,
            Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256.Create(0x7C00)), special, normal));
        return (result | Vector256.ShiftLeft(bits & Vector256.Create(0x8000), 16)).AsSingle();
    }
}
