using System.Text;

namespace Qwen3.Net.ScriptedModel;

/// <summary>A signal the scripted model reads from the context, +1 or -1 at every position.</summary>
internal enum Feature
{
    /// <summary>The current token follows <c>&lt;think&gt;</c>.</summary>
    AfterThinkStart,

    /// <summary>The current token follows <c>&lt;tool_call&gt;</c>.</summary>
    AfterToolCallStart,

    /// <summary>The context holds a <c>&lt;tool_call&gt;</c> token (the template's tools section has two).</summary>
    ToolsInPrompt,

    /// <summary>The context holds a <c>&lt;tool_response&gt;</c> token.</summary>
    ToolResponseInPrompt,
}

/// <summary>One step of a script: after <see cref="From"/>, write <see cref="To"/> when every feature of the key has its sign.</summary>
internal sealed record Transition(int From, int To, IReadOnlyList<(Feature Feature, int Sign)> Key);

/// <summary>
/// The token ids of every scripted output. Each id is followed by one token only, or by several told apart by the
/// features of <see cref="Transition.Key"/>, so the model can be a bigram table with a few context-dependent steps.
/// </summary>
public sealed class ScriptPlan
{
    // A search that has not found a split after this many tries will not: the text needs more distinct tokens.
    private const int SearchBudget = 200_000;

    // Longest token tried, in bytes.
    private const int LongestToken = 16;

    private readonly List<Transition> _transitions = [];

    private ScriptPlan(Qwen3Tokenizer tokenizer)
    {
        int newline = SingleId(tokenizer, "\n");
        int blankLine = SingleId(tokenizer, "\n\n");
        int thinkStart = tokenizer.ThinkStartId;
        int thinkEnd = tokenizer.ThinkEndId;
        int toolCallStart = tokenizer.ToolCallStartId;
        int toolCallEnd = tokenizer.ToolCallEndId;
        int imEnd = tokenizer.ImEndId;
        int toolResponse = tokenizer.TokenToId("<tool_response>") ?? throw new InvalidOperationException("The vocabulary has no <tool_response>.");

        // The structural ids take part in fixed steps; script texts must be written without them.
        var used = new HashSet<int> { newline, blankLine, thinkStart, thinkEnd, toolCallStart, toolCallEnd, imEnd, toolResponse };

        // The JSON first: it has the fewest ways to be written.
        int[] toolJson = Split(tokenizer, Script.ToolCallJson + "\n", used);
        int[] chatReasoning = Split(tokenizer, Script.ChatReasoning + "\n", used);
        int[] chatAnswer = Split(tokenizer, Script.ChatAnswer, used);
        int[] toolReasoning = Split(tokenizer, Script.ToolCallReasoning + "\n", used);
        int[] finalReasoning = Split(tokenizer, Script.FinalReasoning + "\n", used);
        int[] finalAnswer = Split(tokenizer, Script.FinalAnswer, used);

        int[] toolCall = [toolCallStart, newline, .. toolJson, toolCallEnd];
        Chat = [.. chatAnswer, imEnd];
        ChatThinking = [thinkStart, newline, .. chatReasoning, thinkEnd, blankLine, .. Chat];
        ToolCall = [.. toolCall, imEnd];
        ToolCallThinking = [thinkStart, newline, .. toolReasoning, thinkEnd, blankLine, .. ToolCall];
        Final = [.. finalAnswer, imEnd];
        FinalThinking = [thinkStart, newline, .. finalReasoning, thinkEnd, blankLine, .. Final];

        // A prompt with thinking enabled ends with "<|im_start|>assistant\n", so the prompt's "\n" opens the think block;
        // the "\n" right after <think> (or <tool_call>) is told apart by the previous token.
        (Feature, int)[] plainNewline = [(Feature.AfterThinkStart, -1), (Feature.AfterToolCallStart, -1)];
        Add(newline, thinkStart, plainNewline);
        Add(thinkStart, newline);
        Add(newline, chatReasoning[0], (Feature.AfterThinkStart, 1), (Feature.ToolsInPrompt, -1), (Feature.ToolResponseInPrompt, -1));
        Add(newline, toolReasoning[0], (Feature.AfterThinkStart, 1), (Feature.ToolsInPrompt, 1), (Feature.ToolResponseInPrompt, -1));
        Add(newline, finalReasoning[0], (Feature.AfterThinkStart, 1), (Feature.ToolResponseInPrompt, 1));
        Add(newline, toolJson[0], (Feature.AfterToolCallStart, 1));
        foreach (int[] reasoning in new[] { chatReasoning, toolReasoning, finalReasoning })
        {
            AddChain(reasoning);
            Add(reasoning[^1], thinkEnd);
        }

        // A prompt with thinking disabled ends with "</think>\n\n", the same two tokens that close generated reasoning,
        // so both modes go on to the same answer.
        Add(thinkEnd, blankLine);
        Add(blankLine, chatAnswer[0], (Feature.ToolsInPrompt, -1), (Feature.ToolResponseInPrompt, -1));
        Add(blankLine, toolCallStart, (Feature.ToolsInPrompt, 1), (Feature.ToolResponseInPrompt, -1));
        Add(blankLine, finalAnswer[0], (Feature.ToolResponseInPrompt, 1));
        AddChain(chatAnswer);
        Add(chatAnswer[^1], imEnd);
        Add(toolCallStart, newline);
        AddChain([.. toolJson, toolCallEnd]);
        Add(toolCallEnd, imEnd);
        AddChain(finalAnswer);
        Add(finalAnswer[^1], imEnd);

        // A step written twice would double its lm_head weight, and an unkeyed step beside others from the same token
        // would tie with them.
        foreach (var steps in _transitions.GroupBy(t => t.From))
        {
            if (steps.Count() != steps.Select(t => t.To).Distinct().Count() || (steps.Count() > 1 && steps.Any(t => t.Key.Count == 0)))
            {
                throw new InvalidOperationException($"Token {steps.Key} has ambiguous steps to {string.Join(", ", steps.Select(t => t.To))}.");
            }
        }

        Predecessors = [.. _transitions.Select(t => t.From).Distinct()];
    }

    /// <summary>Output with thinking enabled and no tools: <c>&lt;think&gt;</c>, <see cref="Script.ChatReasoning"/>, <c>&lt;/think&gt;</c>, <see cref="Script.ChatAnswer"/>, <c>&lt;|im_end|&gt;</c>.</summary>
    public IReadOnlyList<int> ChatThinking { get; }

    /// <summary>Output with thinking disabled and no tools: <see cref="Script.ChatAnswer"/> and <c>&lt;|im_end|&gt;</c>.</summary>
    public IReadOnlyList<int> Chat { get; }

    /// <summary>Output with thinking enabled when the prompt has tools: <see cref="Script.ToolCallReasoning"/>, then the tool call.</summary>
    public IReadOnlyList<int> ToolCallThinking { get; }

    /// <summary>Output with thinking disabled when the prompt has tools: <c>&lt;tool_call&gt;\n</c><see cref="Script.ToolCallJson"/><c>\n&lt;/tool_call&gt;&lt;|im_end|&gt;</c>.</summary>
    public IReadOnlyList<int> ToolCall { get; }

    /// <summary>Output with thinking enabled after a tool result: <see cref="Script.FinalReasoning"/>, then <see cref="Script.FinalAnswer"/>.</summary>
    public IReadOnlyList<int> FinalThinking { get; }

    /// <summary>Output with thinking disabled after a tool result: <see cref="Script.FinalAnswer"/> and <c>&lt;|im_end|&gt;</c>.</summary>
    public IReadOnlyList<int> Final { get; }

    internal IReadOnlyList<Transition> Transitions => _transitions;

    /// <summary>Every id that some step starts from, in first-use order.</summary>
    internal IReadOnlyList<int> Predecessors { get; }

    /// <summary>Chooses the token ids of the scripts for <paramref name="tokenizer"/>'s vocabulary.</summary>
    /// <exception cref="InvalidOperationException">A script text cannot be written with tokens not used elsewhere.</exception>
    public static ScriptPlan Create(Qwen3Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new ScriptPlan(tokenizer);
    }

    private void Add(int from, int to, params (Feature, int)[] key) => _transitions.Add(new Transition(from, to, key));

    private void AddChain(int[] ids)
    {
        for (int i = 0; i + 1 < ids.Length; i++)
        {
            Add(ids[i], ids[i + 1]);
        }
    }

    private static int SingleId(Qwen3Tokenizer tokenizer, string text) =>
        tokenizer.Encode(text) is [int id] ? id : throw new InvalidOperationException($"'{text}' is not one token.");

    /// <summary>
    /// Writes <paramref name="text"/> as tokens none of which is in <paramref name="used"/> or repeated, preferring long
    /// tokens, and adds them to <paramref name="used"/>. Any vocabulary entry may be used, also one the tokenizer would
    /// never produce (such as <c>", "</c>) or part of a character's bytes: the detokenizer must handle them all.
    /// </summary>
    private static int[] Split(Qwen3Tokenizer tokenizer, string text, HashSet<int> used)
    {
        var path = new List<int>();
        int budget = SearchBudget;
        if (!Search(tokenizer, ByteLevel(Encoding.UTF8.GetBytes(text)), 0, path, used, ref budget))
        {
            throw new InvalidOperationException($"No split of '{text}' into tokens that are not used elsewhere in the scripts.");
        }

        if (tokenizer.Decode(path) != text)
        {
            throw new InvalidOperationException($"The split of '{text}' decodes to '{tokenizer.Decode(path)}'.");
        }

        return [.. path];
    }

    private static string ByteLevel(byte[] bytes) => string.Concat(bytes.Select(ByteLevelAlphabet.ByteToChar));

    /// <summary>Depth-first, longest token first, over the byte-level spelling of the text from <paramref name="start"/>.</summary>
    private static bool Search(Qwen3Tokenizer tokenizer, string spelling, int start, List<int> path, HashSet<int> used, ref int budget)
    {
        if (start == spelling.Length)
        {
            return true;
        }

        for (int length = Math.Min(LongestToken, spelling.Length - start); length > 0; length--)
        {
            if (--budget < 0)
            {
                return false;
            }

            if (tokenizer.TokenToId(spelling.Substring(start, length)) is not int id || used.Contains(id))
            {
                continue;
            }

            path.Add(id);
            used.Add(id);
            if (Search(tokenizer, spelling, start + length, path, used, ref budget))
            {
                return true;
            }

            used.Remove(id);
            path.RemoveAt(path.Count - 1);
        }

        return false;
    }
}
