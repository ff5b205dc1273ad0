namespace Qwen3.Net.Hub;

/// <summary>
/// Where and how <see cref="HuggingFaceHub"/> fetches models. Every setting left null is read from the environment
/// variables <c>huggingface_hub</c> reads, so Python and .NET share one cache, endpoint and token.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The hub's base address (a mirror, for instance); null for <c>HF_ENDPOINT</c>, else <c>https://huggingface.co</c>.</summary>
    public string? Endpoint { get; init; }

    /// <summary>
    /// The cache folder; null for <c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>.
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// The access token for gated and private repositories; null for <c>HF_TOKEN</c>, else the token file
    /// (<c>HF_TOKEN_PATH</c>, else <c>HF_HOME/token</c>) that <c>hf auth login</c> writes; an empty string for none.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>Use only the cache, never the network; null for <c>HF_HUB_OFFLINE</c> (<c>1</c>, <c>true</c>, <c>yes</c> or <c>on</c>).</summary>
    public bool? Offline { get; init; }

    /// <summary>
    /// Ask the hub which commit the revision points at even when a complete snapshot of it is cached (default false:
    /// a cached model loads without any request; set this to pick up a newer commit of a branch).
    /// </summary>
    public bool CheckForUpdates { get; init; }

    /// <summary>Files downloaded at the same time (default 4). From 1 to 16.</summary>
    public int MaxParallelDownloads
    {
        get;
        init => field = value is >= 1 and <= 16 ? value : throw new ArgumentOutOfRangeException(nameof(MaxParallelDownloads), value, "MaxParallelDownloads must be from 1 to 16.");
    } = 4;

    /// <summary>
    /// Retries of a request that failed transiently (connection lost, timeout, HTTP 408, 429 or 5xx), with exponential
    /// backoff from one second; a download resumes where it stopped. Default 5, from 0 to 20.
    /// </summary>
    public int MaxRetries
    {
        get;
        init => field = value is >= 0 and <= 20 ? value : throw new ArgumentOutOfRangeException(nameof(MaxRetries), value, "MaxRetries must be from 0 to 20.");
    } = 5;

    /// <summary>The first retry's delay; each next one doubles it (tests shorten it).</summary>
    internal TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a response may send nothing before the attempt counts as failed.</summary>
    internal TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Free bytes the disk check assumes; null to ask the file system (tests set it).</summary>
    internal long? AvailableDiskSpace { get; init; }

    internal string ResolveEndpoint()
    {
        string endpoint = Endpoint ?? Env("HF_ENDPOINT") ?? "https://huggingface.co";
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"The hub endpoint '{endpoint}' (HubOptions.Endpoint or HF_ENDPOINT) is not an http(s) address.", nameof(Endpoint));
        }

        return endpoint.TrimEnd('/');
    }

    internal string ResolveCacheDirectory()
    {
        if ((CacheDirectory ?? Env("HF_HUB_CACHE")) is { } cache)
        {
            return Path.GetFullPath(ExpandHome(cache));
        }

        return Path.GetFullPath(Path.Combine(HfHome(), "hub"));
    }

    internal string? ResolveToken()
    {
        if ((Token ?? Env("HF_TOKEN")) is { } token)
        {
            return token.Trim() is { Length: > 0 } trimmed ? trimmed : null;
        }

        string path = Env("HF_TOKEN_PATH") is { } p ? ExpandHome(p) : Path.Combine(HfHome(), "token");
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } read ? read : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // An unreadable token file is the same as none: public models still download.
            return null;
        }
    }

    internal bool ResolveOffline() =>
        Offline ?? Env("HF_HUB_OFFLINE")?.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on";

    private static string HfHome() =>
        Env("HF_HOME") is { } home
            ? ExpandHome(home)
            : Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");

    private static string ExpandHome(string path) =>
        path.StartsWith("~/", StringComparison.Ordinal) || path == "~"
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "")
            : path;

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
