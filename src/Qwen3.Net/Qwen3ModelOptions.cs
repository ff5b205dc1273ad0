namespace Qwen3.Net;

/// <summary>Options for <see cref="Qwen3Model.Load(string, Qwen3ModelOptions?)"/>.</summary>
public sealed record Qwen3ModelOptions
{
    /// <summary>
    /// Threads each context uses for its matrix products; null (the default) means one per physical core,
    /// taken as <see cref="Environment.ProcessorCount"/> since .NET does not report hyper-threads separately.
    /// </summary>
    public int? ThreadCount { get; init; }

    internal int ResolveThreadCount()
    {
        if (ThreadCount is { } n)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(n, 1, nameof(ThreadCount));
            return n;
        }

        return Environment.ProcessorCount;
    }
}
