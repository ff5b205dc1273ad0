using System.Runtime.CompilerServices;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Rounding float32 to BF16 for the generator; widening back is the library's <c>Qwen3.Net.Kernels.BFloat16.ToSingle</c>.
/// </summary>
public static class Bfloat16
{
    /// <summary>Round to nearest, ties to even, as PyTorch's <c>.to(torch.bfloat16)</c> does. Inputs must be finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }
}
