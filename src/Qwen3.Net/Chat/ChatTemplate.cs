using System.Text.Json;
using Qwen3.Net.Chat.Jinja;

namespace Qwen3.Net.Chat;

/// <summary>
/// A Hugging Face chat template (the Jinja2 <c>chat_template</c> of <c>tokenizer_config.json</c>), parsed once and rendered
/// with the same semantics transformers uses: <c>trim_blocks</c>, <c>lstrip_blocks</c>, loop controls, and
/// <c>tojson</c> = Python <c>json.dumps(x, ensure_ascii=False)</c>.
/// </summary>
/// <remarks>Instances are immutable and safe to use from several threads.</remarks>
public sealed class ChatTemplate
{
    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token", "mask_token"];

    private readonly IReadOnlyList<Stmt> _body;
    private readonly IReadOnlyDictionary<string, string> _specialTokens;

    private ChatTemplate(string source, IReadOnlyList<Stmt> body, IReadOnlyDictionary<string, string> specialTokens)
    {
        Source = source;
        _body = body;
        _specialTokens = specialTokens;
    }

    /// <summary>The Jinja source of the template.</summary>
    public string Source { get; }

    /// <summary>Parses a template from Jinja source.</summary>
    /// <param name="templateSource">The template text.</param>
    /// <exception cref="ChatTemplateException">The template has a syntax error or uses an unsupported tag; line and column are set.</exception>
    public static ChatTemplate Parse(string templateSource)
    {
        ArgumentNullException.ThrowIfNull(templateSource);
        return new ChatTemplate(templateSource, JinjaParser.Parse(templateSource), new Dictionary<string, string>());
    }

    /// <summary>
    /// Loads the <c>chat_template</c> of a <c>tokenizer_config.json</c>, together with its special tokens
    /// (<c>eos_token</c>, <c>bos_token</c>, ...), which transformers also exposes to templates.
    /// </summary>
    /// <param name="tokenizerConfigJsonPath">Path to <c>tokenizer_config.json</c>.</param>
    /// <exception cref="ModelLoadException">The file cannot be read, is not JSON, has no usable <c>chat_template</c>, or the template does not parse.</exception>
    public static ChatTemplate FromTokenizerConfig(string tokenizerConfigJsonPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerConfigJsonPath);
        string text;
        try
        {
            text = File.ReadAllText(tokenizerConfigJsonPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new ModelLoadException($"Cannot read tokenizer config '{tokenizerConfigJsonPath}': {e.Message}", tokenizerConfigJsonPath, inner: e);
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("chat_template", out var template))
            {
                throw new ModelLoadException($"Tokenizer config '{tokenizerConfigJsonPath}' has no 'chat_template'.", tokenizerConfigJsonPath);
            }

            if (template.ValueKind != JsonValueKind.String)
            {
                // Some repositories store a list of named templates; only the single-string form is supported.
                throw new ModelLoadException(
                    $"'chat_template' in '{tokenizerConfigJsonPath}' is a {template.ValueKind}, expected a string.",
                    tokenizerConfigJsonPath);
            }

            var specialTokens = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var key in SpecialTokenKeys)
            {
                if (root.TryGetProperty(key, out var token))
                {
                    var content = token.ValueKind switch
                    {
                        JsonValueKind.String => token.GetString(),
                        JsonValueKind.Object when token.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                        _ => null,
                    };
                    if (content is not null)
                    {
                        specialTokens[key] = content;
                    }
                }
            }

            var source = template.GetString()!;
            return new ChatTemplate(source, JinjaParser.Parse(source), specialTokens);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"Tokenizer config '{tokenizerConfigJsonPath}' is not valid JSON: {e.Message}", tokenizerConfigJsonPath, inner: e);
        }
        catch (ChatTemplateException e)
        {
            throw new ModelLoadException($"The chat_template in '{tokenizerConfigJsonPath}' does not parse: {e.Message}", tokenizerConfigJsonPath, inner: e);
        }
    }

    /// <summary>Renders a conversation into the prompt text the model expects.</summary>
    /// <param name="messages">The conversation so far.</param>
    /// <param name="tools">Tools offered to the model, or <see langword="null"/> for none (the template sees <c>tools</c> as None).</param>
    /// <param name="addGenerationPrompt">Whether to end with the header of a new assistant turn, ready for generation.</param>
    /// <param name="enableThinking">
    /// Passed as <c>enable_thinking</c>; <see langword="null"/> leaves the variable undefined, which for Qwen3 means thinking on.
    /// </param>
    /// <returns>The rendered prompt.</returns>
    /// <exception cref="ChatTemplateException">The template failed while rendering or called <c>raise_exception</c>.</exception>
    public string Render(IReadOnlyList<Message> messages, IReadOnlyList<ToolDefinition>? tools = null, bool addGenerationPrompt = true, bool? enableThinking = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var globals = new Scope(null);
        DefineBuiltins(globals);
        foreach (var (key, value) in _specialTokens)
        {
            globals.Set(key, value);
        }

        globals.Set("messages", messages.Select(m => (object?)ToTemplateValue(m ?? throw new ArgumentException("Messages must not contain null.", nameof(messages)))).ToList());
        globals.Set("tools", tools is null ? null : tools.Select(t => PyValue.FromJson((t ?? throw new ArgumentException("Tools must not contain null.", nameof(tools))).Json)).ToList());
        globals.Set("add_generation_prompt", addGenerationPrompt);
        if (enableThinking is { } thinking)
        {
            globals.Set("enable_thinking", thinking);
        }

        try
        {
            return JinjaInterpreter.Render(_body, globals);
        }
        catch (JinjaRuntimeException e)
        {
            throw new ChatTemplateException(e.Message, inner: e) { RaisedByTemplate = e.RaisedByTemplate };
        }
    }

    /// <summary>
    /// Converts a message to the dict transformers hands the template: <c>reasoning_content</c> and <c>tool_calls</c>
    /// appear only when set, because templates test them with <c>is defined</c>.
    /// </summary>
    private static PyDict ToTemplateValue(Message message)
    {
        var dict = new PyDict
        {
            ["role"] = message.Role switch
            {
                MessageRole.System => "system",
                MessageRole.User => "user",
                MessageRole.Assistant => "assistant",
                _ => "tool",
            },
            ["content"] = message.Content,
        };
        if (message.ReasoningContent is not null)
        {
            dict["reasoning_content"] = message.ReasoningContent;
        }

        if (message.ToolCalls is not null)
        {
            dict["tool_calls"] = message.ToolCalls.Select(call => (object?)new PyDict
            {
                ["type"] = "function",
                ["function"] = new PyDict
                {
                    ["name"] = call.Name,
                    ["arguments"] = PyValue.FromJson(call.Arguments),
                },
            }).ToList();
        }

        return dict;
    }

    private static void DefineBuiltins(Scope globals)
    {
        globals.Set("raise_exception", new JinjaFunction((args, _) =>
            throw new JinjaRuntimeException(args.Count > 0 ? PyValue.ToStr(args[0]) : "", raisedByTemplate: true)));
        globals.Set("namespace", new JinjaFunction((args, kwargs) =>
        {
            var ns = new Namespace();
            if (args.Count > 0 && args[0] is PyDict initial)
            {
                foreach (var (key, value) in initial)
                {
                    ns.Attributes[key] = value;
                }
            }

            foreach (var (key, value) in kwargs)
            {
                ns.Attributes[key] = value;
            }

            return ns;
        }));
        globals.Set("dict", new JinjaFunction((_, kwargs) =>
        {
            var dict = new PyDict();
            foreach (var (key, value) in kwargs)
            {
                dict[key] = value;
            }

            return dict;
        }));
        globals.Set("range", new JinjaFunction((args, _) =>
        {
            long Int(object? v) => v as long? ?? throw new JinjaRuntimeException($"TypeError: range() needs int arguments, not {PyValue.TypeName(v)}");
            var (start, stop, step) = args.Count switch
            {
                1 => (0L, Int(args[0]), 1L),
                2 => (Int(args[0]), Int(args[1]), 1L),
                3 => (Int(args[0]), Int(args[1]), Int(args[2])),
                _ => throw new JinjaRuntimeException("TypeError: range expected 1 to 3 arguments"),
            };
            if (step == 0)
            {
                throw new JinjaRuntimeException("ValueError: range() arg 3 must not be zero");
            }

            var items = new List<object?>();
            for (var i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                items.Add(i);
            }

            return items;
        }));
    }
}
