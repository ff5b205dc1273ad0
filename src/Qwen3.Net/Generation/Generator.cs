using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Qwen3.Net.Generation;

/// <summary>Options of one <see cref="Generator.GenerateAsync"/> call.</summary>
public sealed record GenerationOptions
{
    /// <summary>How tokens are chosen, the token limit and stop strings; greedy by default.</summary>
    public SamplingOptions Sampling
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(Sampling));
    } = SamplingOptions.Greedy;

    /// <summary>Token ids that end generation; null (the default) for the model's end-of-turn ids (<c>eos_token_id</c> and <c>&lt;|im_end|&gt;</c>).</summary>
    public IReadOnlyList<int>? StopTokenIds { get; init; }

    /// <summary>Whether special tokens (<c>&lt;|im_end|&gt;</c>, <c>&lt;|endoftext|&gt;</c>, …) are left out of the text; true by default.</summary>
    public bool SkipSpecialTokens { get; init; } = true;

    /// <summary>
    /// Further tokens left out of the text, which no stop string spans: markers whose meaning the caller reads from the
    /// token id, such as Qwen3's <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c> (added tokens that are not special).
    /// </summary>
    public IReadOnlyCollection<int> HiddenTokenIds { get; init; } = [];

    /// <summary>
    /// The shape the output must take; null or <see cref="Generation.ResponseFormat.Text"/> for free text. Under a
    /// constraint, tokens that would break the shape are removed before sampling, and once the output is complete only
    /// an end-of-turn token may follow (<c>&lt;|im_end|&gt;</c> and <c>&lt;|endoftext|&gt;</c> then end generation).
    /// </summary>
    public ResponseFormat? ResponseFormat { get; init; }

    /// <summary>
    /// The output opens with a think block that <see cref="ResponseFormat"/> does not constrain: <c>&lt;think&gt;</c> is
    /// generated first (unless <see cref="StartsInThinking"/>), end-of-turn tokens are held back until <c>&lt;/think&gt;</c>,
    /// and the format applies from the token after it. Ignored without a format.
    /// </summary>
    public bool ConstrainAfterThinking { get; init; }

    /// <summary>The prompt ends inside an open think block, so generation starts as reasoning.</summary>
    public bool StartsInThinking { get; init; }

    /// <summary>
    /// Most tokens generated inside a think block; when reached, <c>&lt;/think&gt;</c> is the next token. Null (the
    /// default) for no limit. At least 0.
    /// </summary>
    public int? MaxThinkingTokens
    {
        get;
        init => field = ArgumentChecks.NullOrNotNegative(value, nameof(MaxThinkingTokens));
    }
}

/// <summary>
/// One step of a generation: a generated token and the text released with it. The last update of a generation has
/// <see cref="FinishReason"/> and <see cref="Usage"/> set.
/// </summary>
/// <param name="TokenId">The generated token; -1 on a last update that carries no token (cancelled before one was chosen).</param>
/// <param name="Text">
/// Text that is final as of this token: complete characters only, and never part of a stop string; possibly empty. Text
/// released at a special token came before it.
/// </param>
/// <param name="FinishReason">Why generation ended, on the last update; null before.</param>
/// <param name="Usage">Token counts and timings, on the last update; null before.</param>
public readonly record struct GenerationUpdate(int TokenId, string Text, FinishReason? FinishReason = null, GenerationUsage? Usage = null);

/// <summary>
/// Generates tokens after a prompt on one <see cref="InferenceContext"/>: evaluates what the context does not already
/// hold of the prompt, then samples, streams detokenized text, and stops at an end-of-turn token, a stop string, the
/// token limit, a full context or cancellation. The one generation loop of the library: chat sessions, the console and
/// the benchmarks run on it.
/// </summary>
/// <remarks>
/// Each token is evaluated through the model's scheduler, so generators on different contexts of one model decode in
/// the same forward passes. A generator runs one generation at a time, like its context.
/// </remarks>
public sealed class Generator
{
    private readonly InferenceContext _context;
    private readonly Qwen3Tokenizer _tokenizer;
    private readonly int[] _endOfTurnIds;

    /// <summary>Creates a generator that runs on <paramref name="context"/>.</summary>
    /// <param name="context">The context; prompts reuse whatever prefix of theirs it already holds.</param>
    public Generator(InferenceContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _tokenizer = context.Model.Tokenizer;
        _endOfTurnIds = [.. context.Model.Config.EosTokenIds.Append(_tokenizer.ImEndId).Distinct()];
    }

    /// <summary>The context generation runs on.</summary>
    public InferenceContext Context => _context;

    /// <summary>
    /// Streams the tokens generated after <paramref name="prompt"/>. The context is first rewound to the longest prefix
    /// of the prompt it holds (reused, not evaluated again), then the rest of the prompt is evaluated.
    /// </summary>
    /// <param name="prompt">The prompt's token ids; at least one.</param>
    /// <param name="options">Sampling, stop tokens and text options; null for greedy decoding to an end-of-turn token.</param>
    /// <param name="cancellationToken">Ends generation within one step; the last update then has <see cref="FinishReason.Cancelled"/>.</param>
    /// <returns>One update per generated token; the last one has the finish reason and usage.</returns>
    /// <exception cref="ArgumentException">(On enumeration) the prompt is empty or holds an id outside the vocabulary.</exception>
    /// <exception cref="ContextOverflowException">(On enumeration) the prompt and one generated token do not fit in the context; nothing was evaluated.</exception>
    /// <exception cref="QueueFullException">(On enumeration) the model's evaluation queue is full.</exception>
    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(
        ReadOnlyMemory<int> prompt, GenerationOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new GenerationOptions();
        if (prompt.IsEmpty)
        {
            throw new ArgumentException("The prompt needs at least one token.", nameof(prompt));
        }

        // Checked before anything is evaluated: the prompt and at least one generated token must fit.
        if (prompt.Length + 1 > _context.Capacity)
        {
            throw new ContextOverflowException(0, prompt.Length + 1, _context.Capacity);
        }

        var sampling = options.Sampling;
        var stopIds = options.StopTokenIds ?? _endOfTurnIds;
        var clock = Stopwatch.StartNew();

        // At least the last prompt token is evaluated again: its logits predict the first generated token.
        int reused = Math.Min(_context.CommonPrefixLength(prompt.Span), prompt.Length - 1);
        _context.Truncate(reused);
        var (completed, logits) = await EvaluateAsync(prompt[reused..], cancellationToken).ConfigureAwait(false);
        reused += _context.SharedTokens;
        var prefillTime = clock.Elapsed;
        clock.Restart();
        if (!completed)
        {
            yield return new GenerationUpdate(-1, string.Empty, FinishReason.Cancelled, new GenerationUsage(prompt.Length, reused, 0, prefillTime, TimeSpan.Zero));
            yield break;
        }

        var sampler = new Sampler(logits.Length, sampling, prompt.Span, sampling.Seed ?? (ulong)Random.Shared.NextInt64());
        var detokenizer = new StreamingDetokenizer(_tokenizer, options.SkipSpecialTokens);
        var stops = new StopStringMatcher(sampling.StopStrings);
        var next = new int[1];
        var constraint = new OutputConstraint(_tokenizer, options, stopIds);
        int generated = 0;
        while (true)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                yield return new GenerationUpdate(-1, string.Empty, FinishReason.Cancelled, Usage());
                yield break;
            }

            int token = constraint.Next(sampler, logits.Span);
            sampler.Accept(token);
            generated++;
            if (stopIds.Contains(token) || constraint.IsFinished)
            {
                yield return new GenerationUpdate(token, stops.Flush() + detokenizer.Flush(), FinishReason.Stop, Usage());
                yield break;
            }

            // Ids past the tokenizer's vocabulary are embedding padding: they exist in the model but have no text.
            bool hidden = options.HiddenTokenIds.Contains(token);
            string piece = token < _tokenizer.VocabularySize && !hidden ? detokenizer.Append(token) : string.Empty;
            if (stops.PushToken(hidden || _tokenizer.IsSpecialToken(token), piece, out string released))
            {
                yield return new GenerationUpdate(token, released, FinishReason.StopString, Usage());
                yield break;
            }

            if (generated == sampling.MaxNewTokens)
            {
                yield return new GenerationUpdate(token, released + stops.Flush() + detokenizer.Flush(), FinishReason.Length, Usage());
                yield break;
            }

            if (_context.Position == _context.Capacity)
            {
                yield return new GenerationUpdate(token, released + stops.Flush() + detokenizer.Flush(), FinishReason.ContextFull, Usage());
                yield break;
            }

            yield return new GenerationUpdate(token, released);
            next[0] = token;
            (completed, logits) = await EvaluateAsync(next, cancellationToken).ConfigureAwait(false);
            if (!completed)
            {
                yield return new GenerationUpdate(-1, string.Empty, FinishReason.Cancelled, Usage());
                yield break;
            }
        }

        GenerationUsage Usage() => new(prompt.Length, reused, generated, prefillTime, clock.Elapsed) { ConstrainedSteps = constraint.ConstrainedSteps };
    }

    /// <summary>Evaluates tokens; false when the caller cancelled (an iterator cannot yield from a catch block).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(bool Completed, ReadOnlyMemory<float> Logits)> EvaluateAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken)
    {
        try
        {
            return (true, await _context.EvaluateAsync(tokens, cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return (false, default);
        }
    }
}
