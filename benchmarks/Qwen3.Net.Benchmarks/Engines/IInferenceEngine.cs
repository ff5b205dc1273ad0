namespace Qwen3.Net.Benchmarks.Engines;

/// <summary>
/// The least both engines share: feed tokens into one sequence, get the logits after the last one, start over.
/// Sampling stays outside (the caller takes the argmax) so its cost is identical for both engines.
/// </summary>
public interface IInferenceEngine : IDisposable
{
    /// <summary>Build and runtime facts worth recording next to the figures (kernels, detected CPU features).</summary>
    string Description { get; }

    /// <summary>Appends <paramref name="tokens"/> at the current position; returns the logits after the last one.</summary>
    /// <remarks>The span is valid until the next call.</remarks>
    ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens);

    /// <summary>Empties the cache so the next <see cref="Evaluate"/> starts at position 0.</summary>
    void Reset();
}
