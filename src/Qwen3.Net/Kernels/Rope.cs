using System.Runtime.CompilerServices;
namespace Qwen3.Net.Kernels;

/// <summary>
/// Rotary position embedding in the half-split (NEOX, rotate_half) layout: dimension i pairs with i + headDim/2,
/// rotated by the angle position · inv_freq[i]. cos and sin are precomputed per position (headDim/2 each).
/// </summary>
internal static class Rope
{
    /// <summary>Rotates every head of one token: <paramref name="heads"/> is [heads, headDim].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(Span<float> heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        for (int offset = 0; offset < heads.Length; offset += headDim)
        {
            Span<float> first = heads.Slice(offset, half);
            Span<float> second = heads.Slice(offset + half, half);
            for (int i = 0; i < half; i++)
            {
                float a = first[i];
                float b = second[i];
                first[i] = a * cos[i] - b * sin[i];
                second[i] = b * cos[i] + a * sin[i];
            }
        }
    }
}
