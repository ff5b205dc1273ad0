using System.Runtime.CompilerServices;
using System.Text;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Deterministic pseudo-random weights: element <c>i</c> of a tensor is a pure function of (seed, tensor name, i),
/// so any chunk can be produced independently, in any order, on any thread, and the files come out byte-identical.
/// </summary>
/// <remarks>
/// Scales keep a forward pass finite and unremarkable, like a freshly initialised model: projections uniform in
/// ±1/sqrt(fan_in) (activations keep their magnitude through each matrix), embeddings ±0.02 (the Qwen3
/// initializer_range), norm gains 1 ± 0.05. Speed measurements do not depend on the values, only on their being finite.
/// </remarks>
public sealed class SyntheticWeights(ulong seed) : IWeightSource
{
    public ulong Seed { get; } = seed;

    public void ReadBf16(CheckpointTensor tensor, long start, Span<ushort> destination)
    {
        ulong tensorKey = SplitMix64(Seed ^ Fnv1a64(tensor.HfName));
        (float scale, float offset) = tensor.Role switch
        {
            TensorRole.Embedding => (0.02f, 0f),
            TensorRole.Projection => ((float)(1.0 / Math.Sqrt(tensor.FanIn)), 0f),
            TensorRole.Norm => (0.05f, 1f),
            _ => throw new ArgumentOutOfRangeException(nameof(tensor)),
        };
        // 2^-31 maps a signed 32-bit integer onto [-1, 1).
        float unit = scale * (1f / 2147483648f);

        for (int k = 0; k < destination.Length; k++)
        {
            long index = start + k;
            // One 64-bit hash feeds two consecutive elements; keyed on the element index, never on the chunk.
            ulong hash = SplitMix64(tensorKey + (ulong)(index >> 1) * 0x9E3779B97F4A7C15UL);
            int bits = (index & 1) == 0 ? (int)(uint)hash : (int)(uint)(hash >> 32);
            destination[k] = Bfloat16.FromSingle(offset + bits * unit);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong SplitMix64(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // string.GetHashCode is randomised per process; the files must not be.
    private static ulong Fnv1a64(string text)
    {
        ulong hash = 0xCBF29CE484222325UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            hash = (hash ^ b) * 0x100000001B3UL;
        }
        return hash;
    }
}
