using System.Runtime.CompilerServices;
namespace Qwen3.Net.Kernels;

/// <summary>
/// Rotary position embedding in the half-split (NEOX, rotate_half) layout: dimension i pairs with i + headDim/2,
/// rotated by the angle position · inv_freq[i]. cos and sin are precomputed per position (headDim/2 each).
/// </summary>
internal static unsafe class Rope
{
    /// <summary>
    /// Rotates every head of <paramref name="tokens"/> tokens ([tokens, heads, headDim]); <paramref name="cos"/> and
    /// <paramref name="sin"/> hold headDim/2 values per token, in the same order. Tokens are shared out over
    /// <paramref name="pool"/> when there are enough of them.
    /// </summary>
    public static void Apply(WorkerPool pool, Span<float> x, int tokens, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = headDim / 2;
        if (tokens <= 0 || x.Length % tokens != 0 || (x.Length / tokens) % headDim != 0 || cos.Length < tokens * half || sin.Length < tokens * half)
        {
            throw new ArgumentException($"RoPE of {x.Length} values as {tokens} tokens of heads of {headDim} with {cos.Length}/{sin.Length} angles.");
        }

        fixed (float* xp = x)
        fixed (float* cp = cos)
        fixed (float* sp = sin)
        {
            var job = new Tokens(xp, x.Length / tokens, headDim, cp, sp);
            pool.RunPass(ref job, tokens, x.Length);
        }
    }

    /// <summary>Rotates every head of one token: <paramref name="heads"/> is [heads, headDim].</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
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

    private readonly struct Tokens(float* x, int width, int headDim, float* cos, float* sin) : IRangeJob
    {
        public void Execute(int start, int end, int worker)
        {
            int half = headDim / 2;
            for (int t = start; t < end; t++)
            {
                Apply(new Span<float>(x + (long)t * width, width), headDim, new ReadOnlySpan<float>(cos + (long)t * half, half), new ReadOnlySpan<float>(sin + (long)t * half, half));
            }
        }
    }
}
