namespace Qwen3.Net.Retrieval;

/// <summary>
/// Relevance scores from a Qwen3-Reranker model: the model reads a (query, document, instruction) prompt in the model
/// card's format and the score is its probability of answering <c>yes</c> rather than <c>no</c>. Thread-safe; the
/// documents of a call (and of concurrent calls) run in shared forward passes of the model's scheduler.
/// </summary>
/// <remarks>
/// Only the two output rows for <c>yes</c> and <c>no</c> are used: the softmax over their two logits is the sigmoid of
/// the final hidden state's dot product with the difference of the rows, so the full vocabulary head is never computed.
/// </remarks>
public sealed class Qwen3Reranker : IDisposable
{
    /// <summary>The model card's default instruction.</summary>
    public const string DefaultInstruction = "Given a web search query, retrieve relevant passages that answer the query";

    private const string Prefix =
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. " +
        "Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";

    private const string Suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

    private readonly int[] _prefix;
    private readonly int[] _suffix;
    private readonly double[] _yesMinusNo;

    private Qwen3Reranker(Qwen3Model model)
    {
        Model = model;
        var tokenizer = model.Tokenizer;
        _prefix = [.. tokenizer.Encode(Prefix)];
        _suffix = [.. tokenizer.Encode(Suffix)];
        string tokenizerFile = Path.Combine(model.Folder, "tokenizer.json");
        YesId = tokenizer.TokenToId("yes") ?? throw new ModelLoadException($"The tokenizer '{tokenizerFile}' has no token 'yes', which a Qwen3-Reranker answers with.", tokenizerFile);
        NoId = tokenizer.TokenToId("no") ?? throw new ModelLoadException($"The tokenizer '{tokenizerFile}' has no token 'no', which a Qwen3-Reranker answers with.", tokenizerFile);

        var head = model.Weights.LmHead!.Value;
        int hidden = model.Config.HiddenSize;
        var yes = new float[hidden];
        var no = new float[hidden];
        head.ReadRow(YesId, yes);
        head.ReadRow(NoId, no);
        _yesMinusNo = new double[hidden];
        for (int i = 0; i < hidden; i++)
        {
            _yesMinusNo[i] = (double)yes[i] - no[i];
        }
    }

    /// <summary>The model behind the scores.</summary>
    public Qwen3Model Model { get; }

    /// <summary>The token id of <c>yes</c>.</summary>
    public int YesId { get; }

    /// <summary>The token id of <c>no</c>.</summary>
    public int NoId { get; }

    /// <summary>Loads a Qwen3-Reranker model folder (config, safetensors weights in either tensor layout, <c>tokenizer.json</c>).</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">Threads and batching; null for the defaults.</param>
    /// <exception cref="ModelLoadException">A file is missing or malformed, the tensors fit neither layout, or the output head or the yes/no tokens are missing.</exception>
    /// <exception cref="NotSupportedException">The folder holds another architecture.</exception>
    public static Qwen3Reranker Load(string folder, Qwen3ModelOptions? options = null)
    {
        var model = Qwen3Model.Load(folder, options, requireHead: true);
        try
        {
            return new Qwen3Reranker(model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The prompt tokens of a pair, as the model card builds them: the system prefix, then
    /// <c>&lt;Instruct&gt;: {instruction}\n&lt;Query&gt;: {query}\n&lt;Document&gt;: {document}</c>, then the assistant
    /// turn with an empty think block; each part tokenized on its own.
    /// </summary>
    /// <param name="query">The query.</param>
    /// <param name="document">The document.</param>
    /// <param name="instruction">The task; null for <see cref="DefaultInstruction"/>.</param>
    public int[] EncodePair(string query, string document, string? instruction = null)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(document);
        var body = Model.Tokenizer.Encode($"<Instruct>: {instruction ?? DefaultInstruction}\n<Query>: {query}\n<Document>: {document}");
        return [.. _prefix, .. body, .. _suffix];
    }

    /// <summary>Scores how well <paramref name="document"/> meets <paramref name="query"/>.</summary>
    /// <param name="query">The query.</param>
    /// <param name="document">The document.</param>
    /// <param name="instruction">The task; null for <see cref="DefaultInstruction"/>.</param>
    /// <param name="cancellationToken">Stops the evaluation at the model's next step.</param>
    /// <returns>P(yes) from 0 to 1.</returns>
    /// <exception cref="ArgumentException">The prompt exceeds the model's <c>max_position_embeddings</c>.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    public async Task<double> ScoreAsync(string query, string document, string? instruction = null, CancellationToken cancellationToken = default) =>
        (await ScoreTokensAsync([EncodePair(query, document, instruction)], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>Scores every document against the query and returns them best first.</summary>
    /// <param name="query">The query.</param>
    /// <param name="documents">The candidates.</param>
    /// <param name="instruction">The task; null for <see cref="DefaultInstruction"/>.</param>
    /// <param name="topN">Return only the best this many; null for all.</param>
    /// <param name="cancellationToken">Stops the evaluations at the model's next step.</param>
    /// <returns>The documents' indices and scores, by descending score (ties by index).</returns>
    /// <exception cref="ArgumentException"><paramref name="documents"/> is empty, or a prompt exceeds <c>max_position_embeddings</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="topN"/> is below 1.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    public async Task<IReadOnlyList<RerankResult>> RerankAsync(
        string query, IReadOnlyList<string> documents, string? instruction = null, int? topN = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(documents);
        if (documents.Count == 0)
        {
            throw new ArgumentException("At least one document is needed.", nameof(documents));
        }

        if (topN < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topN), topN, "topN must be at least 1.");
        }

        var prompts = documents.Select(d => EncodePair(query, d ?? throw new ArgumentException("A document is null.", nameof(documents)), instruction)).ToArray();
        double[] scores = await ScoreTokensAsync(prompts, cancellationToken).ConfigureAwait(false);
        return Rank(scores, topN);
    }

    /// <summary>Scores prompts already built with <see cref="EncodePair"/>.</summary>
    /// <param name="prompts">Prompt token sequences.</param>
    /// <param name="cancellationToken">Stops the evaluations at the model's next step.</param>
    /// <returns>P(yes) of each prompt, in order.</returns>
    /// <exception cref="ArgumentException"><paramref name="prompts"/> is empty, or a prompt is empty or exceeds <c>max_position_embeddings</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token id is outside the vocabulary.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full.</exception>
    public async Task<double[]> ScoreTokensAsync(IReadOnlyList<int[]> prompts, CancellationToken cancellationToken = default)
    {
        FinalHiddenStates.Validate(Model, prompts, nameof(prompts));
        var scores = new double[prompts.Count];
        await FinalHiddenStates.RunAsync(Model, prompts, (i, hidden) => scores[i] = Score(hidden), cancellationToken).ConfigureAwait(false);
        return scores;
    }

    /// <summary>Indices by descending score, ties by index, cut to <paramref name="topN"/>.</summary>
    public static IReadOnlyList<RerankResult> Rank(IReadOnlyList<double> scores, int? topN = null)
    {
        ArgumentNullException.ThrowIfNull(scores);
        return scores.Select((score, index) => new RerankResult(index, score))
            .OrderByDescending(r => r.Score).ThenBy(r => r.Index)
            .Take(topN ?? scores.Count)
            .ToArray();
    }

    /// <summary>Disposes the model, after the calls in progress are done.</summary>
    public void Dispose() => Model.Dispose();

    /// <summary>softmax(no, yes)[yes] = sigmoid(logit_yes − logit_no) = sigmoid(h · (W_yes − W_no)).</summary>
    private double Score(ReadOnlySpan<float> hidden)
    {
        double margin = 0;
        for (int i = 0; i < hidden.Length; i++)
        {
            margin += hidden[i] * _yesMinusNo[i];
        }

        return 1 / (1 + Math.Exp(-margin));
    }
}

/// <summary>One document's place in a ranking.</summary>
/// <param name="Index">The document's index in the list given.</param>
/// <param name="Score">Its relevance, P(yes) from 0 to 1.</param>
public sealed record RerankResult(int Index, double Score);
