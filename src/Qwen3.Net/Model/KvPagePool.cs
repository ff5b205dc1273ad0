using Qwen3.Net.Kernels;

namespace Qwen3.Net.Model;

/// <summary>
/// Keys and values of every layer for <see cref="KvCache.PagePositions"/> positions: the unit the KV cache grows by and
/// the unit sequences share. Laid out per layer as keys then values, each [kvHeads, PagePositions, headDim].
/// </summary>
internal sealed class KvPage(HugePageBlock block)
{
    public HugePageBlock Block { get; } = block;

    /// <summary>Contexts whose page table holds this page; guarded by the pool's lock.</summary>
    public int References { get; set; }

    /// <summary>Changes whenever the page's contents stop being what a registration describes, so stale keys never match.</summary>
    public long Id { get; set; }

    /// <summary>The prefix this page holds, once it is full and registered for sharing; null otherwise.</summary>
    public PrefixKey? Key { get; set; }

    /// <summary>Its node in the pool's list of idle registered pages, while no context holds it.</summary>
    public LinkedListNode<KvPage>? IdleNode { get; set; }

    /// <summary>
    /// Bytes from the start of the block already faulted in: all of a page rented for use, a growing share of one rented
    /// ahead (<see cref="KvPagePool.Rent"/>). Only the thread that writes the page (the scheduler's) changes it.
    /// </summary>
    public long FaultedBytes { get; private set; }

    /// <summary>Faults the block in up to <paramref name="end"/> bytes (at most all of it) on <paramref name="pool"/>'s threads, or the calling thread's.</summary>
    public void FaultIn(WorkerPool? pool, long end)
    {
        end = Math.Min(end, Block.Bytes);
        if (end > FaultedBytes)
        {
            Block.FaultIn(pool, FaultedBytes, end - FaultedBytes);
            FaultedBytes = end;
        }
    }
}

/// <summary>A full page's identity: the page before it (by id, 0 for the first) and its own tokens.</summary>
internal sealed record PrefixKey(long ParentId, int[] Tokens, ulong Hash)
{
    public static ulong HashOf(long parentId, ReadOnlySpan<int> tokens)
    {
        // A 64-bit mix; matches are checked against the stored tokens, so a collision costs a miss, never a wrong page.
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)parentId;
        foreach (int token in tokens)
        {
            h = (h ^ (uint)token) * 0xBF58476D1CE4E5B9UL;
            h ^= h >> 31;
        }

        return h;
    }
}

/// <summary>
/// The KV pages of one model: every context rents its pages here and returns them, so memory that was written once is
/// reused rather than freed and faulted in again, and full pages of identical token prefixes are shared between
/// contexts with reference counts (as vLLM's and nano-vllm's block managers do). A page that no context holds any more
/// keeps its prefix registration while the pool's retention budget allows, so a later conversation with the same
/// system prompt, or the next call of a stateless client carrying the same history, prefills only what is new.
/// Thread-safe: contexts rent and return pages from any thread.
/// </summary>
internal sealed class KvPagePool : IDisposable
{
    private readonly Lock _gate = new();
    private readonly long _pageBytes;
    private readonly long _retainedBytesLimit;
    private readonly Stack<KvPage> _free = new();
    private readonly LinkedList<KvPage> _idle = new();            // registered pages no context holds, oldest first
    private readonly Dictionary<ulong, KvPage> _prefixes = [];
    private readonly List<KvPage> _all = [];
    private long _nextId = 1;
    private bool _disposed;

    /// <param name="layers">Layers of the model.</param>
    /// <param name="kvHeads">Key/value heads.</param>
    /// <param name="headDim">Elements per head.</param>
    /// <param name="retainedBytesLimit">Most bytes of pages kept for reuse while no context holds them.</param>
    public KvPagePool(int layers, int kvHeads, int headDim, long retainedBytesLimit)
    {
        Layers = layers;
        PageFloats = (long)kvHeads * KvCache.PagePositions * headDim;
        _pageBytes = 2L * layers * PageFloats * sizeof(float);
        _retainedBytesLimit = retainedBytesLimit;
    }

    public int Layers { get; }

    /// <summary>Floats of one layer's keys (or values) in a page.</summary>
    public long PageFloats { get; }

    /// <summary>Bytes of one page, all layers, keys and values.</summary>
    public long PageBytes => _pageBytes;

    /// <summary>Pages held by contexts or retained for reuse, for tests and diagnostics.</summary>
    public int AllocatedPages
    {
        get
        {
            lock (_gate)
            {
                return _all.Count;
            }
        }
    }

    /// <summary>Registered prefix pages that can be found, for tests and diagnostics.</summary>
    public int SharedPrefixPages
    {
        get
        {
            lock (_gate)
            {
                return _prefixes.Count;
            }
        }
    }

    /// <summary>
    /// A page for one context to write, held once: a recycled one if any (unregistered first, then the least recently
    /// used registered one), else fresh memory, faulted in on <paramref name="faultPool"/>'s threads; or, for a page
    /// rented <paramref name="ahead"/> of its first write, left for the renter to fault in a slice at a time
    /// (<see cref="KvPage.FaultIn"/>).
    /// </summary>
    /// <exception cref="InsufficientMemoryException">The machine has not the memory for another page.</exception>
    public KvPage Rent(WorkerPool? faultPool, bool ahead = false)
    {
        var page = Take();
        if (!ahead)
        {
            page.FaultIn(faultPool, page.Block.Bytes);
        }

        return page;
    }

    private KvPage Take()
    {
        KvPage? page = null;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.Count > 0)
            {
                page = _free.Pop();
            }
            else if (_idle.First is { } oldest)
            {
                page = oldest.Value;
                Unregister(page);
            }

            if (page is not null)
            {
                page.References = 1;
                page.Id = _nextId++;
                return page;
            }
        }

        AvailableMemory.Ensure(_pageBytes);

        // Not cleared: every position is written before attention reads it.
        var fresh = new KvPage(new HugePageBlock(_pageBytes)) { References = 1 };
        lock (_gate)
        {
            fresh.Id = _nextId++;
            _all.Add(fresh);
            return fresh;
        }
    }

    /// <summary>A context lets go of a page: kept for reuse within the retention budget, freed beyond it.</summary>
    public void Release(KvPage page)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (--page.References > 0)
            {
                return;
            }

            if (page.Key is not null)
            {
                page.IdleNode = _idle.AddLast(page);
            }
            else
            {
                _free.Push(page);
            }

            TrimToBudget();
        }
    }

    /// <summary>
    /// The registered page that follows page <paramref name="parentId"/> (0 for the first page) with exactly these
    /// tokens, held once more for the caller; null when there is none.
    /// </summary>
    public KvPage? Find(long parentId, ReadOnlySpan<int> tokens)
    {
        ulong hash = PrefixKey.HashOf(parentId, tokens);
        lock (_gate)
        {
            if (_disposed || !_prefixes.TryGetValue(hash, out var page) || page.Key!.ParentId != parentId || !tokens.SequenceEqual(page.Key.Tokens))
            {
                return null;
            }

            if (page.IdleNode is not null)
            {
                _idle.Remove(page.IdleNode);
                page.IdleNode = null;
            }

            page.References++;
            return page;
        }
    }

    /// <summary>Offers a full page for sharing; a page already registered, or an identical prefix already known, is left as is.</summary>
    public void Register(KvPage page, long parentId, ReadOnlySpan<int> tokens)
    {
        ulong hash = PrefixKey.HashOf(parentId, tokens);
        lock (_gate)
        {
            if (_disposed || page.Key is not null || _prefixes.ContainsKey(hash))
            {
                return;
            }

            page.Key = new PrefixKey(parentId, tokens.ToArray(), hash);
            _prefixes.Add(hash, page);
        }
    }

    /// <summary>
    /// Makes <paramref name="page"/> safe for its holder to overwrite: a page shared with other contexts, or registered
    /// as a prefix (registered pages never change), is copied into a fresh one (copy-on-write), which is returned; an
    /// exclusive unregistered one is returned as is.
    /// </summary>
    public unsafe KvPage MakeWritable(KvPage page, WorkerPool? faultPool)
    {
        lock (_gate)
        {
            // A registered page stays as it is even when nobody else holds it, so the prefix remains findable.
            if (page.References == 1 && page.Key is null)
            {
                return page;
            }
        }

        var copy = Rent(faultPool);
        Buffer.MemoryCopy(page.Block.Pointer, copy.Block.Pointer, _pageBytes, _pageBytes);
        Release(page);
        return copy;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _prefixes.Clear();
            _idle.Clear();
            _free.Clear();
            foreach (KvPage page in _all)
            {
                page.Block.Dispose();
            }

            _all.Clear();
        }
    }

    private void Unregister(KvPage page)
    {
        if (page.IdleNode is not null)
        {
            _idle.Remove(page.IdleNode);
            page.IdleNode = null;
        }

        if (page.Key is { } key)
        {
            _prefixes.Remove(key.Hash);
            page.Key = null;
        }
    }

    private void TrimToBudget()
    {
        while ((long)(_free.Count + _idle.Count) * _pageBytes > _retainedBytesLimit)
        {
            KvPage victim;
            if (_free.Count > 0)
            {
                victim = _free.Pop();
            }
            else
            {
                victim = _idle.First!.Value;
                Unregister(victim);
            }

            victim.Block.Dispose();
            _all.Remove(victim);
        }
    }
}
