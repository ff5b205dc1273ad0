using System.Runtime.CompilerServices;

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
}
