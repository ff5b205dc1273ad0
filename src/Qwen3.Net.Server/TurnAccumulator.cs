using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Encodings.Web;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Server;

/// <summary>A tool call as OpenAI returns it: an id for the client to answer, the name and the arguments as JSON text.</summary>
internal sealed record OpenAIToolCall(string Id, string Name, string Arguments);

/// <summary>
/// One entry of a streamed delta's <c>tool_calls</c>: the first for a call carries its id and name, later ones only a
/// piece of the arguments text; a client joins the pieces of one index.
/// </summary>
internal sealed record ToolCallDelta(int Index, string? Id, string? Name, string Arguments);

/// <summary>Gathers one turn's updates into what the OpenAI response reports, and writes its JSON shapes.</summary>
internal sealed class TurnAccumulator
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly StringBuilder _reasoning = new();
    private readonly StringBuilder _answer = new();
    private ToolCallStreamer? _block;
    private ToolCallDelta? _streamed;
    private int _streamedArguments;
    private int _nextIndex;

    public TurnAccumulator(string model)
    {
        Model = model;
    }

    public string Id { get; } = "chatcmpl-" + RandomHex(12);

    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public string Model { get; }

    public List<OpenAIToolCall> ToolCalls { get; } = [];

    /// <summary>Tokens generated inside the think block, its tags included.</summary>
    public int ReasoningTokens { get; private set; }

    /// <summary>
    /// Adds a text or tool-call update and returns what a stream sends for it: reasoning, answer text or a tool-call
    /// delta. A call whose text came in <see cref="ChatUpdateKind.ToolCallText"/> pieces is sent as soon as its name
    /// and the start of its arguments are known, then piece by piece; any other call in one delta when it is complete.
    /// </summary>
    public (string? Reasoning, string? Answer, ToolCallDelta? Call) Add(ChatUpdate update)
    {
        switch (update.Kind)
        {
            case ChatUpdateKind.Reasoning:
                ReasoningTokens += update.TokenIds.Count;
                _reasoning.Append(update.Text);
                return (update.Text, null, null);
            case ChatUpdateKind.Answer:
                _answer.Append(update.Text);
                return (null, update.Text, null);
            case ChatUpdateKind.ToolCallText:
                return (null, null, AddToolCallText(update.Text));
            case ChatUpdateKind.ToolCall:
                return (null, null, EndToolCall(update.ToolCall!));
            case ChatUpdateKind.MalformedToolCall:
                // What the model wrote is not a call; it goes to the client as text rather than being dropped. A call
                // already streamed stays as it was sent, with arguments that do not parse; the next call takes a new index.
                _block = null;
                _streamed = null;
                string text = $"<tool_call>{update.MalformedToolCall!.Text}</tool_call>";
                _answer.Append(text);
                return (null, text, null);
            default:
                return (null, null, null);
        }
    }

    private ToolCallDelta? AddToolCallText(string text)
    {
        _block ??= new ToolCallStreamer();
        _block.Append(text);
        if (!_block.Ready)
        {
            return null;
        }

        var arguments = _block.Arguments;
        if (_streamed is null)
        {
            _streamed = new ToolCallDelta(_nextIndex++, "call_" + RandomHex(12), _block.Name, arguments.ToString());
            _streamedArguments = arguments.Length;
            return _streamed;
        }

        if (arguments.Length == _streamedArguments)
        {
            return null;
        }

        var piece = new ToolCallDelta(_streamed.Index, null, null, arguments[_streamedArguments..].ToString());
        _streamedArguments = arguments.Length;
        return piece;
    }

    private ToolCallDelta? EndToolCall(ToolCall call)
    {
        string arguments = ArgumentsText(call.Arguments);
        var streamed = _streamed;
        var block = _block;
        _block = null;
        _streamed = null;
        if (streamed is null)
        {
            var whole = new OpenAIToolCall("call_" + RandomHex(12), call.Name, arguments);
            ToolCalls.Add(whole);
            return new ToolCallDelta(_nextIndex++, whole.Id, whole.Name, whole.Arguments);
        }

        // The streamer saw the same name and arguments span the parser took, so what was sent is the final text; a
        // stream that would now contradict itself is a bug, reported as a server error rather than as a wrong call.
        string sent = block!.Arguments[.._streamedArguments].ToString();
        if (streamed.Name != call.Name || !arguments.StartsWith(sent, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The streamed tool call '{streamed.Name}' {sent} differs from the parsed call '{call.Name}' {arguments}.");
        }

        ToolCalls.Add(new OpenAIToolCall(streamed.Id!, call.Name, arguments));
        return arguments.Length > sent.Length ? new ToolCallDelta(streamed.Index, null, null, arguments[sent.Length..]) : null;
    }

    public string FinishReasonOf(FinishReason reason) => ToolCalls.Count > 0 ? "tool_calls" : reason switch
    {
        FinishReason.Length or FinishReason.ContextFull => "length",
        _ => "stop",
    };

    /// <summary>One <c>chat.completion.chunk</c> with a delta (or none) and a finish reason (or none).</summary>
    public byte[] Chunk(Action<Utf8JsonWriter>? delta, string? finishReason) => Write(w =>
    {
        WriteHeader(w, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        delta?.Invoke(w);
        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>The last chunk of a stream with <c>stream_options.include_usage</c>: no choices, the usage.</summary>
    public byte[] UsageChunk(GenerationUsage usage) => Write(w =>
    {
        WriteHeader(w, "chat.completion.chunk");
        w.WriteStartArray("choices");
        w.WriteEndArray();
        WriteUsage(w, usage);
        w.WriteEndObject();
    });

    /// <summary>The whole <c>chat.completion</c> of a non-streamed request.</summary>
    public byte[] Completion(string finishReason, GenerationUsage usage, bool returnReasoning) => Write(w =>
    {
        WriteHeader(w, "chat.completion");
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        w.WriteString("content", _answer.Length == 0 && ToolCalls.Count > 0 ? null : _answer.ToString());
        if (returnReasoning && _reasoning.Length > 0)
        {
            w.WriteString("reasoning_content", _reasoning.ToString());
        }

        if (ToolCalls.Count > 0)
        {
            w.WriteStartArray("tool_calls");
            foreach (var call in ToolCalls)
            {
                WriteToolCall(w, call);
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        WriteUsage(w, usage);
        w.WriteEndObject();
    });

    public static void WriteToolCall(Utf8JsonWriter w, OpenAIToolCall call)
    {
        w.WriteStartObject();
        w.WriteString("id", call.Id);
        w.WriteString("type", "function");
        w.WriteStartObject("function");
        w.WriteString("name", call.Name);
        w.WriteString("arguments", call.Arguments);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A streamed delta's <c>tool_calls</c> entry; id, type and name only in a call's first delta.</summary>
    public static void WriteToolCallDelta(Utf8JsonWriter w, ToolCallDelta delta)
    {
        w.WriteStartObject();
        w.WriteNumber("index", delta.Index);
        if (delta.Id is not null)
        {
            w.WriteString("id", delta.Id);
            w.WriteString("type", "function");
        }

        w.WriteStartObject("function");
        if (delta.Name is not null)
        {
            w.WriteString("name", delta.Name);
        }

        w.WriteString("arguments", delta.Arguments);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static byte[] Write(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, WriterOptions))
        {
            body(writer);
        }

        return stream.ToArray();
    }

    /// <summary>The arguments as JSON text: a string holding raw arguments is passed as it is, anything else is the model's own JSON.</summary>
    private static string ArgumentsText(JsonElement arguments) =>
        arguments.ValueKind == JsonValueKind.String ? arguments.GetString()! : arguments.GetRawText();

    private static string RandomHex(int bytes) => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(bytes));

    private void WriteHeader(Utf8JsonWriter w, string type)
    {
        w.WriteStartObject();
        w.WriteString("id", Id);
        w.WriteString("object", type);
        w.WriteNumber("created", Created);
        w.WriteString("model", Model);
    }

    private void WriteUsage(Utf8JsonWriter w, GenerationUsage usage)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", usage.PromptTokens);
        w.WriteNumber("completion_tokens", usage.GeneratedTokens);
        w.WriteNumber("total_tokens", usage.PromptTokens + usage.GeneratedTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", usage.ReusedPromptTokens);
        w.WriteEndObject();
        w.WriteStartObject("completion_tokens_details");
        w.WriteNumber("reasoning_tokens", ReasoningTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
