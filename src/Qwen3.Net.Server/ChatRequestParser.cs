using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;
using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Server;

/// <summary>
/// Reads a <c>POST /v1/chat/completions</c> body into a <see cref="ChatCompletionRequest"/>, checking every field it
/// uses for type and range; anything wrong throws an <see cref="OpenAIException"/> (400) naming the field in <c>param</c>.
/// Fields it does not know are ignored, as OpenAI clients send many.
/// </summary>
internal sealed class ChatRequestParser
{
    private readonly Qwen3ServerOptions _options;

    public ChatRequestParser(Qwen3ServerOptions options)
    {
        _options = options;
    }

    public ChatCompletionRequest Parse(ReadOnlyMemory<byte> body)
    {
        using var document = ParseBody(body, _options.MaxJsonDepth);
        return ParseRoot(document.RootElement);
    }

    /// <summary>Parses a request body that must be a JSON object no deeper than <paramref name="maxDepth"/>.</summary>
    internal static JsonDocument ParseBody(ReadOnlyMemory<byte> body, int maxDepth)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw OpenAIException.Invalid($"The request body is not valid JSON: {e.Message}", null);
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = document.RootElement.ValueKind;
            document.Dispose();
            throw OpenAIException.Invalid($"The request body must be a JSON object, not {kind}.", null);
        }

        try
        {
            CheckPropertyNames(document.RootElement);
        }
        catch
        {
            document.Dispose();
            throw;
        }

        return document;
    }

    private ChatCompletionRequest ParseRoot(JsonElement root)
    {
        string model = RequiredString(root, "model", "model");
        if (!Optional(root, "messages", out var messagesJson))
        {
            throw Missing("messages");
        }

        var messages = ParseMessages(messagesJson);
        var (tools, toolChoice) = ParseTools(root);
        var thinking = ParseThinking(root);

        if (Optional(root, "n", out var n) && ReadInteger(n, "n", 1, int.MaxValue) != 1)
        {
            throw OpenAIException.Invalid("Only n = 1 is supported.", "n");
        }

        if (Optional(root, "logprobs", out var logprobs) && ReadBool(logprobs, "logprobs"))
        {
            throw OpenAIException.Invalid("logprobs is not supported by this server.", "logprobs");
        }

        if (Optional(root, "top_logprobs", out var topLogprobs) && ReadInteger(topLogprobs, "top_logprobs", 0, 20) != 0)
        {
            throw OpenAIException.Invalid("top_logprobs is not supported by this server.", "top_logprobs");
        }

        if (Optional(root, "frequency_penalty", out var frequency) && ReadFloat(frequency, "frequency_penalty", -2, 2) != 0)
        {
            throw OpenAIException.Invalid("frequency_penalty is not supported by this server's sampler; use presence_penalty or repetition_penalty.", "frequency_penalty");
        }

        var responseFormat = Optional(root, "response_format", out var format) ? ParseResponseFormat(format) : null;
        bool parallel = !Optional(root, "parallel_tool_calls", out var ptc) || ReadBool(ptc, "parallel_tool_calls");
        if (toolChoice.Kind is ToolChoiceKind.Required or ToolChoiceKind.Function)
        {
            // Compiled now so a parameters schema that cannot constrain generation is a 400, not a failure mid-stream.
            var forced = toolChoice.Kind == ToolChoiceKind.Required ? tools : [.. tools.Where(t => t.Name == toolChoice.FunctionName).Take(1)];
            try
            {
                ResponseFormat.ForToolCalls(forced, parallel);
            }
            catch (SchemaException e)
            {
                throw OpenAIException.Invalid($"tool_choice forces tool calls, but a tool's parameters cannot constrain generation: {e.Message}", "tools");
            }
        }

        bool includeUsage = false;
        if (Optional(root, "stream_options", out var streamOptions) &&
            Optional(RequireObject(streamOptions, "stream_options"), "include_usage", out var usage))
        {
            includeUsage = ReadBool(usage, "stream_options.include_usage");
        }

        int? maxTokens = null;
        foreach (var name in (ReadOnlySpan<string>)["max_tokens", "max_completion_tokens"])
        {
            // max_completion_tokens, OpenAI's current name, wins over the deprecated max_tokens when both are sent.
            if (Optional(root, name, out var value))
            {
                maxTokens = (int)ReadInteger(value, name, 1, _options.MaxTokensLimit);
            }
        }

        return new ChatCompletionRequest
        {
            Model = model,
            Messages = messages,
            Tools = tools,
            ToolChoice = toolChoice,
            ParallelToolCalls = parallel,
            ResponseFormat = responseFormat,
            Thinking = thinking,
            ReturnReasoning = !Optional(root, "return_reasoning", out var rr) || ReadBool(rr, "return_reasoning"),
            Stream = Optional(root, "stream", out var stream) && ReadBool(stream, "stream"),
            IncludeUsage = includeUsage,
            Temperature = Optional(root, "temperature", out var temperature) ? ReadFloat(temperature, "temperature", 0, 2) : null,
            TopP = Optional(root, "top_p", out var topP) ? ReadFloat(topP, "top_p", 0, 1, minExclusive: true) : null,
            // vLLM's -1 means "no top-k", as 0 does here.
            TopK = Optional(root, "top_k", out var topK) ? Math.Max(0, (int)ReadInteger(topK, "top_k", -1, int.MaxValue)) : null,
            MinP = Optional(root, "min_p", out var minP) ? ReadFloat(minP, "min_p", 0, 1) : null,
            PresencePenalty = Optional(root, "presence_penalty", out var presence) ? ReadFloat(presence, "presence_penalty", -2, 2) : null,
            RepetitionPenalty = Optional(root, "repetition_penalty", out var repetition) ? ReadFloat(repetition, "repetition_penalty", 0, 100, minExclusive: true) : null,
            Seed = Optional(root, "seed", out var seed) ? ReadSeed(seed) : null,
            MaxTokens = maxTokens,
            Stop = Optional(root, "stop", out var stop) ? ParseStop(stop) : [],
        };
    }

    private List<Message> ParseMessages(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Array)
        {
            throw WrongType("messages", "an array");
        }

        int count = json.GetArrayLength();
        if (count == 0)
        {
            throw OpenAIException.Invalid("messages must not be empty.", "messages");
        }

        if (count > _options.MaxMessages)
        {
            throw OpenAIException.Invalid($"A request may hold at most {_options.MaxMessages} messages; this one has {count}.", "messages");
        }

        var messages = new List<Message>(count);
        int i = 0;
        foreach (var item in json.EnumerateArray())
        {
            messages.Add(ParseMessage(item, $"messages[{i++}]"));
        }

        return messages;
    }

    private Message ParseMessage(JsonElement json, string param)
    {
        RequireObject(json, param);
        string role = RequiredString(json, "role", $"{param}.role");
        bool hasContent = Optional(json, "content", out var contentJson);
        string? content = hasContent ? ReadContent(contentJson, $"{param}.content") : null;
        switch (role)
        {
            case "system":
            case "developer":
                return Message.System(content ?? throw Missing($"{param}.content"));
            case "user":
                return Message.User(content ?? throw Missing($"{param}.content"));
            case "tool":
                _ = RequiredString(json, "tool_call_id", $"{param}.tool_call_id");
                return Message.Tool(content ?? throw Missing($"{param}.content"));
            case "assistant":
                string? reasoning = Optional(json, "reasoning_content", out var rc) ? ReadString(rc, $"{param}.reasoning_content") : null;
                List<ToolCall>? calls = Optional(json, "tool_calls", out var tc) ? ParseToolCalls(tc, $"{param}.tool_calls") : null;
                if (content is null && calls is null)
                {
                    throw OpenAIException.Invalid($"{param}: an assistant message needs content or tool_calls.", $"{param}.content");
                }

                return Message.Assistant(content ?? string.Empty, reasoning, calls);
            default:
                throw OpenAIException.Invalid($"Unknown role '{role}'; expected system, developer, user, assistant or tool.", $"{param}.role");
        }
    }

    private static List<ToolCall>? ParseToolCalls(JsonElement json, string param)
    {
        if (json.ValueKind != JsonValueKind.Array)
        {
            throw WrongType(param, "an array");
        }

        var calls = new List<ToolCall>();
        int i = 0;
        foreach (var item in json.EnumerateArray())
        {
            string p = $"{param}[{i++}]";
            RequireObject(item, p);
            if (Optional(item, "type", out var type) && ReadString(type, $"{p}.type") != "function")
            {
                throw OpenAIException.Invalid("Only tool calls of type 'function' are supported.", $"{p}.type");
            }

            var function = RequiredObject(item, "function", $"{p}.function");
            string name = RequiredString(function, "name", $"{p}.function.name");
            if (name.Length == 0)
            {
                throw OpenAIException.Invalid("A tool call needs a function name.", $"{p}.function.name");
            }

            string arguments = Optional(function, "arguments", out var a) ? ReadString(a, $"{p}.function.arguments") : "{}";
            // Kept as the text the client sent (normally what this server returned), so the prompt renders it verbatim
            // and a re-sent conversation matches the cached prefix.
            calls.Add(ToolCall.FromRawArguments(name, arguments));
        }

        return calls.Count > 0 ? calls : null;
    }

    private (List<ToolDefinition> Tools, ToolChoice Choice) ParseTools(JsonElement root)
    {
        var toolChoice = ToolChoice.Auto;
        var tools = new List<ToolDefinition>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (Optional(root, "tools", out var toolsJson))
        {
            if (toolsJson.ValueKind != JsonValueKind.Array)
            {
                throw WrongType("tools", "an array");
            }

            if (toolsJson.GetArrayLength() > _options.MaxTools)
            {
                throw OpenAIException.Invalid($"A request may offer at most {_options.MaxTools} tools.", "tools");
            }

            int i = 0;
            foreach (var tool in toolsJson.EnumerateArray())
            {
                string p = $"tools[{i++}]";
                RequireObject(tool, p);
                string type = RequiredString(tool, "type", $"{p}.type");
                if (type != "function")
                {
                    throw OpenAIException.Invalid($"Tool type '{type}' is not supported; only 'function'.", $"{p}.type");
                }

                var function = RequiredObject(tool, "function", $"{p}.function");
                string name = RequiredString(function, "name", $"{p}.function.name");
                if (name.Length == 0)
                {
                    throw OpenAIException.Invalid("A tool needs a function name.", $"{p}.function.name");
                }

                if (Optional(function, "description", out var d))
                {
                    ReadString(d, $"{p}.function.description");
                }

                if (Optional(function, "parameters", out var parameters))
                {
                    RequireObject(parameters, $"{p}.function.parameters");
                }

                names.Add(name);
                try
                {
                    tools.Add(ToolDefinition.FromJsonElement(tool));
                }
                catch (ArgumentException e)
                {
                    // Text that is not valid UTF-8 somewhere inside the definition, which the checks above do not read.
                    throw OpenAIException.Invalid(e.Message, p);
                }
            }
        }

        if (Optional(root, "tool_choice", out var choice))
        {
            if (choice.ValueKind == JsonValueKind.String)
            {
                string mode = ReadString(choice, "tool_choice");
                switch (mode)
                {
                    case "none":
                        // The tools are not rendered, so the model does not know it could call them.
                        return ([], ToolChoice.None);
                    case "auto":
                        break;
                    case "required":
                        toolChoice = ToolChoice.Required;
                        break;
                    default:
                        throw OpenAIException.Invalid($"tool_choice must be 'none', 'auto', 'required' or a function, not '{mode}'.", "tool_choice");
                }
            }
            else
            {
                var function = RequiredObject(RequireObject(choice, "tool_choice"), "function", "tool_choice.function");
                string forced = RequiredString(function, "name", "tool_choice.function.name");
                if (!names.Contains(forced))
                {
                    throw OpenAIException.Invalid($"tool_choice names the function '{forced}', which is not in tools.", "tool_choice.function.name");
                }

                toolChoice = ToolChoice.Function(forced);
            }

            if (tools.Count == 0 && choice.ValueKind == JsonValueKind.String && choice.ValueEquals("required"))
            {
                throw OpenAIException.Invalid("tool_choice 'required' needs tools.", "tool_choice");
            }
        }

        return (tools, toolChoice);
    }

    /// <summary>OpenAI's <c>response_format</c>: <c>text</c>, <c>json_object</c>, or <c>json_schema</c> with <c>name</c>, <c>schema</c> and <c>strict</c>.</summary>
    private static ResponseFormat? ParseResponseFormat(JsonElement format)
    {
        string type = RequiredString(RequireObject(format, "response_format"), "type", "response_format.type");
        switch (type)
        {
            case "text":
                return null;
            case "json_object":
                return ResponseFormat.JsonObject;
            case "json_schema":
                var spec = RequiredObject(format, "json_schema", "response_format.json_schema");
                string name = RequiredString(spec, "name", "response_format.json_schema.name");
                if (Optional(spec, "strict", out var strict))
                {
                    // Output is always held to the schema; strict only says the client wants that.
                    ReadBool(strict, "response_format.json_schema.strict");
                }

                if (!Optional(spec, "schema", out var schema))
                {
                    return ResponseFormat.JsonObject;
                }

                RequireObject(schema, "response_format.json_schema.schema");
                try
                {
                    return ResponseFormat.ForJsonSchema(schema, name);
                }
                catch (SchemaException e)
                {
                    throw OpenAIException.Invalid($"response_format.json_schema.schema cannot constrain generation: {e.Message}", "response_format.json_schema.schema");
                }

            default:
                throw OpenAIException.Invalid($"response_format.type must be 'text', 'json_object' or 'json_schema', not '{type}'.", "response_format.type");
        }
    }

    private static ThinkingMode ParseThinking(JsonElement root)
    {
        bool? topLevel = Optional(root, "enable_thinking", out var e) ? ReadBool(e, "enable_thinking") : null;
        bool? kwargs = null;
        if (Optional(root, "chat_template_kwargs", out var k) &&
            Optional(RequireObject(k, "chat_template_kwargs"), "enable_thinking", out var ke))
        {
            kwargs = ReadBool(ke, "chat_template_kwargs.enable_thinking");
        }

        if (topLevel is { } a && kwargs is { } b && a != b)
        {
            throw OpenAIException.Invalid("enable_thinking and chat_template_kwargs.enable_thinking disagree.", "enable_thinking");
        }

        return topLevel ?? kwargs ?? true ? ThinkingMode.Enabled : ThinkingMode.Disabled;
    }

    private List<string> ParseStop(JsonElement json)
    {
        var stops = new List<string>();
        if (json.ValueKind == JsonValueKind.String)
        {
            stops.Add(ReadString(json, "stop"));
        }
        else if (json.ValueKind == JsonValueKind.Array)
        {
            if (json.GetArrayLength() > _options.MaxStopStrings)
            {
                throw OpenAIException.Invalid($"A request may give at most {_options.MaxStopStrings} stop strings.", "stop");
            }

            int i = 0;
            foreach (var item in json.EnumerateArray())
            {
                stops.Add(ReadString(item, $"stop[{i++}]"));
            }
        }
        else
        {
            throw WrongType("stop", "a string or an array of strings");
        }

        foreach (var s in stops)
        {
            if (s.Length == 0 || s.Length > _options.MaxStopStringLength)
            {
                throw OpenAIException.Invalid($"Stop strings must have 1 to {_options.MaxStopStringLength} characters.", "stop");
            }
        }

        return stops;
    }

    /// <summary>Message content: a string, or an array of <c>{"type": "text", "text": ...}</c> parts joined.</summary>
    private static string? ReadContent(JsonElement json, string param)
    {
        if (json.ValueKind == JsonValueKind.String)
        {
            return ReadString(json, param);
        }

        if (json.ValueKind != JsonValueKind.Array)
        {
            throw WrongType(param, "a string or an array of text parts");
        }

        var text = new System.Text.StringBuilder();
        int i = 0;
        foreach (var part in json.EnumerateArray())
        {
            string p = $"{param}[{i++}]";
            RequireObject(part, p);
            string type = RequiredString(part, "type", $"{p}.type");
            if (type != "text")
            {
                throw OpenAIException.Invalid($"Content parts of type '{type}' are not supported; only 'text'.", $"{p}.type");
            }

            text.Append(RequiredString(part, "text", $"{p}.text"));
        }

        return text.ToString();
    }

    private static JsonElement RequiredObject(JsonElement obj, string name, string param) =>
        Optional(obj, name, out var value) ? RequireObject(value, param) : throw Missing(param);

    private static string RequiredString(JsonElement obj, string name, string param) =>
        Optional(obj, name, out var value) ? ReadString(value, param) : throw Missing(param);

    /// <summary>
    /// Refuses a property name holding an escaped lone surrogate (<c>"\ud800"</c>) or invalid UTF-8 anywhere in the body:
    /// looking up any property of its object would throw, so such names are found here, once.
    /// </summary>
    private static void CheckPropertyNames(JsonElement root)
    {
        // An explicit stack of containers only (no recursion on input): at most one entry per container of the body.
        var pending = new Stack<JsonElement>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var element = pending.Pop();
            if (element.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in element.EnumerateArray())
                {
                    PushContainer(pending, item);
                }

                continue;
            }

            foreach (var property in element.EnumerateObject())
            {
                try
                {
                    _ = property.Name;
                }
                catch (InvalidOperationException)
                {
                    throw OpenAIException.Invalid("A property name in the request body holds an unpaired UTF-16 surrogate or invalid UTF-8.", null);
                }

                PushContainer(pending, property.Value);
            }
        }
    }

    private static void PushContainer(Stack<JsonElement> pending, JsonElement element)
    {
        if (element.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
        {
            pending.Push(element);
        }
    }

    /// <summary>Whether <paramref name="obj"/> has the property with a non-null value.</summary>
    internal static bool Optional(JsonElement obj, string name, out JsonElement value) =>
        obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    private static JsonElement RequireObject(JsonElement json, string param) =>
        json.ValueKind == JsonValueKind.Object ? json : throw WrongType(param, "an object");

    internal static string ReadString(JsonElement json, string param)
    {
        if (json.ValueKind != JsonValueKind.String)
        {
            throw WrongType(param, "a string");
        }

        try
        {
            return json.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // System.Text.Json refuses to decode an escaped lone surrogate ("\ud800"): not text the tokenizer could encode.
            throw OpenAIException.Invalid($"{param} holds an unpaired UTF-16 surrogate.", param);
        }
    }

    internal static bool ReadBool(JsonElement json, string param) => json.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw WrongType(param, "a boolean"),
    };

    internal static long ReadInteger(JsonElement json, string param, long min, long max)
    {
        if (json.ValueKind != JsonValueKind.Number || !json.TryGetInt64(out long value))
        {
            throw WrongType(param, "an integer");
        }

        return value >= min && value <= max ? value : throw OutOfRange(param, $"from {min} to {max}");
    }

    private static float ReadFloat(JsonElement json, string param, double min, double max, bool minExclusive = false)
    {
        if (json.ValueKind != JsonValueKind.Number || !json.TryGetDouble(out double value) || !double.IsFinite(value))
        {
            throw WrongType(param, "a number");
        }

        bool aboveMin = minExclusive ? value > min : value >= min;
        return aboveMin && value <= max ? (float)value : throw OutOfRange(param, $"in {(minExclusive ? "(" : "[")}{min}, {max}]");
    }

    private static ulong ReadSeed(JsonElement json)
    {
        if (json.ValueKind == JsonValueKind.Number)
        {
            if (json.TryGetInt64(out long signed))
            {
                return unchecked((ulong)signed);
            }

            if (json.TryGetUInt64(out ulong unsigned))
            {
                return unsigned;
            }
        }

        throw WrongType("seed", "a 64-bit integer");
    }

    internal static OpenAIException Missing(string param) => OpenAIException.Invalid($"Missing required field {param}.", param);

    internal static OpenAIException WrongType(string param, string expected) => OpenAIException.Invalid($"{param} must be {expected}.", param);

    private static OpenAIException OutOfRange(string param, string range) => OpenAIException.Invalid($"{param} must be {range}.", param);
}
