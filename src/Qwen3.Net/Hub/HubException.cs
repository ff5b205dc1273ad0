namespace Qwen3.Net.Hub;

/// <summary>What went wrong fetching a model from the hub.</summary>
public enum HubErrorKind
{
    /// <summary>The hub has no such repository (HTTP 404), or it is private and the token cannot see it.</summary>
    RepositoryNotFound,

    /// <summary>The repository has no such branch, tag or commit.</summary>
    RevisionNotFound,

    /// <summary>The repository lacks a file the model needs, or no file matches the GGUF file name or quantization asked for.</summary>
    FileNotFound,

    /// <summary>The repository is gated or private and the token is missing or has no access (HTTP 401 or 403).</summary>
    AccessDenied,

    /// <summary>Offline (or the hub unreachable) and the model is not in the cache.</summary>
    NotCached,

    /// <summary>The hub could not be reached or kept failing after the retries.</summary>
    Network,

    /// <summary>The files to download do not fit on the cache's disk; nothing was downloaded.</summary>
    InsufficientDiskSpace,

    /// <summary>A downloaded file's hash differs from the hub's ETag; the file was removed.</summary>
    HashMismatch,

    /// <summary>The hub answered something this client does not understand (a bad commit hash, ETag or file list).</summary>
    InvalidResponse,
}

/// <summary>A model could not be fetched from the Hugging Face hub or found in its cache; the message says why and what to do.</summary>
public sealed class HubException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">What went wrong.</param>
    /// <param name="message">What went wrong and what to do about it.</param>
    /// <param name="modelId">The model id asked for.</param>
    /// <param name="fileName">The file at fault, if any.</param>
    /// <param name="statusCode">The HTTP status the hub answered, if any.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public HubException(HubErrorKind kind, string message, string modelId, string? fileName = null, int? statusCode = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        ModelId = modelId;
        FileName = fileName;
        StatusCode = statusCode;
    }

    /// <summary>What went wrong.</summary>
    public HubErrorKind Kind { get; }

    /// <summary>The model id asked for.</summary>
    public string ModelId { get; }

    /// <summary>The file at fault (a path inside the repository), or null.</summary>
    public string? FileName { get; }

    /// <summary>The HTTP status the hub answered, or null.</summary>
    public int? StatusCode { get; }
}
