using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// Keys and values of every layer for the positions evaluated so far, in pages of <see cref="PagePositions"/>
/// positions laid out [kvHeads, PagePositions, headDim], so that attention streams each key/value head contiguously
/// within a page. Pages are added as the context reaches them and never move: a long conversation costs one page
/// (about 2 MB per layer for Qwen3-1.7B) every 256 tokens, where doubling a contiguous cache allocated twice the size
/// and copied everything at each power of two (0.9 GB allocated and 0.5 GB copied at 2048 → 4096 positions for 1.7B).
/// The pages of all layers for the same positions are one <see cref="HugePageBlock"/> (56 MB for 1.7B).
/// </summary>
internal sealed class KvCache : IDisposable
{
    /// <summary>
    /// Positions per page: a multiple of the attention kernels' blocks (8 keys, 32 values), so no block straddles two
    /// pages.
    /// </summary>
    public const int PagePositions = 256;

    private readonly int _kvHeads;
    private readonly int _headDim;

    private readonly List<HugePageBlock> _blocks = [];
    private readonly nint[][] _keyPages;
    private readonly nint[][] _valuePages;

    public KvCache(int layers, int kvHeads, int headDim, int maxCapacity)
    {
        _kvHeads = kvHeads;
        _headDim = headDim;
        MaxCapacity = maxCapacity;
        int maxPages = (maxCapacity + PagePositions - 1) / PagePositions;
        _keyPages = new nint[layers][];
        _valuePages = new nint[layers][];
        for (int l = 0; l < layers; l++)
        {
            _keyPages[l] = new nint[maxPages];
            _valuePages[l] = new nint[maxPages];
        }
    }

    /// <summary>Positions that fit without adding a page.</summary>
    public int Capacity => PageCount * PagePositions;

    public int MaxCapacity { get; }

    private int PageCount { get; set; }

    /// <summary>Addresses of the layer's key pages, in position order.</summary>
    public ReadOnlySpan<nint> KeyPages(int layer) => _keyPages[layer].AsSpan(0, PageCount);

    /// <summary>Addresses of the layer's value pages, in position order.</summary>
    public ReadOnlySpan<nint> ValuePages(int layer) => _valuePages[layer].AsSpan(0, PageCount);

    /// <summary>
    /// Makes room for positions [0, length); existing entries keep their places. A new page is faulted in by every
    /// thread of <paramref name="pool"/> at once rather than by the one thread that writes the keys; with no pool it is
    /// left for <see cref="FaultIn"/> or the first write.
    /// </summary>
    public unsafe void EnsureCapacity(int length, WorkerPool? pool)
    {
        if (length > MaxCapacity)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"The KV cache holds at most {MaxCapacity} positions.");
        }

        long pageLength = (long)_kvHeads * PagePositions * _headDim;
        while (Capacity < length)
        {
            // Not cleared: every position is written before attention reads it.
            var block = new HugePageBlock(2 * _keyPages.Length * pageLength * sizeof(float));
            _blocks.Add(block);
            if (pool is not null)
            {
                block.FaultIn(pool, 0, block.Bytes);
            }

            for (int l = 0; l < _keyPages.Length; l++)
            {
                _keyPages[l][PageCount] = (nint)(block.Pointer + 2 * l * pageLength);
                _valuePages[l][PageCount] = (nint)(block.Pointer + (2 * l + 1) * pageLength);
            }

            PageCount++;
        }
    }

    /// <summary>
    /// Stores [tokens, kvHeads, headDim] rows for positions start.. of one layer; the tokens are shared out over
    /// <paramref name="pool"/> when there are enough of them.
    /// </summary>
    public unsafe void Write(WorkerPool pool, int layer, int start, int tokens, ReadOnlySpan<float> keys, ReadOnlySpan<float> values)
    {
        if (start < 0 || tokens < 0 || start + tokens > Capacity || keys.Length < tokens * _kvHeads * _headDim || values.Length < keys.Length)
        {
            throw new ArgumentException($"KV cache write of {tokens} positions at {start} does not fit {Capacity} positions or the rows given.");
        }

        fixed (nint* keyPages = _keyPages[layer])
        fixed (nint* valuePages = _valuePages[layer])
        fixed (float* k = keys)
        fixed (float* v = values)
        {
            var job = new Rows(keyPages, valuePages, k, v, start, _kvHeads, _headDim);
            pool.RunPass(ref job, tokens, 2L * tokens * _kvHeads * _headDim);
        }
    }

    /// <summary>Faults in every page made so far on the calling thread; not safe while the cache grows on another.</summary>
    public void FaultIn()
    {
        foreach (HugePageBlock block in _blocks)
        {
            block.FaultIn(null, 0, block.Bytes);
        }
    }

    /// <summary>Frees the pages; the addresses handed out before are invalid afterwards.</summary>
    public void Dispose()
    {
        foreach (HugePageBlock block in _blocks)
        {
            block.Dispose();
        }

        _blocks.Clear();
        PageCount = 0;
    }

    private readonly unsafe struct Rows(nint* keyPages, nint* valuePages, float* keys, float* values, int start, int kvHeads, int headDim) : IRangeJob
    {
        public void Execute(int first, int end, int worker)
        {
            for (int h = 0; h < kvHeads; h++)
            {
                var keyRows = new KvHeadRows(keyPages, PagePositions, h, headDim);
                var valueRows = new KvHeadRows(valuePages, PagePositions, h, headDim);
                for (int t = first; t < end; t++)
                {
                    long source = ((long)t * kvHeads + h) * headDim;
                    new ReadOnlySpan<float>(keys + source, headDim).CopyTo(new Span<float>(keyRows.Row(start + t), headDim));
                    new ReadOnlySpan<float>(values + source, headDim).CopyTo(new Span<float>(valueRows.Row(start + t), headDim));
                }
            }
        }
    }
}
