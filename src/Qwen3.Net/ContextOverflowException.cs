namespace Qwen3.Net;

/// <summary>
/// Evaluating the given tokens would take a context past its capacity (set when it was created, and never more
/// than the model's <c>max_position_embeddings</c>). Nothing was evaluated; the context is unchanged.
/// </summary>
public sealed class ContextOverflowException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="position">Tokens already in the context.</param>
    /// <param name="requested">Tokens that were to be appended.</param>
    /// <param name="capacity">The context's capacity.</param>
    public ContextOverflowException(int position, int requested, int capacity)
        : base($"The context holds {position} tokens and can hold {capacity}; appending {requested} more would overflow it. Truncate the context or create a larger one.")
    {
        Position = position;
        Requested = requested;
        Capacity = capacity;
    }

    /// <summary>Tokens already in the context.</summary>
    public int Position { get; }

    /// <summary>Tokens that were to be appended.</summary>
    public int Requested { get; }

    /// <summary>The context's capacity.</summary>
    public int Capacity { get; }
}
