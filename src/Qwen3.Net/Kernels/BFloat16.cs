using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen3.Net.Kernels;

/// <summary>bfloat16 is the top half of an IEEE float32, so widening is exact: shift the bits into place.</summary>
internal static class BFloat16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Vectorized: embedding lookups (a row per prompt token) and loading the norm weights read whole rows through this.</summary>
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("Destination is shorter than the source.", nameof(destination));
        }

        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + Vector512<ushort>.Count <= source.Length; i += Vector512<ushort>.Count)
            {
                (Vector512<uint> lower, Vector512<uint> upper) = Vector512.Widen(Vector512.Create(source.Slice(i, Vector512<ushort>.Count)));
                (lower << 16).AsSingle().CopyTo(destination[i..]);
                (upper << 16).AsSingle().CopyTo(destination[(i + Vector512<uint>.Count)..]);
            }
        }

        for (; i + Vector128<ushort>.Count <= source.Length; i += Vector128<ushort>.Count)
        {
            (Vector128<uint> lower, Vector128<uint> upper) = Vector128.Widen(Vector128.Create(source.Slice(i, Vector128<ushort>.Count)));
            (lower << 16).AsSingle().CopyTo(destination[i..]);
            (upper << 16).AsSingle().CopyTo(destination[(i + Vector128<uint>.Count)..]);
        }

        for (; i < source.Length; i++)
        {
            destination[i] = ToSingle(source[i]);
        }
    }
}
