using System.Numerics.Tensors;

namespace Qwen3.Net.Benchmarks.Engines;

/// <summary>Greedy decoding's only step, done the same way for every engine so it cannot tilt a comparison.</summary>
public static class Greedy
{
    public static int ArgMax(ReadOnlySpan<float> logits) => TensorPrimitives.IndexOfMax(logits);
}
