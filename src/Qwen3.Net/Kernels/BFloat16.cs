using System.Runtime.CompilerServices;

namespace Qwen3.Net.Kernels;

/// <summary>bfloat16 is the top half of an IEEE float32, so widening is exact: shift the bits into place.</summary>
internal static class BFloat16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        for (int i = 0; i < source.Length; i++)
        {
            destination[i] = ToSingle(source[i]);
        }
    }
}
