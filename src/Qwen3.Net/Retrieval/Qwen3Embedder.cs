namespace Qwen3.Net.Retrieval;

/// <summary>
/// Text embeddings from a Qwen3-Embedding model: the final-norm hidden state of the last token of the text followed by
/// <c>&lt;|endoftext|&gt;</c>, L2-normalized, optionally cut to fewer dimensions (Matryoshka) and normalized again.
/// Thread-safe; the texts of concurrent calls (and of one call) run in shared forward passes of the model's scheduler.
/// </summary>
/// <remarks>
/// Queries take an instruction naming the task (<see cref="FormatQuery"/>); documents take none. Both checkpoint layouts
/// are accepted: tensors named <c>model.layers.0...</c> (Qwen3ForCausalLM) or <c>layers.0...</c> (Qwen3Model, how
/// Qwen3-Embedding is published), with or without <c>lm_head</c>, which is never used.
/// </remarks>
public sealed class Qwen3Embedder : IDisposable
{
    /// <summary>The model card's default task for web search queries.</summary>
    public const string DefaultTask = "Given a web search query, retrieve relevant passages that answer the query";

    private Qwen3Embedder(Qwen3Model model) => Model = model;

    /// <summary>The model behind the embeddings.</summary>
    public Qwen3Model Model { get; }

    /// <summary>The length of a full embedding: the model's hidden size (1024 for Qwen3-Embedding-0.6B).</summary>
    public int Dimensions => Model.Config.HiddenSize;

    /// <summary>Most tokens one input may have, <c>&lt;|endoftext|&gt;</c> included: the model's <c>max_position_embeddings</c>.</summary>
    public int MaxInputTokens => Model.Config.MaxPositionEmbeddings;

    /// <summary>Loads a Qwen3-Embedding model folder (config, safetensors weights, <c>tokenizer.json</c>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">Threads and batching; null for the defaults.</param>
    /// <exception cref="ModelLoadException">A file is missing or malformed, or the tensors fit neither layout; the message names the file and tensor.</exception>
    /// <exception cref="NotSupportedException">The folder holds another architecture.</exception>
    public static Qwen3Embedder Load(string folder, Qwen3ModelOptions? options = null) => new(Qwen3Model.Load(folder, options, requireHead: false));

    /// <summary>The model card's query format: <c>Instruct: {task}\nQuery:{query}</c>. Documents are embedded as they are.</summary>
    /// <param name="task">A one-sentence description of the retrieval task, e.g. <see cref="DefaultTask"/>.</param>
    /// <param name="query">The query text.</param>
    public static string FormatQuery(string task, string query)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(query);
        return $"Instruct: {task}\nQuery:{query}";
    }

    /// <summary>The tokens a text is embedded from: its encoding followed by <c>&lt;|endoftext|&gt;</c>, as the model card's tokenizer does.</summary>
    /// <exception cref="ArgumentException"><paramref name="text"/> is empty.</exception>
    public int[] Tokenize(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var ids = Model.Tokenizer.Encode(text);
        var tokens = new int[ids.Count + 1];
        for (int i = 0; i < ids.Count; i++)
        {
            tokens[i] = ids[i];
        }

        tokens[^1] = Model.Tokenizer.EndOfTextId;
        return tokens;
    }

    /// <summary>Embeds one text.</summary>
    /// <param name="text">The text; a query should be formatted with <see cref="FormatQuery"/>.</param>
    /// <param name="dimensions">Keep only the first this many dimensions (renormalized); null for all of <see cref="Dimensions"/>.</param>
    /// <param name="cancellationToken">Stops the evaluation at the model's next step.</param>
    /// <returns>A unit-length vector.</returns>
    /// <exception cref="ArgumentException"><paramref name="text"/> is empty, or its tokens exceed <see cref="MaxInputTokens"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dimensions"/> is below 1 or above <see cref="Dimensions"/>.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    public async Task<float[]> EmbedAsync(string text, int? dimensions = null, CancellationToken cancellationToken = default) =>
        (await EmbedAsync([text], dimensions, cancellationToken).ConfigureAwait(false))[0];

    /// <summary>Embeds texts of any lengths together: they share the model's forward passes, none padded.</summary>
    /// <param name="texts">The texts; queries formatted with <see cref="FormatQuery"/>.</param>
    /// <param name="dimensions">Keep only the first this many dimensions (renormalized); null for all of <see cref="Dimensions"/>.</param>
    /// <param name="cancellationToken">Stops the evaluations at the model's next step.</param>
    /// <returns>One unit-length vector per text, in order.</returns>
    /// <exception cref="ArgumentException"><paramref name="texts"/> is empty, or a text is empty or its tokens exceed <see cref="MaxInputTokens"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dimensions"/> is below 1 or above <see cref="Dimensions"/>.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    public Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, int? dimensions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var tokens = new int[texts.Count][];
        for (int i = 0; i < tokens.Length; i++)
        {
            if (string.IsNullOrEmpty(texts[i]))
            {
                throw new ArgumentException($"Text {i} is empty.", nameof(texts));
            }

            tokens[i] = Tokenize(texts[i]);
        }

        return EmbedTokensAsync(tokens, dimensions, cancellationToken);
    }

    /// <summary>
    /// Embeds token sequences as they are (nothing is appended: end each with <c>&lt;|endoftext|&gt;</c>, as
    /// <see cref="Tokenize"/> does, for the model card's embeddings).
    /// </summary>
    /// <param name="inputs">Token id sequences.</param>
    /// <param name="dimensions">Keep only the first this many dimensions (renormalized); null for all of <see cref="Dimensions"/>.</param>
    /// <param name="cancellationToken">Stops the evaluations at the model's next step.</param>
    /// <returns>One unit-length vector per input, in order.</returns>
    /// <exception cref="ArgumentException"><paramref name="inputs"/> is empty, or an input is empty or longer than <see cref="MaxInputTokens"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dimensions"/> is out of range, or a token id is outside the vocabulary.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    public async Task<float[][]> EmbedTokensAsync(IReadOnlyList<int[]> inputs, int? dimensions = null, CancellationToken cancellationToken = default)
    {
        int size = dimensions ?? Dimensions;
        if (size < 1 || size > Dimensions)
        {
            throw new ArgumentOutOfRangeException(nameof(dimensions), dimensions, $"dimensions must be from 1 to {Dimensions}, the model's hidden size.");
        }

        FinalHiddenStates.Validate(Model, inputs, nameof(inputs));
        var results = new float[inputs.Count][];
        await FinalHiddenStates.RunAsync(Model, inputs, (i, hidden) => results[i] = Normalize(hidden[..size]), cancellationToken).ConfigureAwait(false);
        return results;
    }

    /// <summary>Disposes the model, after the calls in progress are done.</summary>
    public void Dispose() => Model.Dispose();

    /// <summary>The vector scaled to unit length, summed in float64 so a 4096-dimension vector loses nothing to rounding.</summary>
    internal static float[] Normalize(ReadOnlySpan<float> vector)
    {
        double sum = 0;
        foreach (float v in vector)
        {
            sum += (double)v * v;
        }

        double scale = sum > 0 ? 1 / Math.Sqrt(sum) : 0;
        var result = new float[vector.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = (float)(vector[i] * scale);
        }

        return result;
    }
}
