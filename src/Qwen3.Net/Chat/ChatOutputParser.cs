using System.Text;
using System.Text.Json;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Chat;

/// <summary>What a piece of parsed model output is.</summary>
internal enum OutputSegmentKind
{
    Reasoning,
    Answer,
    ToolCall,
    MalformedToolCall,

    /// <summary>A piece of a tool-call block's text as it is generated, before the block is complete.</summary>
    ToolCallText,
}

/// <summary>One piece of parsed output: reasoning or answer text, or a complete tool-call block.</summary>
internal readonly record struct OutputSegment(OutputSegmentKind Kind, string Text, ToolCall? ToolCall = null, MalformedToolCall? Malformed = null);

/// <summary>
/// Splits a stream of generated tokens, given with their decoded text, into reasoning, answer and tool calls. The result
/// does not depend on how the text is split across tokens.
/// </summary>
/// <remarks>
/// <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c> are recognised by token id only, and never shown. Newlines are trimmed
/// the way the Qwen3 template trims them when it re-renders a turn (reasoning stripped of leading and trailing newlines,
/// answer of leading ones), so the empty <c>&lt;think&gt;\n\n&lt;/think&gt;\n\n</c> after <c>/no_think</c> yields no text.
/// Tool-call tags are matched in the text, so they are found whether the tokenizer emits them as one token or several.
/// </remarks>
internal sealed class ChatOutputParser
{
    internal const string ToolCallOpen = "<tool_call>";
    internal const string ToolCallClose = "</tool_call>";

    private readonly int _thinkStartId;
    private readonly int _thinkEndId;
    private readonly StringBuilder _reasoning = new();
    private readonly StringBuilder _content = new();
    private readonly StringBuilder _answer = new();
    private readonly StringBuilder _toolText = new();
    private readonly List<ToolCall> _toolCalls = [];
    private readonly List<MalformedToolCall> _malformed = [];
    private readonly bool _streamToolCallText;

    private Phase _phase;
    private bool _atRunStart = true;
    private int _heldNewlines;
    private string _tagHold = string.Empty;
    private bool _sawReasoning;
    private bool _finished;
    private int _toolTextSent;

    /// <param name="thinkStartId">The id of <c>&lt;think&gt;</c>, or -1 when the vocabulary has none.</param>
    /// <param name="thinkEndId">The id of <c>&lt;/think&gt;</c>, or -1 when the vocabulary has none.</param>
    /// <param name="startsInReasoning">The prompt already opened a think block, so output starts as reasoning.</param>
    /// <param name="streamToolCallText">
    /// Also report a tool-call block's text piece by piece as it arrives (<see cref="OutputSegmentKind.ToolCallText"/>);
    /// the pieces of a block concatenate to the text of the segment that ends it.
    /// </param>
    public ChatOutputParser(int thinkStartId, int thinkEndId, bool startsInReasoning, bool streamToolCallText = false)
    {
        _streamToolCallText = streamToolCallText;
        _thinkStartId = thinkStartId;
        _thinkEndId = thinkEndId;
        _phase = startsInReasoning ? Phase.Reasoning : Phase.Answer;
        _sawReasoning = startsInReasoning;
    }

    private enum Phase
    {
        Reasoning,
        Answer,
        ToolCall,
    }

    /// <summary>The reasoning text so far, newlines trimmed as the template does.</summary>
    public string Reasoning => _reasoning.ToString();

    /// <summary>The answer text so far, without tool-call blocks.</summary>
    public string Answer => _answer.ToString();

    /// <summary>Whether a think block was opened, so the turn has reasoning (possibly empty).</summary>
    public bool HasReasoning => _sawReasoning;

    /// <summary>
    /// The assistant content to keep in history: the answer, with malformed tool-call blocks kept verbatim so the
    /// next prompt shows the model what it actually wrote. Well-formed calls are in <see cref="ToolCalls"/>.
    /// </summary>
    public string HistoryContent => _content.ToString();

    /// <summary>The well-formed tool calls so far.</summary>
    public IReadOnlyList<ToolCall> ToolCalls => _toolCalls;

    /// <summary>The malformed tool-call blocks so far.</summary>
    public IReadOnlyList<MalformedToolCall> MalformedToolCalls => _malformed;

    /// <summary>Adds one generated token.</summary>
    /// <param name="tokenId">The token.</param>
    /// <param name="text">
    /// The text released with it: complete characters only, possibly empty while a character is split across tokens or
    /// a stop string might be starting. At a think marker it is text that came before the marker.
    /// </param>
    /// <param name="output">Receives the segments this token completes.</param>
    public void Push(int tokenId, string text, List<OutputSegment> output)
    {
        if (_finished)
        {
            throw new InvalidOperationException("The output is already finished.");
        }

        ParseText(text, output);
        if (tokenId == _thinkStartId || tokenId == _thinkEndId)
        {
            EndRun(output);
            _phase = tokenId == _thinkStartId ? Phase.Reasoning : Phase.Answer;
            _sawReasoning |= tokenId == _thinkStartId;
            _atRunStart = true;
        }
    }

    /// <summary>Ends the output; an unclosed tool-call block is reported as malformed.</summary>
    /// <param name="output">Receives the last segments.</param>
    public void Finish(List<OutputSegment> output)
    {
        if (_finished)
        {
            return;
        }

        EndRun(output);
        _finished = true;
    }

    private void ParseText(string text, List<OutputSegment> output)
    {
        while (text.Length > 0)
        {
            switch (_phase)
            {
                case Phase.Reasoning:
                    EmitRunText(text, OutputSegmentKind.Reasoning, output);
                    return;

                case Phase.Answer:
                {
                    string pending = _tagHold + text;
                    _tagHold = string.Empty;
                    int open = pending.IndexOf(ToolCallOpen, StringComparison.Ordinal);
                    if (open < 0)
                    {
                        int hold = StopStringMatcher.PartialSuffix(pending, ToolCallOpen);
                        _tagHold = pending[^hold..];
                        EmitRunText(pending[..^hold], OutputSegmentKind.Answer, output);
                        return;
                    }

                    EmitRunText(pending[..open], OutputSegmentKind.Answer, output);
                    _heldNewlines = 0;
                    _phase = Phase.ToolCall;
                    _toolText.Clear();
                    _toolTextSent = 0;
                    text = pending[(open + ToolCallOpen.Length)..];
                    break;
                }

                case Phase.ToolCall:
                {
                    int searchFrom = Math.Max(0, _toolText.Length - (ToolCallClose.Length - 1));
                    _toolText.Append(text);
                    int close = _toolText.ToString().IndexOf(ToolCallClose, searchFrom, StringComparison.Ordinal);
                    if (close < 0)
                    {
                        // A possible start of </tool_call> is held back, so no piece ever contains part of the tag.
                        EmitToolText(_toolText.Length - StopStringMatcher.PartialSuffix(_toolText.ToString(), ToolCallClose), output);
                        return;
                    }

                    string all = _toolText.ToString();
                    EmitToolText(close, output);
                    EmitToolCall(all[..close], output);
                    _toolText.Clear();
                    _phase = Phase.Answer;
                    _atRunStart = true;
                    text = all[(close + ToolCallClose.Length)..];
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Emits reasoning or answer text, dropping newlines at the start of a run and holding newlines at its end until
    /// more text shows they are not trailing.
    /// </summary>
    private void EmitRunText(string text, OutputSegmentKind kind, List<OutputSegment> output)
    {
        if (_atRunStart)
        {
            text = text.TrimStart('\n');
            if (text.Length == 0)
            {
                return;
            }

            _atRunStart = false;
        }

        string body = text.TrimEnd('\n');
        int trailing = text.Length - body.Length;
        if (body.Length == 0)
        {
            _heldNewlines += trailing;
            return;
        }

        string emitted = _heldNewlines > 0 ? new string('\n', _heldNewlines) + body : body;
        _heldNewlines = trailing;
        output.Add(new OutputSegment(kind, emitted));
        if (kind == OutputSegmentKind.Reasoning)
        {
            _reasoning.Append(emitted);
        }
        else
        {
            _answer.Append(emitted);
            _content.Append(emitted);
        }
    }

    private void EndRun(List<OutputSegment> output)
    {
        if (_phase == Phase.Answer && _tagHold.Length > 0)
        {
            string held = _tagHold;
            _tagHold = string.Empty;
            EmitRunText(held, OutputSegmentKind.Answer, output);
        }
        else if (_phase == Phase.ToolCall)
        {
            string raw = _toolText.ToString();
            EmitToolText(raw.Length, output);
            _toolText.Clear();
            ReportMalformed(raw, "The tool call was not closed with </tool_call>.", closed: false, output);
        }

        _heldNewlines = 0;
    }

    /// <summary>Reports the block's text from what was reported last up to <paramref name="end"/>, when pieces are wanted.</summary>
    private void EmitToolText(int end, List<OutputSegment> output)
    {
        if (_streamToolCallText && end > _toolTextSent)
        {
            output.Add(new OutputSegment(OutputSegmentKind.ToolCallText, _toolText.ToString(_toolTextSent, end - _toolTextSent)));
            _toolTextSent = end;
        }
    }

    private void EmitToolCall(string raw, List<OutputSegment> output)
    {
        string? error = TryParseToolCall(raw, out var call);
        if (call is not null)
        {
            _toolCalls.Add(call);
            output.Add(new OutputSegment(OutputSegmentKind.ToolCall, raw, ToolCall: call));
        }
        else
        {
            ReportMalformed(raw, error!, closed: true, output);
        }
    }

    private void ReportMalformed(string raw, string error, bool closed, List<OutputSegment> output)
    {
        var malformed = new MalformedToolCall(raw, error);
        _malformed.Add(malformed);
        _content.Append(ToolCallOpen).Append(raw);
        if (closed)
        {
            _content.Append(ToolCallClose);
        }

        output.Add(new OutputSegment(OutputSegmentKind.MalformedToolCall, raw, Malformed: malformed));
    }

    /// <summary>Parses <c>{"name": ..., "arguments": ...}</c>; returns null and the call, or the reason it is malformed.</summary>
    internal static string? TryParseToolCall(string raw, out ToolCall? call)
    {
        call = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(raw.Trim());
        }
        catch (JsonException e)
        {
            return $"The tool call is not valid JSON: {e.Message}";
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return $"The tool call must be a JSON object, not {root.ValueKind}.";
            }

            // Which of two values a reader takes differs between readers, so a repeated key is refused as ambiguous.
            int names = 0, argumentLists = 0;
            foreach (var property in root.EnumerateObject())
            {
                names += property.NameEquals("name") ? 1 : 0;
                argumentLists += property.NameEquals("arguments") ? 1 : 0;
            }

            if (names > 1 || argumentLists > 1)
            {
                return $"The tool call has more than one \"{(names > 1 ? "name" : "arguments")}\".";
            }

            if (!root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(name.GetString()))
            {
                return "The tool call has no \"name\" string.";
            }

            if (!root.TryGetProperty("arguments", out var arguments))
            {
                return "The tool call has no \"arguments\".";
            }

            if (arguments.ValueKind is not (JsonValueKind.Object or JsonValueKind.String))
            {
                return $"The tool call's \"arguments\" must be an object or a JSON string, not {arguments.ValueKind}.";
            }

            call = new ToolCall(name.GetString()!, arguments);
            return null;
        }
    }
}
