using Qwen3.Net.Generation;

namespace Qwen3.Net.Chat;

/// <summary>How a <see cref="ChatSession"/> starts and what every turn uses unless a turn overrides it.</summary>
public sealed record ChatSessionOptions
{
    /// <summary>A system prompt placed first in the conversation, or null for none.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>
    /// Messages the conversation starts from (after <see cref="SystemPrompt"/>), e.g. a saved conversation to resume;
    /// <see cref="ChatSession.Reset"/> returns to them.
    /// </summary>
    public IReadOnlyList<Message> Messages { get; init; } = [];

    /// <summary>Whether the model thinks before answering; a turn can override it with <see cref="ChatTurnOptions.ThinkingMode"/>.</summary>
    public ThinkingMode ThinkingMode { get; init; } = ThinkingMode.Enabled;

    /// <summary>Sampling for every turn; null uses the model card's recommendation for the turn's thinking mode.</summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>Tools offered to the model in every turn; empty for none.</summary>
    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];

    /// <summary>
    /// Most tokens the conversation may hold (prompt and generated); null for the model's <c>max_position_embeddings</c>.
    /// The KV cache grows with use, so a large limit costs nothing until the conversation gets long.
    /// </summary>
    public int? ContextSize { get; init; }
}

/// <summary>Overrides for one turn of a <see cref="ChatSession"/>.</summary>
public sealed record ChatTurnOptions
{
    /// <summary>The thinking mode of this turn; null keeps the session's.</summary>
    public ThinkingMode? ThinkingMode { get; init; }

    /// <summary>Sampling for this turn; null keeps the session's (or the model card's for the turn's thinking mode).</summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>The shape this turn's answer must take (JSON, a JSON Schema); null for free text. Reasoning before it stays free.</summary>
    public ResponseFormat? ResponseFormat { get; init; }

    /// <summary>Whether this turn may, must or must not call the session's tools; null for <see cref="Chat.ToolChoice.Auto"/>.</summary>
    public ToolChoice? ToolChoice { get; init; }

    /// <summary>Whether a forced tool-call turn may make more than one call; true by default.</summary>
    public bool ParallelToolCalls { get; init; } = true;

    /// <summary>Most reasoning tokens in this turn; when reached, <c>&lt;/think&gt;</c> is forced. Null for no limit; at least 0.</summary>
    public int? MaxThinkingTokens
    {
        get;
        init => field = ArgumentChecks.NullOrNotNegative(value, nameof(MaxThinkingTokens));
    }
}
