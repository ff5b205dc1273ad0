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
}

/// <summary>Why a turn ended.</summary>
public enum ChatFinishReason
{
    /// <summary>The model emitted an end-of-turn token (<c>&lt;|im_end|&gt;</c> or <c>&lt;|endoftext|&gt;</c>).</summary>
    Stop,

    /// <summary>One of <see cref="SamplingOptions.StopStrings"/> appeared in the output.</summary>
    StopString,

    /// <summary><see cref="SamplingOptions.MaxNewTokens"/> tokens were generated.</summary>
    Length,

    /// <summary>The session's context is full.</summary>
    ContextFull,

    /// <summary>The caller's cancellation token was cancelled; the turn was not added to the history.</summary>
    Cancelled,
}

/// <summary>
/// One step of a streamed turn: a piece of reasoning or answer text, a tool call, or the final update with the finish
/// reason and usage. Concatenating <see cref="TokenIds"/> over all updates of a turn gives every generated token, in order.
/// </summary>
public sealed class ChatUpdate
{
    internal ChatUpdate(ChatUpdateKind kind, string text, IReadOnlyList<int> tokenIds, ToolCall? toolCall = null,
        MalformedToolCall? malformedToolCall = null, ChatFinishReason? finishReason = null, ChatUsage? usage = null)
    {
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
    /// For <see cref="ChatUpdateKind.Reasoning"/> and <see cref="ChatUpdateKind.Answer"/>, the new text (whole characters
    /// only); for tool calls, the text of the block between its tags; empty for <see cref="ChatUpdateKind.Finished"/>.
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
    public ChatFinishReason? FinishReason { get; }

    /// <summary>Token counts and speeds, for <see cref="ChatUpdateKind.Finished"/>.</summary>
    public ChatUsage? Usage { get; }

    /// <inheritdoc/>
    public override string ToString() => Kind == ChatUpdateKind.Finished ? $"Finished: {FinishReason}" : $"{Kind}: {Text}";
}

/// <summary>Token counts and speeds of one turn.</summary>
/// <param name="PromptTokens">Tokens in the rendered conversation the turn answered.</param>
/// <param name="ReusedPromptTokens">Prompt tokens already in the KV cache from earlier turns, which were not evaluated again.</param>
/// <param name="GeneratedTokens">Tokens the model generated, the end-of-turn token included.</param>
/// <param name="PrefillTime">Time spent evaluating the new prompt tokens.</param>
/// <param name="DecodeTime">Time spent generating, from the end of the prefill to the last token.</param>
public sealed record ChatUsage(int PromptTokens, int ReusedPromptTokens, int GeneratedTokens, TimeSpan PrefillTime, TimeSpan DecodeTime)
{
    /// <summary>Prompt tokens that were evaluated in this turn.</summary>
    public int PrefilledTokens => PromptTokens - ReusedPromptTokens;

    /// <summary>Prefill speed, in tokens per second (0 when nothing was timed).</summary>
    public double PrefillTokensPerSecond => Rate(PrefilledTokens, PrefillTime);

    /// <summary>Generation speed, in tokens per second (0 when nothing was timed).</summary>
    public double DecodeTokensPerSecond => Rate(GeneratedTokens, DecodeTime);

    private static double Rate(int tokens, TimeSpan time) => time > TimeSpan.Zero ? tokens / time.TotalSeconds : 0;
}
