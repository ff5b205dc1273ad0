using Qwen3.Net.Chat;
using Qwen3.Net.Engine;
using Qwen3.Net.Hub;
using Qwen3.Net.Kernels;
using Qwen3.Net.Loading;
using Qwen3.Net.Loading.Gguf;
using Qwen3.Net.Model;

namespace Qwen3.Net;

/// <summary>
/// A Qwen3 dense model loaded from a Hugging Face model folder or a GGUF file: config, memory-mapped weights and tokenizer, and the
/// engine that runs it: one pool of worker threads and one scheduler that batches the evaluations of all its contexts.
/// Thread-safe: create one <see cref="InferenceContext"/> per concurrent sequence, on any thread.
/// Dispose it to stop the engine and release the memory maps, after its contexts are done.
/// </summary>
public sealed class Qwen3Model : IDisposable
{
    private readonly TensorStore _store;
    private readonly WorkerPool _pool;
    private readonly PackedPanels? _panels;
    // The GGUF file's own template; null for a folder, whose template is read from tokenizer_config.json when asked for.
    private readonly ChatTemplate? _ggufTemplate;
    private readonly bool _isGguf;
    private volatile bool _disposed;

    private Qwen3Model(
        Qwen3Config config, TensorStore store, Qwen3Weights weights, Qwen3Tokenizer tokenizer, Qwen3ModelOptions options, string folder,
        bool isGguf = false, ChatTemplate? ggufTemplate = null)
    {
        _isGguf = isGguf;
        _ggufTemplate = ggufTemplate;
        Config = config;
        _store = store;
        Tokenizer = tokenizer;
        Folder = folder;
        Options = options;
        _pool = new WorkerPool(options.ResolveThreadCount());
        if (options.PackedWeights)
        {
            try
            {
                _panels = PackedPanels.Pack(weights, store, _pool, KernelPaths.Default, KernelPaths.Quantized);
            }
            catch
            {
                _pool.Dispose();
                throw;
            }

            weights = _panels.Weights;
        }

        Weights = weights;
        PagePool = new KvPagePool(config.NumHiddenLayers, config.NumKeyValueHeads, config.HeadDim, options.RetainedCacheBytes);
        Scheduler = new BatchScheduler(config, weights, _pool, options);

        // The loader's temporary objects (a tokenizer's 150 thousand token and merge strings, parsed twice) outlive
        // collections into the older generations, and the GC keeps their memory committed: about 95 MB resident after
        // a GGUF load. One collection that decommits what it frees returns it, in about 30 ms (docs/quantization.md).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    /// <summary>The hyperparameters read from <c>config.json</c> (or the GGUF file's metadata).</summary>
    public Qwen3Config Config { get; }

    /// <summary>The tokenizer read from <c>tokenizer.json</c> (or the GGUF file's <c>tokenizer.ggml.*</c> metadata).</summary>
    public Qwen3Tokenizer Tokenizer { get; }

    /// <summary>The full path of the model folder, or of the GGUF file the model was loaded from.</summary>
    public string Folder { get; }

    /// <summary>The options the model was loaded with.</summary>
    public Qwen3ModelOptions Options { get; }

    /// <summary>Threads of the model's forward passes (the scheduler's own included).</summary>
    public int ThreadCount => _pool.ThreadCount;

    internal Qwen3Weights Weights { get; }

    internal KvPagePool PagePool { get; }

    internal BatchScheduler Scheduler { get; }

    internal WorkerPool Pool => _pool;

    /// <summary>
    /// Loads a model: a Hugging Face folder (<c>config.json</c>, <c>generation_config.json</c> (optional),
    /// <c>model.safetensors</c> or <c>model.safetensors.index.json</c> with its shards, and <c>tokenizer.json</c>), a
    /// <c>.gguf</c> file, or a folder holding one <c>.gguf</c> file and no <c>config.json</c> (docs/gguf.md). Weights are
    /// memory-mapped, not read.
    /// </summary>
    /// <param name="folder">A Hugging Face Qwen3 model folder, or a GGUF file; a model id (such as <c>Qwen/Qwen3-1.7B</c>) that is not a local path is downloaded as by <see cref="LoadAsync"/>.</param>
    /// <param name="options">Loading options; null for the defaults.</param>
    /// <exception cref="HubException">A model id could not be downloaded or found in the cache.</exception>
    /// <exception cref="ModelLoadException">A file is missing, malformed or inconsistent with the config; the message names the file and the tensor or key.</exception>
    /// <exception cref="NotSupportedException">The folder or file holds another architecture, or a RoPE scaling other than YaRN.</exception>
    /// <remarks>
    /// The load ends with one full, blocking garbage collection that gives the memory of the tokenizer's parsing back to
    /// the system (about 95 MB after a GGUF; some 30 ms, longer in a process with a large managed heap).
    /// </remarks>
    public static Qwen3Model Load(string folder, Qwen3ModelOptions? options = null) => Load(folder, options, requireHead: true);

    /// <summary>Loads a model folder; an embedding model (<paramref name="requireHead"/> false) may lack the output head.</summary>
    internal static Qwen3Model Load(string folder, Qwen3ModelOptions? options, bool requireHead)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        options ??= new Qwen3ModelOptions();
        _ = options.ResolveThreadCount();
        if (options.InterleavedPrefillTokens > options.MaxBatchTokens)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.InterleavedPrefillTokens, "InterleavedPrefillTokens cannot exceed MaxBatchTokens.");
        }

        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full) && !File.Exists(full) && HuggingFaceHub.IsModelId(folder))
        {
            // Not a local path: a hub model id. Run the download off the caller's synchronization context.
            return Task.Run(() => LoadAsync(folder, options)).GetAwaiter().GetResult();
        }

        if (File.Exists(full))
        {
            return LoadGguf(full, options);
        }

        if (!Directory.Exists(full))
        {
            throw new ModelLoadException($"Model folder '{full}' does not exist.", full);
        }

        if (!File.Exists(Path.Combine(full, Qwen3ConfigReader.ConfigFileName)) && FindSingleGguf(full) is string gguf)
        {
            return LoadGguf(gguf, options);
        }

        var config = Qwen3Config.Load(full);
        var store = TensorStore.Open(full);
        try
        {
            RefreshPageCache(store, options);
            var weights = Qwen3Weights.Bind(store, config, requireHead);
            var tokenizer = Qwen3Tokenizer.FromFile(Path.Combine(full, "tokenizer.json"));
            return new Qwen3Model(config, store, weights, tokenizer, options, full);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="Qwen3ModelOptions.RefreshPageCache"/> on the files <paramref name="store"/> maps (an index's shards,
    /// model.safetensors or the GGUF), not on other files beside them. Mapped, they keep only the pages their
    /// validation read (headers, a GGUF's tokenizer) as they were.
    /// </summary>
    private static void RefreshPageCache(TensorStore store, Qwen3ModelOptions options)
    {
        if (options.RefreshPageCache)
        {
            PageCache.Refresh(store.FilePaths);
        }
    }

    private static Qwen3Model LoadGguf(string path, Qwen3ModelOptions options)
    {
        var gguf = Qwen3Gguf.Open(path);
        try
        {
            RefreshPageCache(gguf.Store, options);
            var weights = Qwen3Weights.Bind(gguf.Store, gguf.Config);
            return new Qwen3Model(gguf.Config, gguf.Store, weights, gguf.Tokenizer, options, path, isGguf: true, gguf.ChatTemplate);
        }
        catch
        {
            gguf.Store.Dispose();
            throw;
        }
    }

    private static string? FindSingleGguf(string folder)
    {
        string[] files = Directory.GetFiles(folder, "*.gguf");
        return files.Length switch
        {
            1 => files[0],
            0 => null,
            _ => throw new ModelLoadException(
                $"Model folder '{folder}' has no config.json and {files.Length} .gguf files; pass the path of the one to load.", folder),
        };
    }

    /// <summary>
    /// The model's own chat template: the GGUF file's <c>tokenizer.chat_template</c>, or the <c>chat_template</c> of the
    /// folder's <c>tokenizer_config.json</c>.
    /// </summary>
    /// <exception cref="ModelLoadException">There is no usable template.</exception>
    internal ChatTemplate LoadChatTemplate()
    {
        if (!_isGguf)
        {
            return ChatTemplate.FromTokenizerConfig(Path.Combine(Folder, "tokenizer_config.json"));
        }

        return _ggufTemplate ?? throw new ModelLoadException(
            $"GGUF file '{Folder}' has no {Qwen3Gguf.ChatTemplateKey}; pass a ChatTemplate explicitly.", Folder, Qwen3Gguf.ChatTemplateKey);
    }

    /// <summary>
    /// Loads a model folder or file that exists, or else downloads a Hugging Face model id into the
    /// <c>huggingface_hub</c> cache first (see <see cref="HuggingFaceHub.DownloadAsync"/> and docs/models.md); a model
    /// cached already loads without any request.
    /// </summary>
    /// <param name="model">A local path, or a model id such as <c>Qwen/Qwen3-1.7B</c>, <c>Qwen/Qwen3-1.7B@main</c> or <c>Qwen/Qwen3-1.7B-GGUF:Q8_0</c>.</param>
    /// <param name="options">Loading options, <see cref="Qwen3ModelOptions.Hub"/> included; null for the defaults.</param>
    /// <param name="progress">Receives download progress; null for none.</param>
    /// <param name="cancellationToken">Stops the download; partial files are resumed by the next call.</param>
    /// <exception cref="HubException">The model cannot be downloaded or found in the cache; the message says why and what to do.</exception>
    /// <exception cref="ModelLoadException">A file is missing, malformed or inconsistent with the config.</exception>
    /// <exception cref="NotSupportedException">The model is another architecture, or a RoPE scaling other than YaRN.</exception>
    public static async Task<Qwen3Model> LoadAsync(string model, Qwen3ModelOptions? options = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        string path = Directory.Exists(model) || File.Exists(model) || !HuggingFaceHub.IsModelId(model)
            ? model
            : await HuggingFaceHub.DownloadAsync(model, options?.Hub, progress, cancellationToken).ConfigureAwait(false);
        return await Task.Run(() => Load(path, options), cancellationToken).ConfigureAwait(false);
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
        return new InferenceContext(this, ArgumentChecks.InRange(capacity ?? Config.MaxPositionEmbeddings, 1, Config.MaxPositionEmbeddings, nameof(capacity)));
    }

    /// <summary>
    /// Stops the engine after the step in progress (evaluations still queued or running throw
    /// <see cref="ObjectDisposedException"/>), then releases the threads, the KV cache pages and the memory maps.
    /// Contexts used afterwards throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Scheduler.Dispose();
        _pool.Dispose();
        PagePool.Dispose();
        _panels?.Dispose();
        _store.Dispose();
    }
}
