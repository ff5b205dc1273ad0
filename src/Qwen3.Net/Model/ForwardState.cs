using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// Everything one context mutates during a forward pass: the KV cache, the RoPE table and scratch buffers sized for
/// blocks of up to <see cref="BlockSize"/> tokens. Allocated once, so decoding allocates nothing; activations are
/// cache-line aligned for the kernels.
/// </summary>
internal sealed class ForwardState : IDisposable
{
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly AlignedBuffer[] _scratch;

    /// <summary>Faulting in the first block's memory; null once a forward pass has waited for it.</summary>
    private Task? _warming;

    public ForwardState(Qwen3Config c, int maxCapacity, int blockSize, int threadCount)
    {
        BlockSize = blockSize;
        int hidden = c.HiddenSize;
        X = new AlignedBuffer(blockSize * hidden);
        Xb = new AlignedBuffer(blockSize * hidden);
        Q = new AlignedBuffer(blockSize * c.NumAttentionHeads * c.HeadDim);
        K = new AlignedBuffer(blockSize * c.NumKeyValueHeads * c.HeadDim);
        V = new AlignedBuffer(blockSize * c.NumKeyValueHeads * c.HeadDim);
        Attention = new AlignedBuffer(blockSize * c.NumAttentionHeads * c.HeadDim);
        Gate = new AlignedBuffer(blockSize * c.IntermediateSize);
        Up = new AlignedBuffer(blockSize * c.IntermediateSize);
        Logits = new float[c.VocabSize];
        KvCache = new KvCache(c.NumHiddenLayers, c.NumKeyValueHeads, c.HeadDim, maxCapacity);
        Rope = new RopeTable(c);
        Pool = new WorkerPool(threadCount);
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _scratch = [X, Xb, Q, K, V, Attention, Gate, Up];

        // Room for one whole block, the scratch and the cache pages of the first BlockSize positions, is faulted in
        // on a thread of its own from now until the first evaluation, which waits for it. Left to the first long
        // prompt, the fresh memory cost it about 3% (a first 512-token prompt after a 128-token one, against the next
        // 512-token prompt; see HugePageBlock.FaultIn); done while creating the context it could add a few tenths of
        // a second to that on one thread. Pages past the first block come as the context reaches them.
        KvCache.EnsureCapacity(Math.Min(maxCapacity, blockSize), pool: null);
        _warming = Task.Factory.StartNew(
            static state => ((ForwardState)state!).FaultInFirstBlock(),
            this,
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    /// <summary>Most tokens one forward pass takes; longer inputs are evaluated in blocks.</summary>
    public int BlockSize { get; }

    public AlignedBuffer X { get; }
    public AlignedBuffer Xb { get; }
    public AlignedBuffer Q { get; }
    public AlignedBuffer K { get; }
    public AlignedBuffer V { get; }
    public AlignedBuffer Attention { get; }
    public AlignedBuffer Gate { get; }
    public AlignedBuffer Up { get; }                                  // up_proj output, consumed by the fused SwiGLU
    public float[] Logits { get; }
    public float[] Scores { get; private set; } = [];
    public KvCache KvCache { get; }
    public RopeTable Rope { get; }
    public WorkerPool Pool { get; }

    /// <summary>
    /// Sees the residual stream of the last token: index 0 = embedding, i = after layer i − 1, layers + 1 = after the final norm.
    /// For tests that compare hidden states with the reference; null otherwise.
    /// </summary>
    public Action<int, ReadOnlySpan<float>>? Observer { get; set; }

    /// <summary>
    /// Makes room for a block of <paramref name="tokens"/> tokens at positions from <paramref name="start"/>: cache
    /// pages, RoPE rows and score scratch.
    /// </summary>
    public void Reserve(int start, int tokens)
    {
        if (_warming is not null)
        {
            _warming.GetAwaiter().GetResult();
            _warming = null;
        }

        KvCache.EnsureCapacity(start + tokens, Pool);
        Rope.EnsureLength(start + tokens);
        EnsureScores(start + tokens);
    }

    private void FaultInFirstBlock()
    {
        foreach (AlignedBuffer buffer in _scratch)
        {
            buffer.FaultIn(null, 0, buffer.Length);
        }

        KvCache.FaultIn();
    }

    /// <summary>Attention scores of every thread for contexts up to <paramref name="length"/>; grows with the KV cache, not per token.</summary>
    private void EnsureScores(int length)
    {
        if (Scores.Length < Kernels.Attention.ScratchLength(Pool.ThreadCount, _heads, _kvHeads, length))
        {
            Scores = new float[Kernels.Attention.ScratchLength(Pool.ThreadCount, _heads, _kvHeads, Math.Max(length, KvCache.Capacity))];
        }
    }

    public void Dispose()
    {
        // The memory must outlive the thread still writing it.
        _warming?.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();
        _warming = null;
        Pool.Dispose();
        KvCache.Dispose();
        foreach (AlignedBuffer buffer in _scratch)
        {
            buffer.Dispose();
        }
    }
}
