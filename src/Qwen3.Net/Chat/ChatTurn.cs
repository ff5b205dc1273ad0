using System.Text;

using Qwen3.Net.Generation;

namespace Qwen3.Net.Chat;

/// <summary>A whole assistant turn, collected from its <see cref="ChatUpdate"/> stream.</summary>
public sealed class ChatTurn
{
    private ChatTurn(string reasoning, string answer, IReadOnlyList<ToolCall> toolCalls, IReadOnlyList<MalformedToolCall> malformed,
        IReadOnlyList<int> tokenIds, FinishReason finishReason, GenerationUsage usage)
    {
        Reasoning = reasoning;
        Answer = answer;
        ToolCalls = toolCalls;
        MalformedToolCalls = malformed;
        TokenIds = tokenIds;
        FinishReason = finishReason;
        Usage = usage;
    }

    /// <summary>The model's reasoning; empty when it did not think.</summary>
    public string Reasoning { get; }

    /// <summary>The answer, without reasoning or tool-call blocks.</summary>
    public string Answer { get; }

    /// <summary>The well-formed tool calls; answer them with <see cref="ChatSession.AddToolResult"/>, then <see cref="ChatSession.ContinueAsync"/>.</summary>
    public IReadOnlyList<ToolCall> ToolCalls { get; }

    /// <summary>Tool-call blocks that could not be parsed.</summary>
    public IReadOnlyList<MalformedToolCall> MalformedToolCalls { get; }

    /// <summary>Every generated token, in order.</summary>
    public IReadOnlyList<int> TokenIds { get; }

    /// <summary>Why the turn ended.</summary>
    public FinishReason FinishReason { get; }

    /// <summary>Token counts and speeds.</summary>
    public GenerationUsage Usage { get; }

    /// <summary>Reads a turn's updates to the end and gathers them.</summary>
    /// <param name="updates">The stream from <see cref="ChatSession.SendAsync(string, ChatTurnOptions?, CancellationToken)"/> or <see cref="ChatSession.ContinueAsync"/>.</param>
    /// <param name="cancellationToken">Stops reading; the turn is then cancelled and this throws <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="OperationCanceledException">The turn was cancelled.</exception>
    public static async Task<ChatTurn> CollectAsync(IAsyncEnumerable<ChatUpdate> updates, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(updates);
        var reasoning = new StringBuilder();
        var answer = new StringBuilder();
        var toolCalls = new List<ToolCall>();
        var malformed = new List<MalformedToolCall>();
        var ids = new List<int>();
        await foreach (var update in updates.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            ids.AddRange(update.TokenIds);
            switch (update.Kind)
            {
                case ChatUpdateKind.Reasoning:
                    reasoning.Append(update.Text);
                    break;
                case ChatUpdateKind.Answer:
                    answer.Append(update.Text);
                    break;
                case ChatUpdateKind.ToolCall:
                    toolCalls.Add(update.ToolCall!);
                    break;
                case ChatUpdateKind.MalformedToolCall:
                    malformed.Add(update.MalformedToolCall!);
                    break;
                case ChatUpdateKind.Finished:
                    if (update.FinishReason == FinishReason.Cancelled)
                    {
                        throw new OperationCanceledException("The chat turn was cancelled.", cancellationToken);
                    }

                    return new ChatTurn(reasoning.ToString(), answer.ToString(), toolCalls, malformed, ids, update.FinishReason!.Value, update.Usage!);
            }
        }

        throw new InvalidOperationException("The update stream ended without a Finished update.");
    }
}
