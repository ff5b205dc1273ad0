namespace Qwen3.Net.Chat;

/// <summary>
/// Whether the model reasons in a <c>&lt;think&gt;</c> block before answering. Rendered as the chat template's
/// <c>enable_thinking</c> flag.
/// </summary>
public enum ThinkingMode
{
    /// <summary>The model thinks first; its reasoning is streamed apart from the answer.</summary>
    Enabled,

    /// <summary>
    /// The prompt ends with an empty <c>&lt;think&gt;&lt;/think&gt;</c> block, so the model answers directly.
    /// </summary>
    Disabled,
}
