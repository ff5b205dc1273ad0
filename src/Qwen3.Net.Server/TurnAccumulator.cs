using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Encodings.Web;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Server;

/// <summary>A tool call as OpenAI returns it: an id for the client to answer, the name and the arguments as JSON text.</summary>
internal sealed record OpenAIToolCall(string Id, string Name, string Arguments);

/// <summary>Gathers one turn's updates into what the OpenAI response reports, and writes its JSON shapes.</summary>
internal sealed class TurnAccumulator
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly StringBuilder _reasoning = new();
    private readonly StringBuilder _answer = new();

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

    /// <summary>Adds a text or tool-call update and returns what a stream sends for it: reasoning, answer text or a call.</summary>
    public (string? Reasoning, string? Answer, OpenAIToolCall? Call) Add(ChatUpdate update)
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
            case ChatUpdateKind.ToolCall:
                var call = new OpenAIToolCall("call_" + RandomHex(12), update.ToolCall!.Name, ArgumentsText(update.ToolCall.Arguments));
                ToolCalls.Add(call);
                return (null, null, call);
            case ChatUpdateKind.MalformedToolCall:
                // What the model wrote is not a call; it goes to the client as text rather than being dropped.
                string text = $"<tool_call>{update.MalformedToolCall!.Text}</tool_call>";
                _answer.Append(text);
                return (null, text, null);
            default:
                return (null, null, null);
        }
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
                WriteToolCall(w, call, null);
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

    public static void WriteToolCall(Utf8JsonWriter w, OpenAIToolCall call, int? index)
    {
        w.WriteStartObject();
        if (index is { } i)
        {
            w.WriteNumber("index", i);
        }

        w.WriteString("id", call.Id);
        w.WriteString("type", "function");
        w.WriteStartObject("function");
        w.WriteString("name", call.Name);
        w.WriteString("arguments", call.Arguments);
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
