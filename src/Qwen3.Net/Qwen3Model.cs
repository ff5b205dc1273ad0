using Qwen3.Net.Loading;
using Qwen3.Net.Model;

namespace Qwen3.Net;

/// <summary>
/// A Qwen3 dense model loaded from a Hugging Face model folder: config, memory-mapped weights and tokenizer.
/// Thread-safe and read-only once loaded: create one <see cref="InferenceContext"/> per concurrent sequence.
/// Dispose it to release the memory maps, after its contexts are done.
/// </summary>
public sealed class Qwen3Model : IDisposable
{
    private readonly TensorStore _store;
    private readonly int _threadCount;
    private int _activeLeases;
    private volatile bool _disposed;

    private Qwen3Model(Qwen3Config config, TensorStore store, Qwen3Weights weights, Qwen3Tokenizer tokenizer, int threadCount, string folder)
    {
        Config = config;
        _store = store;
        Weights = weights;
        Tokenizer = tokenizer;
        _threadCount = threadCount;
        Folder = folder;
    }

    /// <summary>The hyperparameters read from <c>config.json</c>.</summary>
    public Qwen3Config Config { get; }

    /// <summary>The tokenizer read from <c>tokenizer.json</c>.</summary>
    public Qwen3Tokenizer Tokenizer { get; }

    /// <summary>The full path of the model folder.</summary>
    public string Folder { get; }

    internal Qwen3Weights Weights { get; }

    /// <summary>
    /// Loads a model folder: <c>config.json</c>, <c>generation_config.json</c> (optional), <c>model.safetensors</c> or
    /// <c>model.safetensors.index.json</c> with its shards, and <c>tokenizer.json</c>. Weights are memory-mapped, not read.
    /// </summary>
    /// <param name="folder">A Hugging Face Qwen3 model folder.</param>
    /// <param name="options">Loading options; null for the defaults.</param>
    /// <exception cref="ModelLoadException">A file is missing, malformed or inconsistent with the config; the message names the file and tensor.</exception>
    /// <exception cref="NotSupportedException">The folder holds another architecture, or a RoPE scaling other than YaRN.</exception>
    public static Qwen3Model Load(string folder, Qwen3ModelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        options ??= new Qwen3ModelOptions();
        int threads = options.ResolveThreadCount();
        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full))
        {
            throw new ModelLoadException($"Model folder '{full}' does not exist.", full);
        }

        var config = Qwen3Config.Load(full);
        var store = TensorStore.Open(full);
        try
        {
            var weights = Qwen3Weights.Bind(store, config);
            var tokenizer = Qwen3Tokenizer.FromFile(Path.Combine(full, "tokenizer.json"));
            return new Qwen3Model(config, store, weights, tokenizer, threads, full);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates a context that can hold up to <paramref name="capacity"/> tokens. Its KV cache starts small and grows
    /// with the tokens actually evaluated.
    /// </summary>
    /// <param name="capacity">Most tokens the context may hold; null for the model's <c>max_position_embeddings</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is below 1 or above <c>max_position_embeddings</c>.</exception>
    public InferenceContext CreateContext(int? capacity = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int n = capacity ?? Config.MaxPositionEmbeddings;
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1, nameof(capacity));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, Config.MaxPositionEmbeddings, nameof(capacity));
        return new InferenceContext(this, n, _threadCount);
    }

    /// <summary>Releases the memory maps. Waits for evaluations in progress; contexts used afterwards throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        SpinWait.SpinUntil(() => Volatile.Read(ref _activeLeases) == 0);
        _store.Dispose();
    }

    /// <summary>Keeps the memory maps alive while a forward pass reads them.</summary>
    internal ModelLease AcquireLease()
    {
        Interlocked.Increment(ref _activeLeases);
        if (_disposed)
        {
            Interlocked.Decrement(ref _activeLeases);
            throw new ObjectDisposedException(nameof(Qwen3Model));
        }

        return new ModelLease(this);
    }

    internal void Release() => Interlocked.Decrement(ref _activeLeases);
}

/// <summary>Proof that a forward pass may read the model's memory maps; see <see cref="Qwen3Model.AcquireLease"/>.</summary>
internal readonly struct ModelLease(Qwen3Model model) : IDisposable
{
    public void Dispose() => model.Release();
}
