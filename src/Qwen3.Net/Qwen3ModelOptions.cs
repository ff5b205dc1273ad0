namespace Qwen3.Net;

/// <summary>Options for <see cref="Qwen3Model.Load(string, Qwen3ModelOptions?)"/>: threads, batching and memory limits.</summary>
public sealed record Qwen3ModelOptions
{
    /// <summary>Where and how a model id is downloaded (endpoint, cache, token, offline); null to read the environment as huggingface_hub does.</summary>
    public Hub.HubOptions? Hub { get; init; }

    /// <summary>
    /// Whether loading first has Linux drop the model files' cached pages and then reads the files back from disk, in
    /// order (default false; Linux on x64 and arm64, ignored elsewhere). A file written in small pieces (by <c>cp</c> or
    /// most download tools; the library's own quantizer and downloads write whole 4 MiB chunks) sits in the page cache in
    /// small folios, and a map cannot change that; read back in order, recent kernels (6.18 with ext4 here) cache it in
    /// large folios mapped with 2 MB entries, which fewer address-translation misses make faster to stream: on a 2-core
    /// AMD EPYC VM, loading a fresh copy of a 1.7B BF16 model with this option decoded one stream 37% faster and four
    /// streams 41% (docs/benchmarks.md), for 1.6–3 s more load. Files not cached at all need no option: the library's
    /// maps ask for huge pages, so what they read from disk comes in as large folios.
    /// The cost: loading reads every weight file from disk once, and cached pages of the same files that another
    /// process reads without mapping them are dropped for it too. Where the files already sit in large folios, it buys
    /// nothing.
    /// </summary>
    public bool RefreshPageCache { get; init; }

    /// <summary>
    /// Whether loading also copies the BF16 weight matrices into the layout the matrix kernels read (default false):
    /// panels of rows with their columns side by side, packed once on the model's threads instead of at every forward
    /// pass. Several decoding sequences then cost little more per step than one, and every sequence's results are the
    /// same bit for bit whatever it is batched with. On a 2-core AMD EPYC with a Qwen3-1.7B-shaped BF16 model, four
    /// streams decoded 3.05× one stream's tokens/s and eight 5.46× (2.35× and 3.62× without), one stream about as fast
    /// as without (docs/benchmarks.md).
    /// The cost: the weights in memory of the process's own (3.4 GB for 1.7B) rather than in the map, whose pages the OS
    /// can reclaim under pressure; on Linux each BF16 matrix's pages of the map are dropped from the process once it is
    /// packed, so the resident set counts the weights once (4.2 GB for 1.7B, against 3.7 GB without the option). And a
    /// slower load: each byte of fresh memory written once, 1.3–1.5 s for 1.7B where 0.8–1.0 s without, up to 6 s on a
    /// VM whose host backs fresh memory slowly. Loading throws <see cref="InsufficientMemoryException"/> where the copy
    /// would not fit.
    /// Q8_0 matrices are kept too, unpacked for the int8 tile (6% larger than their blocks) and read by it from two
    /// decoding streams on: four Q8_0 streams decoded about 25% faster there and eight about 90%; one stream still reads
    /// the blocks. Other quantized formats, F16 and F32 are not copied.
    /// </summary>
    public bool PackedWeights { get; init; }

    /// <summary>
    /// Threads the model's forward passes use (one pool per model, shared by all its contexts); null (the default)
    /// means one per core, taken as <see cref="Environment.ProcessorCount"/> since .NET does not report hyper-threads
    /// separately.
    /// </summary>
    public int? ThreadCount { get; init; }

    /// <summary>
    /// Most tokens one forward pass runs, over all the sequences in it (default 512, llama.cpp's micro-batch too): each
    /// block packs every weight panel once. The scratch grows with it (about 45 MB for Qwen3-1.7B at 512 tokens) but is
    /// faulted in only as far as the largest step so far reaches. From 1 to 8192.
    /// </summary>
    public int MaxBatchTokens
    {
        get;
        init => field = ArgumentChecks.InRange(value, 1, 8192, nameof(MaxBatchTokens));
    } = 512;

    /// <summary>Most sequences one forward pass runs together (default 32); more wait their turn, round-robin. From 1 to 1024.</summary>
    public int MaxBatchSequences
    {
        get;
        init => field = ArgumentChecks.InRange(value, 1, 1024, nameof(MaxBatchSequences));
    } = 32;

    /// <summary>
    /// Prompt tokens a step takes while other sequences are decoding (default 8): a long prompt is cut into chunks
    /// this size so it cannot stall the others' streams; with nothing decoding, prompts run in whole blocks. A chunk is
    /// cut by up to half where that makes the step's tokens a whole number of the prompt kernel's passes (7 beside one
    /// decoding stream with AVX-512: a ninth token costs a whole pass more). From 1 to
    /// <see cref="MaxBatchTokens"/>. With 8, a decoding stream's slowest steps stay within about 3× its usual time
    /// while a long prompt arrives (2.4× on a quiet 2-core AMD host, 2.3–3.1× on Intel; 16 gave 3.8×, 32 gave 5.7×, docs/benchmarks.md);
    /// the arriving prompt's own first token comes later in exchange, so raise it where time to first token matters
    /// more than smooth streams.
    /// </summary>
    public int InterleavedPrefillTokens
    {
        get;
        init => field = ArgumentChecks.InRange(value, 1, 8192, nameof(InterleavedPrefillTokens));
    } = 8;

    /// <summary>
    /// Most evaluations queued or running at once over all contexts (default 256); one more throws
    /// <see cref="QueueFullException"/>. From 1 to 65536.
    /// </summary>
    public int MaxQueuedRequests
    {
        get;
        init => field = ArgumentChecks.InRange(value, 1, 65536, nameof(MaxQueuedRequests));
    } = 256;

    /// <summary>
    /// Bytes of KV cache pages kept while no context holds them (default 1 GiB): recycled for new contexts instead of
    /// fresh memory, and, for full pages of a prompt, found again when a later prompt starts with the same tokens (a
    /// shared system prompt, or the history a stateless client sends again), so only what is new is computed. 0 frees
    /// pages as soon as their last context lets go of them.
    /// </summary>
    public long RetainedCacheBytes
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value, nameof(RetainedCacheBytes));
            field = value;
        }
    } = 1L << 30;

    internal int ResolveThreadCount() =>
        ThreadCount is { } n ? ArgumentChecks.InRange(n, 1, 1024, nameof(ThreadCount)) : Environment.ProcessorCount;
}
