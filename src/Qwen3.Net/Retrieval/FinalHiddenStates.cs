namespace Qwen3.Net.Retrieval;

/// <summary>
/// Runs many token sequences through a model for the final-norm hidden state of each one's last token: each sequence in
/// a context of its own, all submitted together, so the model's scheduler packs them into shared forward passes
/// (several short inputs per step, none padded to the longest).
/// </summary>
internal static class FinalHiddenStates
{
    /// <summary>Checks every input is non-empty, fits the model and holds only vocabulary ids.</summary>
    /// <exception cref="ArgumentException">An input is empty or longer than <c>max_position_embeddings</c>; the message names its index.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An input holds an id outside the vocabulary.</exception>
    public static void Validate(Qwen3Model model, IReadOnlyList<int[]> inputs, string paramName)
    {
        ArgumentNullException.ThrowIfNull(inputs, paramName);
        if (inputs.Count == 0)
        {
            throw new ArgumentException("At least one input is needed.", paramName);
        }

        int limit = model.Config.MaxPositionEmbeddings, vocab = model.Config.VocabSize;
        for (int i = 0; i < inputs.Count; i++)
        {
            int[] tokens = inputs[i] ?? throw new ArgumentException($"Input {i} is null.", paramName);
            if (tokens.Length == 0)
            {
                throw new ArgumentException($"Input {i} is empty.", paramName);
            }

            if (tokens.Length > limit)
            {
                throw new ArgumentException($"Input {i} has {tokens.Length} tokens; the model takes at most {limit} (max_position_embeddings).", paramName);
            }

            foreach (int id in tokens)
            {
                if ((uint)id >= (uint)vocab)
                {
                    throw new ArgumentOutOfRangeException(paramName, id, $"Input {i} holds the token id {id}, outside the vocabulary [0, {vocab}).");
                }
            }
        }
    }

    /// <summary>
    /// Evaluates every input (already validated) and hands <paramref name="receive"/> each one's final-norm hidden state,
    /// from the thread that evaluated it (never two calls with the same index).
    /// </summary>
    public static async Task RunAsync(Qwen3Model model, IReadOnlyList<int[]> inputs, Action<int, ReadOnlySpan<float>> receive, CancellationToken cancellationToken)
    {
        // As many sequences as one step can hold: more would only wait in the queue, and count against its limit.
        int workers = Math.Min(inputs.Count, model.Options.MaxBatchSequences);
        int next = -1;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        async Task WorkAsync()
        {
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < inputs.Count)
                {
                    // A fresh context per input, not one rewound: rewriting a full page it had offered for sharing
                    // would copy the page first. Its pages go back to the model's pool, which recycles them.
                    using var context = model.CreateContext(inputs[i].Length);
                    var hidden = await context.EvaluateHiddenAsync(inputs[i], failed.Token).ConfigureAwait(false);
                    receive(i, hidden.Span);
                }
            }
            catch
            {
                // One failure ends the call: the other workers stop at their next step instead of running on.
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        var tasks = new Task[workers];
        for (int w = 0; w < workers; w++)
        {
            tasks[w] = Task.Run(WorkAsync, CancellationToken.None);
        }

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            // The first real failure, not a worker's cancellation caused by it.
            var first = tasks.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException);
            if (first is not null && !cancellationToken.IsCancellationRequested)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }

            throw;
        }
    }
}
