namespace Qwen3.Net.Chat;

/// <summary>
/// One message of a conversation, carrying exactly the fields the Qwen3 chat template reads:
/// <c>role</c>, <c>content</c>, <c>reasoning_content</c> and <c>tool_calls</c>.
/// </summary>
public sealed record Message
{
    /// <summary>Creates a message.</summary>
    /// <param name="role">Who wrote the message.</param>
    /// <param name="content">The message text.</param>
    /// <param name="reasoningContent">Assistant reasoning kept apart from <paramref name="content"/>; assistant messages only.</param>
    /// <param name="toolCalls">Function calls made by the assistant; assistant messages only.</param>
    /// <exception cref="ArgumentException">Reasoning or tool calls were given for a non-assistant message.</exception>
    public Message(MessageRole role, string content, string? reasoningContent = null, IReadOnlyList<ToolCall>? toolCalls = null)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (!Enum.IsDefined(role))
        {
            throw new ArgumentOutOfRangeException(nameof(role), role, "Unknown chat role.");
        }

        // The template only looks at these fields on assistant turns; accepting them elsewhere would silently drop data.
        if (role != MessageRole.Assistant && (reasoningContent is not null || toolCalls is not null))
        {
            throw new ArgumentException("Only assistant messages can carry reasoning content or tool calls.", nameof(role));
        }

        if (toolCalls is not null)
        {
            foreach (var call in toolCalls)
            {
                ArgumentNullException.ThrowIfNull(call, nameof(toolCalls));
            }
        }

        Role = role;
        Content = content;
        ReasoningContent = reasoningContent;
        ToolCalls = toolCalls;
    }

    /// <summary>Who wrote the message.</summary>
    public MessageRole Role { get; }

    /// <summary>The message text. For assistant turns it may still contain a <c>&lt;think&gt;…&lt;/think&gt;</c> block.</summary>
    public string Content { get; }

    /// <summary>
    /// Assistant reasoning given separately from <see cref="Content"/>. When set, the template uses it instead of
    /// extracting a <c>&lt;think&gt;</c> block from the content.
    /// </summary>
    public string? ReasoningContent { get; }

    /// <summary>Function calls made by the assistant, or <see langword="null"/> when there are none.</summary>
    public IReadOnlyList<ToolCall>? ToolCalls { get; }

    /// <summary>Creates a system message.</summary>
    /// <param name="content">The instructions.</param>
    public static Message System(string content) => new(MessageRole.System, content);

    /// <summary>Creates a user message.</summary>
    /// <param name="content">The user's text.</param>
    public static Message User(string content) => new(MessageRole.User, content);

    /// <summary>Creates an assistant message.</summary>
    /// <param name="content">The reply text.</param>
    /// <param name="reasoningContent">The reasoning behind the reply, if kept separately.</param>
    /// <param name="toolCalls">Function calls made in this turn, if any.</param>
    public static Message Assistant(string content, string? reasoningContent = null, IReadOnlyList<ToolCall>? toolCalls = null) =>
        new(MessageRole.Assistant, content, reasoningContent, toolCalls);

    /// <summary>Creates a tool-result message.</summary>
    /// <param name="content">The tool's output, usually JSON text.</param>
    public static Message Tool(string content) => new(MessageRole.Tool, content);

    /// <inheritdoc/>
    public bool Equals(Message? other)
    {
        if (other is null)
        {
            return false;
        }

        if (Role != other.Role || Content != other.Content || ReasoningContent != other.ReasoningContent)
        {
            return false;
        }

        // Records compare lists by reference; messages built separately with equal calls should still be equal.
        if (ToolCalls is null || other.ToolCalls is null)
        {
            return ToolCalls is null && other.ToolCalls is null;
        }

        return ToolCalls.SequenceEqual(other.ToolCalls);
    }

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Role, Content, ReasoningContent, ToolCalls?.Count);
}
