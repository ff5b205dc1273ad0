using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Qwen3.Net.Engine;
using Qwen3.Net.Model;

namespace Qwen3.Net;

/// <summary>
/// One sequence being evaluated: its tokens, their KV cache and the logits of the last one. A context owns no threads
/// and no scratch: its evaluations are queued to the model's scheduler, which runs them in the same forward passes as
/// other contexts' (each weight is read once per step for all of them).
/// </summary>
/// <remarks>
/// A context is used by one thread at a time; many contexts of one <see cref="Qwen3Model"/> can evaluate on many
/// threads at once, and that is what batches them. Full KV pages (256 positions) of identical prefixes are shared
/// between contexts and kept for a while after their context is disposed (<see cref="Qwen3ModelOptions.RetainedCacheBytes"/>),
/// so a prompt that starts with tokens another context already evaluated computes only the rest.
/// </remarks>
public sealed class InferenceContext : IDisposable
{
    private readonly Qwen3Model _model;
    private readonly EvaluationRequest _request;
    private int[] _tokens = [];
    private int _busy;
    private bool _disposed;

    internal InferenceContext(Qwen3Model model, int capacity)
    {
        _model = model;
        Capacity = capacity;
        var c = model.Config;
        Cache = new KvCache(model.PagePool, c.NumKeyValueHeads, c.HeadDim, capacity);
        LogitsBuffer = new float[c.VocabSize];
        _request = new EvaluationRequest(this);
    }

    /// <summary>Tokens evaluated so far: the position the next token will take.</summary>
    public int Position { get; private set; }

    /// <summary>Most tokens this context can hold.</summary>
    public int Capacity { get; }

    /// <summary>The model this context evaluates.</summary>
    public Qwen3Model Model => _model;

    /// <summary>The tokens evaluated so far, positions [0, <see cref="Position"/>).</summary>
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Position);

    /// <summary>
    /// How many tokens of the last evaluation were taken from KV pages another context (or an earlier one) had
    /// already computed for the same prefix, instead of being computed again.
    /// </summary>
    public int SharedTokens { get; private set; }

    internal KvCache Cache { get; }

    internal float[] LogitsBuffer { get; }

    /// <summary>
    /// Sees the residual stream of the last token of each evaluated chunk: index 0 = embedding, i = after layer i − 1,
    /// layers + 1 = after the final norm. For tests that compare hidden states with the reference; null otherwise.
    /// </summary>
    internal Action<int, ReadOnlySpan<float>>? Observer { get; set; }

    /// <summary>
    /// Appends tokens at the current position (a whole prompt, or one token while decoding) and returns the logits
    /// that predict the token after the last one. The span is valid until the next call on this context.
    /// </summary>
    /// <param name="tokens">Token ids, each in [0, vocab_size).</param>
    /// <returns>vocab_size logits.</returns>
    /// <exception cref="ArgumentException"><paramref name="tokens"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token id is outside the vocabulary.</exception>
    /// <exception cref="ContextOverflowException">The tokens do not fit; nothing was evaluated.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full; nothing was evaluated.</exception>
    /// <exception cref="InvalidOperationException">Another thread is using this context.</exception>
    /// <exception cref="ObjectDisposedException">The context or its model has been disposed.</exception>
    public ReadOnlySpan<float> Evaluate(scoped ReadOnlySpan<int> tokens) => Evaluate(tokens, CancellationToken.None);

    /// <summary>
    /// Appends tokens at the current position and returns the logits that predict the token after the last one; a long
    /// prompt can be cancelled. The span is valid until the next call on this context.
    /// </summary>
    /// <param name="tokens">Token ids, each in [0, vocab_size).</param>
    /// <param name="cancellationToken">
    /// Stops the evaluation at the next step of the model's scheduler, or between two layers when no other context is
    /// in that step. The tokens evaluated before that are kept: <see cref="Position"/> says how many.
    /// </param>
    /// <returns>vocab_size logits.</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    /// <exception cref="ArgumentException"><paramref name="tokens"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token id is outside the vocabulary.</exception>
    /// <exception cref="ContextOverflowException">The tokens do not fit; nothing was evaluated.</exception>
    /// <exception cref="QueueFullException">The model's evaluation queue is full; nothing was evaluated.</exception>
    /// <exception cref="InsufficientMemoryException">
    /// The machine has not the memory for the KV cache page the tokens need; the tokens evaluated before are kept.
    /// </exception>
    /// <exception cref="InvalidOperationException">Another thread is using this context.</exception>
    /// <exception cref="ObjectDisposedException">The context or its model has been disposed.</exception>
    public ReadOnlySpan<float> Evaluate(scoped ReadOnlySpan<int> tokens, CancellationToken cancellationToken)
    {
        Begin(tokens, cancellationToken, asynchronous: false);
        try
        {
            _model.Scheduler.Submit(_request);
            _request.Wait();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }

        return End();
    }

    /// <summary>
    /// Appends tokens at the current position without blocking the calling thread, and returns the logits that predict
    /// the token after the last one, valid until the next call on this context.
    /// </summary>
    /// <inheritdoc cref="Evaluate(ReadOnlySpan{int}, CancellationToken)"/>
    // Pooled state machines: a decoding stream awaits this once per token, and the default builder boxes each await.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<float>> EvaluateAsync(ReadOnlyMemory<int> tokens, CancellationToken cancellationToken = default)
    {
        Begin(tokens.Span, cancellationToken, asynchronous: true);
        try
        {
            _model.Scheduler.Submit(_request);
            await _request.AsValueTask().ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }

        End();
        return LogitsBuffer;
    }

    /// <summary>How many leading tokens of <paramref name="tokens"/> this context already holds, in order.</summary>
    public int CommonPrefixLength(ReadOnlySpan<int> tokens) => Tokens.CommonPrefixLength(tokens);

    /// <summary>
    /// Rewinds to the first <paramref name="tokens"/> positions, keeping their cached keys and values, so a prompt that
    /// shares a prefix with what was evaluated only needs its new tail evaluated.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tokens"/> is negative or beyond <see cref="Position"/>.</exception>
    public void Truncate(int tokens)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tokens, Position);
        Position = tokens;
    }

    /// <summary>Returns the KV cache pages to the model (they stay findable as shared prefixes within its retention budget).</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;

            // An evaluation still running on another thread (which the one-thread rule forbids) must finish before the
            // pages go back to the pool, or another context could be handed a page this one is still writing.
            var spin = default(SpinWait);
            while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            {
                spin.SpinOnce();
            }

            Cache.Dispose();
        }
    }

    /// <summary>
    /// On the scheduler thread, when the request is first seen: takes the full pages at the start of the request that
    /// another context already computed for the same tokens, so they are not computed again. At least the last token
    /// is always computed, since its logits are the result.
    /// </summary>
    internal void TakeSharedPrefix(EvaluationRequest request)
    {
        const int page = KvCache.PagePositions;
        while (Position % page == 0 && request.Remaining > page)
        {
            var tokens = request.Tokens.Slice(request.Done, page);
            if (!Cache.TryShare(Position / page, tokens))
            {
                break;
            }

            Append(tokens);
            request.Done += page;
            request.Reused += page;
        }
    }

    /// <summary>On the scheduler thread, after a step computed <paramref name="tokens"/> of this context: records them and offers pages they filled for sharing.</summary>
    internal void Advance(ReadOnlySpan<int> tokens)
    {
        const int page = KvCache.PagePositions;
        int before = Position;
        Append(tokens);
        for (int index = before / page; (index + 1) * page <= Position; index++)
        {
            Cache.Register(index, _tokens.AsSpan(index * page, page));
        }
    }

    private void Append(ReadOnlySpan<int> tokens)
    {
        if (_tokens.Length < Position + tokens.Length)
        {
            Array.Resize(ref _tokens, Math.Min(Capacity, Math.Max(Position + tokens.Length, 2 * _tokens.Length)));
        }

        tokens.CopyTo(_tokens.AsSpan(Position));
        Position += tokens.Length;
    }

    private void Begin(ReadOnlySpan<int> tokens, CancellationToken cancellationToken, bool asynchronous)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("At least one token is needed.", nameof(tokens));
        }

        int vocab = _model.Config.VocabSize;
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"Token {i} is {tokens[i]}, outside the vocabulary [0, {vocab}).");
            }
        }

        if (tokens.Length > Capacity - Position)
        {
            throw new ContextOverflowException(Position, tokens.Length, Capacity);
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            throw new InvalidOperationException("This context is already evaluating on another thread; use one context per thread.");
        }

        _request.Prepare(tokens, cancellationToken, asynchronous);
    }

    private ReadOnlySpan<float> End()
    {
        SharedTokens = _request.Reused;
        if (_request.Failure is { } failure)
        {
            if (failure is OperationCanceledException)
            {
                throw new OperationCanceledException($"Evaluation cancelled after {_request.Done} of {_request.Count} tokens.", _request.Cancellation);
            }

            ExceptionDispatchInfo.Throw(failure);
        }

        return LogitsBuffer;
    }
}
