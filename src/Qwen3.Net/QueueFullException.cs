namespace Qwen3.Net;

/// <summary>
/// The model's queue of evaluations is full: <see cref="Limit"/> sequences are already waiting or running. Nothing was
/// evaluated; try again later, or raise <see cref="Qwen3ModelOptions.MaxQueuedRequests"/>. A server answers 429.
/// </summary>
public sealed class QueueFullException : InvalidOperationException
{
    /// <summary>Creates the exception for a queue of <paramref name="limit"/> requests.</summary>
    /// <param name="limit">The configured queue limit.</param>
    public QueueFullException(int limit)
        : base($"The model's evaluation queue is full ({limit} sequences waiting or running; Qwen3ModelOptions.MaxQueuedRequests).")
    {
        Limit = limit;
    }

    /// <summary>The configured limit that was reached.</summary>
    public int Limit { get; }
}
