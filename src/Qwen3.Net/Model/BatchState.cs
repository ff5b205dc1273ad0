using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// One forward pass's batch: which tokens of which sequences it runs. Filled by the scheduler before each step; the
/// arrays are allocated once per model, so a step allocates nothing.
/// </summary>
internal sealed class ForwardBatch(int maxTokens, int maxSequences)
{
    /// <summary>Token ids of every segment, end to end.</summary>
    public int[] Tokens { get; } = new int[maxTokens];

    public BatchSegment[] Segments { get; } = new BatchSegment[maxSequences];

    public int TokenCount { get; set; }

    public int SegmentCount { get; set; }

    public int MaxTokens => Tokens.Length;

    public int MaxSequences => Segments.Length;

    public void Clear()
    {
        Array.Clear(Segments, 0, SegmentCount);
        TokenCount = 0;
        SegmentCount = 0;
    }

    public void Add(in BatchSegment segment, ReadOnlySpan<int> tokens)
    {
        tokens.CopyTo(Tokens.AsSpan(TokenCount));
        Segments[SegmentCount++] = segment with { Offset = TokenCount, Count = tokens.Length };
        TokenCount += tokens.Length;
    }

    /// <summary>Whether every segment's caller has given up, so the pass is not worth finishing.</summary>
    public bool AllCancelled()
    {
        for (int i = 0; i < SegmentCount; i++)
        {
            if (!Segments[i].Cancellation.IsCancellationRequested)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// A run of consecutive tokens of one sequence in a batch: tokens [Offset, Offset + Count) of the batch, at positions
/// [Start, Start + Count) of <see cref="Cache"/>. <see cref="Logits"/>, when set, receives the last token's logits.
/// </summary>
internal readonly record struct BatchSegment(
    KvCache Cache, int Start, float[]? Logits, CancellationToken Cancellation, Action<int, ReadOnlySpan<float>>? Observer)
{
    /// <summary>Whether <see cref="Logits"/> receives the last token's final-norm hidden state (hidden_size floats) instead, for embeddings.</summary>
    public bool HiddenOnly { get; init; }

    public int Offset { get; init; }

    public int Count { get; init; }
}

/// <summary>
/// The scratch of the forward pass, one per model: activations for a batch of up to <see cref="MaxTokens"/> tokens
/// (from any number of sequences), the RoPE table and the worker threads. The KV caches belong to the contexts.
/// Allocated once, so a step allocates nothing; activations are cache-line aligned for the kernels. Their memory is
/// faulted in as far as the largest step so far reaches, so a model that only decodes never holds a full block's
/// scratch (about 45 MB for 1.7B at 512 tokens, 720 MB at 8192).
/// </summary>
internal sealed class BatchState : IDisposable
{
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _vocab;
    private readonly AlignedBuffer[] _scratch;
    private int _scoreLength;

    public BatchState(Qwen3Config c, int maxTokens, WorkerPool pool)
    {
        MaxTokens = maxTokens;
        int hidden = c.HiddenSize;
        X = new AlignedBuffer(maxTokens * hidden);
        Xb = new AlignedBuffer(maxTokens * hidden);
        Q = new AlignedBuffer(maxTokens * c.NumAttentionHeads * c.HeadDim);
        K = new AlignedBuffer(maxTokens * c.NumKeyValueHeads * c.HeadDim);
        V = new AlignedBuffer(maxTokens * c.NumKeyValueHeads * c.HeadDim);
        Attention = new AlignedBuffer(maxTokens * c.NumAttentionHeads * c.HeadDim);
        Gate = new AlignedBuffer(maxTokens * c.IntermediateSize);
        Up = new AlignedBuffer(maxTokens * c.IntermediateSize);
        Rope = new RopeTable(c);
        Pool = pool;
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _vocab = c.VocabSize;
        _scratch = [X, Xb, Q, K, V, Attention, Gate, Up];
    }

    /// <summary>Most tokens one forward pass takes.</summary>
    public int MaxTokens { get; }

    /// <summary>Tokens whose scratch is faulted in: as many as the largest step so far, or the scheduler's first share.</summary>
    public int FaultedTokens { get; private set; }

    public AlignedBuffer X { get; }
    public AlignedBuffer Xb { get; }
    public AlignedBuffer Q { get; }
    public AlignedBuffer K { get; }
    public AlignedBuffer V { get; }
    public AlignedBuffer Attention { get; }
    public AlignedBuffer Gate { get; }
    public AlignedBuffer Up { get; }                                  // up_proj output, consumed by the fused SwiGLU
    public float[] Scores { get; private set; } = [];
    public float[] LastHidden { get; private set; } = [];             // (sequences, hidden) normalized last tokens
    public float[] Logits { get; private set; } = [];                 // (sequences, vocab)
    public RopeTable Rope { get; }
    public WorkerPool Pool { get; }

    /// <summary>
    /// Makes room for a batch of <paramref name="tokens"/> tokens whose longest sequence reaches <paramref name="length"/>
    /// positions and which wants the logits of <paramref name="sequences"/> sequences: the activations' memory faulted
    /// in, RoPE rows, score and logits scratch. Grows, never per token.
    /// </summary>
    public void Reserve(int tokens, int length, int sequences, int hidden)
    {
        FaultIn(tokens);
        Rope.EnsureLength(length);
        if (length > _scoreLength)
        {
            // Doubling (in whole KV pages), so a growing conversation does not reallocate at every position.
            _scoreLength = Math.Max(length, 2 * _scoreLength);
            _scoreLength = (_scoreLength + KvCache.PagePositions - 1) / KvCache.PagePositions * KvCache.PagePositions;
            Scores = new float[Kernels.Attention.ScratchLength(Pool.ThreadCount, _heads, _kvHeads, _scoreLength)];
        }

        if (LastHidden.Length < sequences * hidden)
        {
            LastHidden = new float[sequences * hidden];
            Logits = new float[sequences * _vocab];
        }
    }

    /// <summary>
    /// Faults in the scratch of the first <paramref name="tokens"/> tokens on the pool's threads, where an earlier
    /// call has not, so no kernel meets fresh memory; the memory is touched once and kept.
    /// </summary>
    public void FaultIn(int tokens)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(tokens, MaxTokens);
        if (tokens <= FaultedTokens)
        {
            return;
        }

        foreach (AlignedBuffer buffer in _scratch)
        {
            int width = buffer.Length / MaxTokens;
            buffer.FaultIn(Pool, FaultedTokens * width, (tokens - FaultedTokens) * width);
        }

        FaultedTokens = tokens;
    }

    public void Dispose()
    {
        foreach (AlignedBuffer buffer in _scratch)
        {
            buffer.Dispose();
        }
    }
}
