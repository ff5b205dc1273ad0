using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// One context's keys and values for the positions evaluated so far: a table of pages of <see cref="PagePositions"/>
/// positions rented from the model's <see cref="KvPagePool"/>, laid out [kvHeads, PagePositions, headDim] per layer so
/// attention streams each key/value head contiguously within a page. Pages never move, so a long conversation costs one
/// page every 256 tokens and copies nothing; full pages of a shared prefix may be held by several contexts at once and
/// are copied before one of them writes into them.
/// </summary>
internal sealed class KvCache : IDisposable
{
    /// <summary>
    /// Positions per page: a multiple of the attention kernels' blocks (8 keys, 32 values), so no block straddles two
    /// pages.
    /// </summary>
    public const int PagePositions = 256;

    /// <summary>A page rented ahead is faulted in by whole transparent huge pages (its block is aligned to them).</summary>
    private const long FaultSliceBytes = 2 * 1024 * 1024;

    /// <summary>
    /// What <see cref="FaultTowards"/> faults in per step: four huge pages, about 13 ms on a VM that backs memory at
    /// 0.6 GB/s, against a whole 1.7B page's 60 ms.
    /// </summary>
    private const long TrickleShareBytes = 4 * FaultSliceBytes;

    private readonly KvPagePool _pool;
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly KvPage?[] _pages;
    private readonly nint[][] _keyPages;
    private readonly nint[][] _valuePages;

    public KvCache(KvPagePool pool, int kvHeads, int headDim, int maxCapacity)
    {
        _pool = pool;
        _kvHeads = kvHeads;
        _headDim = headDim;
        MaxCapacity = maxCapacity;
        int maxPages = (maxCapacity + PagePositions - 1) / PagePositions;
        _pages = new KvPage?[maxPages];
        _keyPages = new nint[pool.Layers][];
        _valuePages = new nint[pool.Layers][];
        for (int l = 0; l < pool.Layers; l++)
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

    /// <summary>The page holding positions [index · PagePositions, …), for tests.</summary>
    internal KvPage Page(int index) => _pages[index]!;

    /// <summary>The id of the page holding positions [index · PagePositions, …), for chaining prefix keys.</summary>
    public long PageId(int index) => _pages[index]!.Id;

    /// <summary>
    /// Makes positions [start, end) writable: pages are added up to <paramref name="end"/>, and pages in the range that
    /// are shared with other contexts or registered as a prefix are copied first (copy-on-write). Fresh pages are faulted
    /// in on every thread of <paramref name="faultPool"/> rather than by the one thread that first writes them.
    /// </summary>
    /// <remarks>
    /// Once the last page is more than half written, the next one is rented ahead and faulted in by huge pages, as the
    /// writes' share in proportion to the positions written reaches them, so it is whole by the time writes reach it.
    /// Faulting in a fresh page costs most of a one-token step on a VM whose host backs memory at first touch
    /// (docs/benchmarks.md); paid at once, it stalled every sequence of that step.
    /// </remarks>
    public void PrepareWrite(int start, int end, WorkerPool? faultPool)
    {
        if (end > MaxCapacity)
        {
            throw new ArgumentOutOfRangeException(nameof(end), end, $"The KV cache holds at most {MaxCapacity} positions.");
        }

        while (Capacity < end)
        {
            SetPage(PageCount, _pool.Rent(faultPool));
            PageCount++;
        }

        for (int index = start / PagePositions; index < PageCount && index * PagePositions < end; index++)
        {
            var page = _pages[index]!;
            var writable = _pool.MakeWritable(page, faultPool);
            if (!ReferenceEquals(writable, page))
            {
                SetPage(index, writable);
            }

            // A page rented ahead that writes reached before it was whole.
            writable.FaultIn(faultPool, writable.Block.Bytes);
        }

        FaultAhead(end, end - start, faultPool);
    }

    /// <summary>
    /// Readies the pages a write of positions [<paramref name="start"/>, <paramref name="end"/>) needs a share at a
    /// time, for a write that must not stall a step other sequences are in: missing pages are rented as pages ahead are,
    /// and one share (<see cref="TrickleShareBytes"/>) of the first that is not whole is faulted in.
    /// </summary>
    /// <returns>Whether every page the write needs is whole now, so <see cref="PrepareWrite"/> faults nothing more in.</returns>
    /// <exception cref="InsufficientMemoryException">The machine has not the memory for a page the write needs.</exception>
    public bool FaultTowards(int start, int end, WorkerPool? faultPool)
    {
        if (end > MaxCapacity)
        {
            return true; // PrepareWrite refuses it
        }

        while (Capacity < end)
        {
            SetPage(PageCount, _pool.Rent(faultPool, ahead: true));
            PageCount++;
        }

        bool faulted = false;
        for (int index = start / PagePositions; index < PageCount && index * PagePositions < end; index++)
        {
            var page = _pages[index]!;
            if (page.FaultedBytes < page.Block.Bytes)
            {
                if (faulted)
                {
                    return false;
                }

                page.FaultIn(faultPool, page.FaultedBytes + TrickleShareBytes);
                faulted = true;
                if (page.FaultedBytes < page.Block.Bytes)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// After a write of <paramref name="written"/> positions up to <paramref name="end"/>: once the last page is more
    /// than half written and the capacity reaches past it, the next page is rented, and faulted in at once as far as the
    /// positions left before writes reach it could not fault it in at <see cref="TrickleShareBytes"/> a write (a prompt
    /// that ends at a page's end pays for the next page, not the first decode step); from the next write on, a page
    /// rented ahead gets its share, in proportion to the positions written, in whole huge pages.
    /// </summary>
    private void FaultAhead(int end, int written, WorkerPool? faultPool)
    {
        const int half = PagePositions / 2;
        if (PageCount == 0 || written <= 0)
        {
            return;
        }

        if ((PageCount - 1) * PagePositions < end)
        {
            // A recycled page costs nothing to rent ahead and a fresh one returns to the pool, so even a page that only
            // the last few positions of the capacity would use is rented: faulting it in costs the same later.
            if (Capacity - end >= half || Capacity >= MaxCapacity)
            {
                return;
            }

            int left = Capacity - end;
            try
            {
                SetPage(PageCount, _pool.Rent(faultPool, ahead: true));
                PageCount++;
            }
            catch (Exception e) when (e is InsufficientMemoryException or OutOfMemoryException)
            {
                // Only ahead of need: the write that needs the page asks again, and fails alone if memory is still short.
                return;
            }

            // The write that rents it faults in only what the positions left could not.
            var ahead = _pages[PageCount - 1]!;
            FaultInSlices(ahead, ahead.Block.Bytes - left * TrickleShareBytes, faultPool);
            return;
        }

        var last = _pages[PageCount - 1]!;
        int beforeLast = (PageCount - 1) * PagePositions;
        long share = (long)Math.Ceiling((double)(last.Block.Bytes - last.FaultedBytes) * written / (beforeLast - end + written));

        // Rounded down to whole huge pages: rounded up, every one-position write faulted in a huge page, and the page was
        // whole, and resident, half way through the one before it. The last write before the page still makes it whole.
        long target = last.FaultedBytes + share;
        last.FaultIn(faultPool, target >= last.Block.Bytes ? target : target / FaultSliceBytes * FaultSliceBytes);
    }

    private static void FaultInSlices(KvPage page, long end, WorkerPool? faultPool) =>
        page.FaultIn(faultPool, (end + FaultSliceBytes - 1) / FaultSliceBytes * FaultSliceBytes);

    /// <summary>
    /// Takes the page at <paramref name="index"/> from the pool's shared prefixes, if one holds exactly
    /// <paramref name="tokens"/> after this cache's page index − 1; the page this cache had there is let go.
    /// </summary>
    public bool TryShare(int index, ReadOnlySpan<int> tokens)
    {
        long parent = index == 0 ? 0 : PageId(index - 1);
        var shared = _pool.Find(parent, tokens);
        if (shared is null)
        {
            return false;
        }

        if (index < PageCount)
        {
            _pool.Release(_pages[index]!);
        }
        else
        {
            PageCount++;
        }

        SetPage(index, shared);
        return true;
    }

    /// <summary>Offers the full page at <paramref name="index"/>, which holds <paramref name="tokens"/>, for sharing.</summary>
    public void Register(int index, ReadOnlySpan<int> tokens) =>
        _pool.Register(_pages[index]!, index == 0 ? 0 : PageId(index - 1), tokens);

    /// <summary>
    /// Stores [tokens, kvHeads, headDim] rows for positions start.. of one layer; the tokens are shared out over
    /// <paramref name="pool"/> when there are enough of them. <see cref="PrepareWrite"/> must have made them writable.
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

    /// <summary>Returns the pages to the pool; the addresses handed out before are invalid afterwards.</summary>
    public void Dispose()
    {
        for (int i = 0; i < PageCount; i++)
        {
            _pool.Release(_pages[i]!);
            _pages[i] = null;
        }

        PageCount = 0;
    }

    private unsafe void SetPage(int index, KvPage page)
    {
        _pages[index] = page;
        float* block = page.Block.Pointer;
        for (int l = 0; l < _keyPages.Length; l++)
        {
            _keyPages[l][index] = (nint)(block + 2 * l * _pool.PageFloats);
            _valuePages[l][index] = (nint)(block + (2 * l + 1) * _pool.PageFloats);
        }
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
