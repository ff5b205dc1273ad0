namespace Qwen3.Net.Server;

/// <summary>Options of the OpenAI-compatible endpoints: the served model id, authentication and the limits on requests.</summary>
public sealed record Qwen3ServerOptions
{
    /// <summary>The model id clients send in <c>model</c> and <c>/v1/models</c> lists; null for the model folder's name (e.g. <c>Qwen3-1.7B</c>).</summary>
    public string? ServedModelName { get; init; }

    /// <summary>When set, every request must carry <c>Authorization: Bearer</c> with this key, or gets 401.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Most tokens a request's prompt and <c>max_tokens</c> may take together; null for the model's <c>max_position_embeddings</c>.</summary>
    public int? ContextLength
    {
        get;
        init
        {
            if (value is { } n)
            {
                ArgumentOutOfRangeException.ThrowIfLessThan(n, 2, nameof(ContextLength));
            }

            field = value;
        }
    }

    /// <summary>Most generations running at once (default 64); one more gets 429.</summary>
    public int MaxConcurrentRequests { get; init => field = AtLeastOne(value, nameof(MaxConcurrentRequests)); } = 64;

    /// <summary>Largest request body in bytes (default 8 MiB); a larger one gets 413.</summary>
    public int MaxRequestBodyBytes { get; init => field = AtLeastOne(value, nameof(MaxRequestBodyBytes)); } = 8 << 20;

    /// <summary>Most messages in a request (default 2048).</summary>
    public int MaxMessages { get; init => field = AtLeastOne(value, nameof(MaxMessages)); } = 2048;

    /// <summary>Most tools in a request (default 128).</summary>
    public int MaxTools { get; init => field = AtLeastOne(value, nameof(MaxTools)); } = 128;

    /// <summary>Most stop strings in a request (default 16).</summary>
    public int MaxStopStrings { get; init => field = AtLeastOne(value, nameof(MaxStopStrings)); } = 16;

    /// <summary>Longest stop string, in characters (default 256).</summary>
    public int MaxStopStringLength { get; init => field = AtLeastOne(value, nameof(MaxStopStringLength)); } = 256;

    /// <summary>Largest <c>max_tokens</c> a request may ask for (default 32768, the model card's suggestion); the context length limits it too.</summary>
    public int MaxTokensLimit { get; init => field = AtLeastOne(value, nameof(MaxTokensLimit)); } = 32768;

    /// <summary>Deepest nesting of the request's JSON (default 64); deeper gets 400.</summary>
    public int MaxJsonDepth { get; init => field = AtLeastOne(value, nameof(MaxJsonDepth)); } = 64;

    /// <summary>Most inputs in one <c>/v1/embeddings</c> request (default 2048, OpenAI's limit).</summary>
    public int MaxEmbeddingInputs { get; init => field = AtLeastOne(value, nameof(MaxEmbeddingInputs)); } = 2048;

    /// <summary>Most documents in one <c>/v1/rerank</c> request (default 1024).</summary>
    public int MaxRerankDocuments { get; init => field = AtLeastOne(value, nameof(MaxRerankDocuments)); } = 1024;

    private static int AtLeastOne(int value, string name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, name);
        return value;
    }
}
