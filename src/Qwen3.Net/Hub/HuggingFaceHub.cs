namespace Qwen3.Net.Hub;

/// <summary>
/// Fetches Qwen3 models from the Hugging Face hub (or a mirror) into the cache <c>huggingface_hub</c> uses, so a
/// model downloaded by Python loads here without a request, and the other way round. See docs/models.md.
/// </summary>
public static class HuggingFaceHub
{
    // One client for the process: connections are pooled, and redirects are followed by hand so the token never
    // leaves the hub's host and the headers of the hub's own redirect can be read.
    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(30),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>
    /// Makes a model available in the cache and returns its local path: the snapshot folder of a safetensors model
    /// (config, generation config, tokenizer files, the weights or their index and shards), or the one GGUF file picked.
    /// A complete cached snapshot is used without any request (unless <see cref="HubOptions.CheckForUpdates"/>);
    /// otherwise only missing files are downloaded, in parallel, resuming partial downloads, each verified against the
    /// hub's hash before it becomes visible. Two processes fetching the same model wait for each other's files.
    /// </summary>
    /// <param name="modelId">
    /// <c>org/name</c>, optionally <c>@revision</c> (branch, tag or commit; default <c>main</c>), optionally
    /// <c>:file.gguf</c> or <c>:QUANT</c> (such as <c>Qwen/Qwen3-1.7B-GGUF:Q8_0</c>) to pick one GGUF file.
    /// </param>
    /// <param name="options">Endpoint, cache, token and offline settings; null to read them all from the environment.</param>
    /// <param name="progress">Receives the bytes downloaded so far; null for none.</param>
    /// <param name="cancellationToken">Stops the download; partial files stay and the next call resumes them.</param>
    /// <returns>The full path of the snapshot folder, or of the GGUF file.</returns>
    /// <exception cref="ArgumentException"><paramref name="modelId"/> is not a model id, or the endpoint is not an http(s) address.</exception>
    /// <exception cref="HubException">The model cannot be fetched or found in the cache; <see cref="HubException.Kind"/> says why.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<string> DownloadAsync(string modelId, HubOptions? options = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelId);
        var id = HubModelId.Parse(modelId);
        return new HubDownload(id, options ?? new HubOptions(), progress, Http).RunAsync(cancellationToken);
    }

    /// <summary>True when the text reads as a model id (<c>org/name[@revision][:file]</c>); a path that exists is still a path to <see cref="Qwen3Model.Load(string, Qwen3ModelOptions?)"/>.</summary>
    /// <param name="text">The text to check.</param>
    public static bool IsModelId(string text) => HubModelId.TryParse(text, out _);
}
