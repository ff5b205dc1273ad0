using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Server;

/// <summary>A validated <c>POST /v1/chat/completions</c> body; fields the client left out are null.</summary>
internal sealed record ChatCompletionRequest
{
    public required string Model { get; init; }

    public required IReadOnlyList<Message> Messages { get; init; }

    /// <summary>The tools rendered into the prompt: empty when none were given or <c>tool_choice</c> is <c>none</c>.</summary>
    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];

    /// <summary>Auto, or the forced tool calls of <c>tool_choice</c> <c>required</c> or a named function (<c>none</c> leaves <see cref="Tools"/> empty).</summary>
    public ToolChoice ToolChoice { get; init; } = ToolChoice.Auto;

    public bool ParallelToolCalls { get; init; } = true;

    /// <summary>The <c>response_format</c> constraint; null for free text.</summary>
    public ResponseFormat? ResponseFormat { get; init; }

    public ThinkingMode Thinking { get; init; } = ThinkingMode.Enabled;

    public bool ReturnReasoning { get; init; } = true;

    public bool Stream { get; init; }

    public bool IncludeUsage { get; init; }

    public float? Temperature { get; init; }

    public float? TopP { get; init; }

    public int? TopK { get; init; }

    public float? MinP { get; init; }

    public float? PresencePenalty { get; init; }

    public float? RepetitionPenalty { get; init; }

    public ulong? Seed { get; init; }

    public int? MaxTokens { get; init; }

    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>The model card's sampling for the thinking mode, with the fields the client set.</summary>
    public SamplingOptions ToSampling(int maxTokens)
    {
        var defaults = SamplingOptions.For(Thinking == ThinkingMode.Enabled);
        return defaults with
        {
            Temperature = Temperature ?? defaults.Temperature,
            TopP = TopP ?? defaults.TopP,
            TopK = TopK ?? defaults.TopK,
            MinP = MinP ?? defaults.MinP,
            PresencePenalty = PresencePenalty ?? defaults.PresencePenalty,
            RepetitionPenalty = RepetitionPenalty ?? defaults.RepetitionPenalty,
            Seed = Seed,
            MaxNewTokens = maxTokens,
            StopStrings = Stop,
        };
    }
}
