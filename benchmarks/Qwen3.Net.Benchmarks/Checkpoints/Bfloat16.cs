using System.Runtime.CompilerServices;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>BF16 is the top half of an IEEE binary32; these convert through the raw bits.</summary>
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bf16) => BitConverter.UInt32BitsToSingle((uint)bf16 << 16);
}
