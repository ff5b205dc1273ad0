using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;

namespace Qwen3.Net.Extensions.AI;

/// <summary>A request mapped from Microsoft.Extensions.AI types: the conversation and the turn's options.</summary>
internal sealed record Qwen3ChatRequest(IReadOnlyList<Message> Messages, ChatGenerationOptions Options, bool IncludeReasoning);

/// <summary>
/// Every translation between Microsoft.Extensions.AI and Qwen3.Net: messages and options in, updates and usage out.
/// Anything that cannot be honoured throws <see cref="NotSupportedException"/> naming it instead of being dropped.
/// </summary>
internal static class Qwen3ChatMapper
{
    /// <summary>The <see cref="ChatOptions.AdditionalProperties"/> key that switches thinking (a bool, like the template's variable).</summary>
    public const string EnableThinkingKey = "enable_thinking";

    /// <summary>The <see cref="ChatOptions.AdditionalProperties"/> key of <see cref="SamplingOptions.MinP"/>.</summary>
    public const string MinPKey = "min_p";

    /// <summary>The <see cref="ChatOptions.AdditionalProperties"/> key of <see cref="SamplingOptions.RepetitionPenalty"/>.</summary>
    public const string RepetitionPenaltyKey = "repetition_penalty";

    /// <summary>The <see cref="AIContent.AdditionalProperties"/> key on the text of a malformed tool call: why it could not be parsed.</summary>
    public const string MalformedToolCallErrorKey = "malformed_tool_call_error";

    /// <summary>Compact JSON for tool calls and results: the model reads it as the OpenAI API would send it, without indentation tokens.</summary>
    private static readonly JsonSerializerOptions ToolJson = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    private const string ToolCallOpen = "<tool_call>";
    private const string ToolCallClose = "</tool_call>";

    public static Qwen3ChatRequest ToRequest(Qwen3ChatClient client, IEnumerable<ChatMessage> messages, ChatOptions? options, string modelId)
    {
        var raw = RawOptions(client, options);
        var conversation = new List<Message>();
        if (!string.IsNullOrEmpty(options?.Instructions))
        {
            conversation.Add(Message.System(options.Instructions));
        }

        foreach (var message in messages)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
            AddMessages(message, conversation);
        }

        if (options is null)
        {
            return new Qwen3ChatRequest(conversation, raw ?? new ChatGenerationOptions(), IncludeReasoning: true);
        }

        RejectUnsupported(options, modelId);
        var thinking = ThinkingModeOf(options, raw?.ThinkingMode ?? ThinkingMode.Enabled);
        var generation = new ChatGenerationOptions
        {
            ThinkingMode = thinking,
            Sampling = Sampling(options, raw?.Sampling ?? SamplingOptions.For(thinking == ThinkingMode.Enabled)),
            Tools = Tools(options, raw?.Tools ?? []),
            ToolChoice = options.ToolMode is RequiredChatToolMode required
                ? required.RequiredFunctionName is { } name ? ToolChoice.Function(name) : ToolChoice.Required
                : raw?.ToolChoice ?? ToolChoice.Auto,
            ParallelToolCalls = options.AllowMultipleToolCalls ?? raw?.ParallelToolCalls ?? true,
            ResponseFormat = ResponseFormatOf(options) ?? raw?.ResponseFormat,
            MaxThinkingTokens = raw?.MaxThinkingTokens,
        };
        return new Qwen3ChatRequest(conversation, generation, options.Reasoning?.Output != ReasoningOutput.None);
    }

    /// <summary>Maps a finished turn's usage; cached input tokens are the prompt tokens taken from shared KV pages.</summary>
    public static UsageDetails ToUsage(GenerationUsage usage, int reasoningTokens) => new()
    {
        InputTokenCount = usage.PromptTokens,
        OutputTokenCount = usage.GeneratedTokens,
        TotalTokenCount = usage.PromptTokens + usage.GeneratedTokens,
        CachedInputTokenCount = usage.ReusedPromptTokens,
        ReasoningTokenCount = reasoningTokens,
    };

    /// <summary>Maps why a turn ended; a turn that stopped after calling tools ends with <see cref="ChatFinishReason.ToolCalls"/>.</summary>
    public static ChatFinishReason ToFinishReason(FinishReason reason, bool calledTools) => reason switch
    {
        FinishReason.Stop or FinishReason.StopString => calledTools ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
        FinishReason.Length or FinishReason.ContextFull => ChatFinishReason.Length,
        _ => throw new ArgumentOutOfRangeException(nameof(reason), reason, "A cancelled turn has no finish reason; it throws."),
    };

    /// <summary>Maps a parsed tool call to a function call with a fresh call id; unparseable arguments go into <see cref="FunctionCallContent.Exception"/>.</summary>
    public static FunctionCallContent ToFunctionCall(ToolCall call)
    {
        string callId = "call_" + Guid.NewGuid().ToString("N");
        // The template also accepts arguments given as a JSON string; such a string is expected to hold the object.
        string json = call.Arguments.ValueKind == JsonValueKind.String ? call.Arguments.GetString()! : call.Arguments.GetRawText();
        return FunctionCallContent.CreateFromParsedArguments(json, callId, call.Name,
            static text => JsonSerializer.Deserialize<Dictionary<string, object?>>(text, ToolJson));
    }

    /// <summary>
    /// The text of a tool-call block the model got wrong, kept as answer text in its tags (as the conversation history
    /// holds it), with the parser's reason under <see cref="MalformedToolCallErrorKey"/>.
    /// </summary>
    public static TextContent ToMalformedText(MalformedToolCall malformed) => new(ToolCallOpen + malformed.Text + ToolCallClose)
    {
        AdditionalProperties = new() { [MalformedToolCallErrorKey] = malformed.Error },
    };

    private static ChatGenerationOptions? RawOptions(Qwen3ChatClient client, ChatOptions? options)
    {
        object? raw = options?.RawRepresentationFactory?.Invoke(client);
        return raw switch
        {
            null => null,
            ChatGenerationOptions generation => generation,
            _ => throw new NotSupportedException(
                $"ChatOptions.RawRepresentationFactory returned {raw.GetType().Name}; Qwen3ChatClient accepts only {nameof(ChatGenerationOptions)}."),
        };
    }

    private static void AddMessages(ChatMessage message, List<Message> conversation)
    {
        var role = message.Role;
        if (role != ChatRole.System && role != ChatRole.User && role != ChatRole.Assistant && role != ChatRole.Tool)
        {
            throw new NotSupportedException($"The chat role '{role}' is not supported: Qwen3 knows system, user, assistant and tool.");
        }

        var text = new StringBuilder();
        StringBuilder? reasoning = null;
        List<ToolCall>? calls = null;
        bool wroteResults = false;
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case TextContent t:
                    text.Append(t.Text);
                    break;
                case TextReasoningContent r when role == ChatRole.Assistant:
                    (reasoning ??= new StringBuilder()).Append(r.Text);
                    break;
                case FunctionCallContent call when role == ChatRole.Assistant:
                    (calls ??= []).Add(ToToolCall(call));
                    break;
                case FunctionResultContent result when role == ChatRole.Tool:
                    conversation.Add(Message.Tool(ResultText(result)));
                    wroteResults = true;
                    break;
                default:
                    throw new NotSupportedException(
                        $"{content.GetType().Name} in a '{role}' message is not supported by Qwen3ChatClient: Qwen3 dense models read text, " +
                        "assistant reasoning and tool calls, and tool results.");
            }
        }

        if (role == ChatRole.Tool)
        {
            // Results are tool messages of their own, in order; text in a tool message is one more result.
            if (text.Length > 0 || !wroteResults)
            {
                conversation.Add(Message.Tool(text.ToString()));
            }

            return;
        }

        conversation.Add(role == ChatRole.System ? Message.System(text.ToString())
            : role == ChatRole.User ? Message.User(text.ToString())
            : Message.Assistant(text.ToString(), reasoning?.ToString(), calls));
    }

    private static ToolCall ToToolCall(FunctionCallContent call)
    {
        var arguments = JsonSerializer.SerializeToElement(
            call.Arguments ?? new Dictionary<string, object?>(), ToolJson.GetTypeInfo(typeof(IDictionary<string, object?>)));
        return new ToolCall(call.Name, arguments);
    }

    /// <summary>A result as the model reads it: strings and text contents as they are (as OpenAI's client does), other values as JSON text.</summary>
    private static string ResultText(FunctionResultContent result) => result.Result switch
    {
        string text => text,
        AIContent content => ContentText(content),
        IEnumerable<AIContent> contents => string.Concat(contents.Select(ContentText)),
        var value => JsonSerializer.Serialize(value, ToolJson.GetTypeInfo(typeof(object))),
    };

    private static string ContentText(AIContent content) => content as TextContent is { } text ? text.Text
        : throw new NotSupportedException($"A function result holding {content.GetType().Name} is not supported: Qwen3 dense models read text only.");

    private static void RejectUnsupported(ChatOptions options, string modelId)
    {
        if (options.ModelId is { } requested && requested != modelId)
        {
            throw new NotSupportedException($"ChatOptions.ModelId '{requested}' is not this client's model '{modelId}'; use one Qwen3ChatClient per model.");
        }

        if (options.ConversationId is not null)
        {
            throw new NotSupportedException("ChatOptions.ConversationId is not supported: Qwen3ChatClient is stateless; send the whole conversation.");
        }

        if (options.ContinuationToken is not null)
        {
            throw new NotSupportedException("ChatOptions.ContinuationToken is not supported: Qwen3ChatClient has no background responses.");
        }

        if (options.FrequencyPenalty is { } frequency && frequency != 0)
        {
            throw new NotSupportedException("ChatOptions.FrequencyPenalty is not supported by the Qwen3.Net sampler; use PresencePenalty or AdditionalProperties[\"repetition_penalty\"].");
        }

        if (options.AllowMultipleToolCalls == false && options.ToolMode is not RequiredChatToolMode)
        {
            throw new NotSupportedException("ChatOptions.AllowMultipleToolCalls = false is supported with ToolMode RequireAny / RequireSpecific only: the number of calls the model makes on its own cannot be limited.");
        }
    }

    /// <summary>The constraint of <see cref="ChatOptions.ResponseFormat"/>: any JSON object for <see cref="ChatResponseFormat.Json"/>, the schema when one is given.</summary>
    private static ResponseFormat? ResponseFormatOf(ChatOptions options) => options.ResponseFormat switch
    {
        ChatResponseFormatJson { Schema: { } schema } json => ResponseFormat.ForJsonSchema(schema, json.SchemaName),
        ChatResponseFormatJson => ResponseFormat.JsonObject,
        _ => null,
    };

    private static ThinkingMode ThinkingModeOf(ChatOptions options, ThinkingMode fallback)
    {
        ThinkingMode? fromEffort = options.Reasoning?.Effort switch
        {
            null => null,
            ReasoningEffort.None => ThinkingMode.Disabled,
            _ => ThinkingMode.Enabled,
        };
        ThinkingMode? fromProperty = Extra<bool>(options, EnableThinkingKey) switch
        {
            null => null,
            true => ThinkingMode.Enabled,
            false => ThinkingMode.Disabled,
        };
        if (fromEffort is not null && fromProperty is not null && fromEffort != fromProperty)
        {
            throw new ArgumentException(
                $"ChatOptions.Reasoning.Effort {options.Reasoning!.Effort} contradicts AdditionalProperties[\"{EnableThinkingKey}\"] = {fromProperty == ThinkingMode.Enabled}.", nameof(options));
        }

        return fromProperty ?? fromEffort ?? fallback;
    }

    // Options left unset keep the value of sampling; a negative seed keeps its bits, as any 64-bit pattern is a valid seed.
    private static SamplingOptions Sampling(ChatOptions options, SamplingOptions sampling) => sampling with
    {
        Temperature = options.Temperature ?? sampling.Temperature,
        TopP = options.TopP ?? sampling.TopP,
        TopK = options.TopK ?? sampling.TopK,
        PresencePenalty = options.PresencePenalty ?? sampling.PresencePenalty,
        Seed = options.Seed is { } seed ? unchecked((ulong)seed) : sampling.Seed,
        MaxNewTokens = options.MaxOutputTokens ?? sampling.MaxNewTokens,
        StopStrings = options.StopSequences is { Count: > 0 } stops ? [.. stops] : sampling.StopStrings,
        MinP = Extra<float>(options, MinPKey) ?? sampling.MinP,
        RepetitionPenalty = Extra<float>(options, RepetitionPenaltyKey) ?? sampling.RepetitionPenalty,
    };

    private static IReadOnlyList<ToolDefinition> Tools(ChatOptions options, IReadOnlyList<ToolDefinition> tools)
    {
        if (options.ToolMode is NoneChatToolMode)
        {
            return [];
        }

        if (options.Tools is not { Count: > 0 })
        {
            return tools;
        }

        var all = new List<ToolDefinition>(tools);
        foreach (var tool in options.Tools)
        {
            if (tool is not AIFunctionDeclaration function)
            {
                throw new NotSupportedException($"The tool '{tool.Name}' ({tool.GetType().Name}) is not supported: Qwen3ChatClient offers functions (AIFunctionDeclaration) only.");
            }

            all.Add(ToolDefinition.Function(function.Name, function.Description, function.JsonSchema));
        }

        return all;
    }

    /// <summary>A typed <see cref="ChatOptions.AdditionalProperties"/> value, null when absent; a value of another type throws naming the key.</summary>
    private static T? Extra<T>(ChatOptions options, string key)
        where T : struct
    {
        if (options.AdditionalProperties is not { } properties || !properties.TryGetValue(key, out object? value) || value is null)
        {
            return null;
        }

        if (properties.TryGetValue(key, out T typed))
        {
            return typed;
        }

        throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{key}\"] must be a {typeof(T).Name}, not {value.GetType().Name} '{value}'.", nameof(options));
    }
}
