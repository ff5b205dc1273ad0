using Qwen3.Net.Generation;

namespace Qwen3.Net.Chat;

/// <summary>What a <see cref="ChatUpdate"/> carries.</summary>
public enum ChatUpdateKind
{
    /// <summary>A piece of the model's reasoning (inside its think block).</summary>
    Reasoning,

    /// <summary>A piece of the answer.</summary>
    Answer,

    /// <summary>A complete, well-formed tool call; see <see cref="ChatUpdate.ToolCall"/>.</summary>
    ToolCall,

    /// <summary>A tool-call block that could not be parsed; see <see cref="ChatUpdate.MalformedToolCall"/>.</summary>
    MalformedToolCall,

    /// <summary>The last update of a turn; see <see cref="ChatUpdate.FinishReason"/> and <see cref="ChatUpdate.Usage"/>.</summary>
    Finished,

    /// <summary>
    /// A piece of a tool-call block's text as the model writes it, sent only when
    /// <see cref="ChatGenerationOptions.StreamToolCallText"/> is set: the pieces of one block concatenate to the
    /// <see cref="ChatUpdate.Text"/> of the <see cref="ToolCall"/> or <see cref="MalformedToolCall"/> update that ends it.
    /// </summary>
    ToolCallText,
}

/// <summary>
/// One step of a streamed turn: a piece of reasoning or answer text, a tool call, or the final update with the finish
/// reason and usage. Concatenating <see cref="TokenIds"/> over all updates of a turn gives every generated token, in order.
/// </summary>
public sealed class ChatUpdate
{
    internal ChatUpdate(ChatUpdateKind kind, string text, IReadOnlyList<int> tokenIds, ToolCall? toolCall = null,
        MalformedToolCall? malformedToolCall = null, FinishReason? finishReason = null, GenerationUsage? usage = null, Message? message = null)
    {
        Message = message;
        Kind = kind;
        Text = text;
        TokenIds = tokenIds;
        ToolCall = toolCall;
        MalformedToolCall = malformedToolCall;
        FinishReason = finishReason;
        Usage = usage;
    }

    /// <summary>What this update carries.</summary>
    public ChatUpdateKind Kind { get; }

    /// <summary>
    /// For <see cref="ChatUpdateKind.Reasoning"/>, <see cref="ChatUpdateKind.Answer"/> and
    /// <see cref="ChatUpdateKind.ToolCallText"/>, the new text (whole characters only); for tool calls, the text of the
    /// block between its tags; empty for <see cref="ChatUpdateKind.Finished"/>.
    /// </summary>
    public string Text { get; }

    /// <summary>
    /// The tokens generated since the previous update. Text can lag its tokens (a character split across tokens, or a
    /// possible tag held back), and tokens such as <c>&lt;think&gt;</c> have no text, so this may not match <see cref="Text"/> one to one.
    /// </summary>
    public IReadOnlyList<int> TokenIds { get; }

    /// <summary>The call, for <see cref="ChatUpdateKind.ToolCall"/>.</summary>
    public ToolCall? ToolCall { get; }

    /// <summary>The unparseable block, for <see cref="ChatUpdateKind.MalformedToolCall"/>.</summary>
    public MalformedToolCall? MalformedToolCall { get; }

    /// <summary>Why the turn ended, for <see cref="ChatUpdateKind.Finished"/>.</summary>
    public FinishReason? FinishReason { get; }

    /// <summary>Token counts and speeds, for <see cref="ChatUpdateKind.Finished"/>.</summary>
    public GenerationUsage? Usage { get; }

    /// <summary>
    /// For <see cref="ChatUpdateKind.Finished"/>, the assistant turn as it goes into the conversation (reasoning, answer
    /// and tool calls); null when the turn was cancelled.
    /// </summary>
    public Message? Message { get; }

    /// <inheritdoc/>
    public override string ToString() => Kind == ChatUpdateKind.Finished ? $"Finished: {FinishReason}" : $"{Kind}: {Text}";
}
