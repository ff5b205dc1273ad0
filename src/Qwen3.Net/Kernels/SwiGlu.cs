namespace Qwen3.Net.Kernels;

/// <summary>gate ← silu(gate) · up, where silu(g) = g / (1 + e^(−g)): the activation of the Qwen3 MLP.</summary>
internal static class SwiGlu
{
    public static void Apply(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
