namespace Qwen3.Net.Chat;

/// <summary>The author of a chat message, as the chat template sees it in <c>message.role</c>.</summary>
public enum MessageRole
{
    /// <summary>Instructions for the model; rendered as <c>system</c>.</summary>
    System,

    /// <summary>A user turn; rendered as <c>user</c>.</summary>
    User,

    /// <summary>A model turn, possibly with reasoning and tool calls; rendered as <c>assistant</c>.</summary>
    Assistant,

    /// <summary>The result of a tool call; rendered as <c>tool</c> (Qwen3 wraps it in a user turn).</summary>
    Tool,
}
