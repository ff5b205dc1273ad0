namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>What one engine measured in one child process; travels to the parent as a JSON line.</summary>
public sealed record EngineRunResult
{
    public required string Engine { get; init; }
    public required int Threads { get; init; }

    /// <summary>Model load plus context creation, seconds.</summary>
    public required double LoadSeconds { get; init; }

    /// <summary>
    /// The first prompt right after load, until its greedy token is known: includes whatever the load deferred
    /// (page faults of memory-mapped weights, lazy allocations), which the warm prefill figures do not.
    /// </summary>
    public required double TimeToFirstTokenSeconds { get; init; }

    public required int TimeToFirstTokenPromptTokens { get; init; }
    public required int[] PromptLengths { get; init; }

    /// <summary>Per entry of <see cref="PromptLengths"/>: prompt tokens over the warm prefill time, empty cache.</summary>
    public required double[] PrefillTokensPerSecond { get; init; }

    public required int DecodeTokens { get; init; }

    /// <summary>Greedy single-token steps per second after a <see cref="TimeToFirstTokenPromptTokens"/>-token prompt.</summary>
    public required double DecodeTokensPerSecond { get; init; }

    /// <summary>VmHWM of the child process: its peak resident set, file-backed (memory-mapped) pages included.</summary>
    public required long PeakRssBytes { get; init; }

    /// <summary>The first greedy tokens decoded, to show that the engine produced tokens at all.</summary>
    public required int[] FirstDecodedIds { get; init; }

    public required string EngineInfo { get; init; }
}
