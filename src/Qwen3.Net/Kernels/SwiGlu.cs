using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Qwen3.Net.Kernels;

/// <summary>gate ← silu(gate) · up, where silu(g) = g / (1 + e^(−g)): the activation of the Qwen3 MLP.</summary>
internal static class SwiGlu
{
    // Small enough for the stack, long enough that the per-call cost of TensorPrimitives vanishes.
    private const int Chunk = 256;

    /// <summary>The same operations as <see cref="ApplyScalar"/>, a vector at a time (e^x to within TensorPrimitives' ulps).</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Apply(Span<float> gate, ReadOnlySpan<float> up)
    {
        Span<float> denominator = stackalloc float[Chunk];
        for (int offset = 0; offset < gate.Length; offset += Chunk)
        {
            int n = Math.Min(Chunk, gate.Length - offset);
            Span<float> g = gate.Slice(offset, n);
            Span<float> d = denominator[..n];
            TensorPrimitives.Negate(g, d);
            TensorPrimitives.Exp(d, d);
            TensorPrimitives.Add(d, 1f, d);
            TensorPrimitives.Divide(g, d, g);
            TensorPrimitives.Multiply(g, up.Slice(offset, n), g);
        }
    }

    public static void ApplyScalar(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
