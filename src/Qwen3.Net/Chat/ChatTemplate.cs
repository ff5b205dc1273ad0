using System.Numerics;
using System.Text.Json;
using Qwen3.Net.Chat.Jinja;

namespace Qwen3.Net.Chat;

/// <summary>
/// A Hugging Face chat template (the Jinja2 <c>chat_template</c> of <c>tokenizer_config.json</c>), parsed once and rendered
/// with the same semantics transformers uses: <c>trim_blocks</c>, <c>lstrip_blocks</c>, loop controls, and
/// <c>tojson</c> = Python <c>json.dumps(x, ensure_ascii=False)</c>.
/// </summary>
/// <remarks>
/// Instances are immutable and safe to use from several threads. A template is code from the model's publisher, so parsing
/// and rendering run within <see cref="ChatTemplateLimits"/>, and a template sees nothing but the values it is given.
/// </remarks>
public sealed class ChatTemplate
{
    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token", "mask_token"];

    private readonly IReadOnlyList<Stmt> _body;
    private readonly IReadOnlyDictionary<string, string> _specialTokens;

    private ChatTemplate(string source, IReadOnlyDictionary<string, string> specialTokens, ChatTemplateLimits? limits)
    {
        Source = source;
        Limits = limits ?? ChatTemplateLimits.Default;
        _body = JinjaParser.Parse(source, Limits);
        _specialTokens = specialTokens;
    }

    /// <summary>The Jinja source of the template.</summary>
    public string Source { get; }

    /// <summary>The limits this template was parsed with and renders within.</summary>
    public ChatTemplateLimits Limits { get; }

    /// <summary>Parses a template from Jinja source.</summary>
    /// <param name="templateSource">The template text.</param>
    /// <param name="limits">Bounds on parsing and rendering, or <see langword="null"/> for <see cref="ChatTemplateLimits.Default"/>.</param>
    /// <exception cref="ChatTemplateException">
    /// The template has a syntax error, uses an unsupported tag, or nests deeper than <see cref="ChatTemplateLimits.MaxNestingDepth"/>;
    /// line and column are set.
    /// </exception>
    public static ChatTemplate Parse(string templateSource, ChatTemplateLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(templateSource);
        return new ChatTemplate(templateSource, new Dictionary<string, string>(), limits);
    }

    /// <summary>
    /// Loads the <c>chat_template</c> of a <c>tokenizer_config.json</c>, together with its special tokens
    /// (<c>eos_token</c>, <c>bos_token</c>, ...), which transformers also exposes to templates.
    /// </summary>
    /// <param name="tokenizerConfigJsonPath">Path to <c>tokenizer_config.json</c>.</param>
    /// <param name="limits">Bounds on parsing and rendering, or <see langword="null"/> for <see cref="ChatTemplateLimits.Default"/>.</param>
    /// <exception cref="ModelLoadException">
    /// The file cannot be read, is not JSON, has no usable <c>chat_template</c>, or the template does not parse (including
    /// nesting deeper than <see cref="ChatTemplateLimits.MaxNestingDepth"/>).
    /// </exception>
    public static ChatTemplate FromTokenizerConfig(string tokenizerConfigJsonPath, ChatTemplateLimits? limits = null)
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
            return new ChatTemplate(source, specialTokens, limits);
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

    /// <summary>
    /// A template stored in a model file other than <c>tokenizer_config.json</c> (a GGUF's <c>tokenizer.chat_template</c>),
    /// with the special tokens the file names.
    /// </summary>
    /// <exception cref="ModelLoadException">The template does not parse; the message names the file and key.</exception>
    internal static ChatTemplate FromModelFile(string source, IReadOnlyDictionary<string, string> specialTokens, string filePath, string key)
    {
        try
        {
            return new ChatTemplate(source, specialTokens, null);
        }
        catch (ChatTemplateException e)
        {
            throw new ModelLoadException($"The {key} in '{filePath}' does not parse: {e.Message}", filePath, key, e);
        }
    }

    /// <summary>Renders a conversation into the prompt text the model expects.</summary>
    /// <param name="messages">The conversation so far.</param>
    /// <param name="tools">Tools offered to the model, or <see langword="null"/> for none (the template sees <c>tools</c> as None).</param>
    /// <param name="addGenerationPrompt">Whether to end with the header of a new assistant turn, ready for generation.</param>
    /// <param name="enableThinking">
    /// Passed as <c>enable_thinking</c>; <see langword="null"/> leaves the variable undefined, which for Qwen3 means thinking on.
    /// </param>
    /// <param name="cancellationToken">Stops a long render; it is checked at every step.</param>
    /// <returns>The rendered prompt.</returns>
    /// <exception cref="ChatTemplateException">
    /// The template failed while rendering, called <c>raise_exception</c>, or exceeded one of its <see cref="Limits"/>
    /// (the message names the limit); also when tool definitions or tool-call arguments nest deeper than
    /// <see cref="ChatTemplateLimits.MaxNestingDepth"/>.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public string Render(
        IReadOnlyList<Message> messages,
        IReadOnlyList<ToolDefinition>? tools = null,
        bool addGenerationPrompt = true,
        bool? enableThinking = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Any(m => m is null))
        {
            throw new ArgumentException("Messages must not contain null.", nameof(messages));
        }

        if (tools is not null && tools.Any(t => t is null))
        {
            throw new ArgumentException("Tools must not contain null.", nameof(tools));
        }

        var sandbox = new Sandbox(Limits, cancellationToken);
        var globals = new Scope(null);
        DefineBuiltins(globals, sandbox);
        foreach (var (key, value) in _specialTokens)
        {
            globals.Set(key, value);
        }

        globals.Set("add_generation_prompt", addGenerationPrompt);
        if (enableThinking is { } thinking)
        {
            globals.Set("enable_thinking", thinking);
        }

        try
        {
            globals.Set("messages", messages.Select(m => (object?)ToTemplateValue(m, sandbox)).ToList());
            globals.Set("tools", tools?.Select(t => PyValue.FromJson(t.Json, sandbox)).ToList());
            return JinjaInterpreter.Render(_body, globals, sandbox);
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
    private static PyDict ToTemplateValue(Message message, Sandbox sandbox)
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
                    ["arguments"] = PyValue.FromJson(call.Arguments, sandbox),
                },
            }).ToList();
        }

        return dict;
    }

    private static void DefineBuiltins(Scope globals, Sandbox sandbox)
    {
        globals.Set("raise_exception", new JinjaFunction((args, _) =>
            throw new JinjaRuntimeException(args.Count > 0 ? PyValue.ToStr(args[0], sandbox) : "", raisedByTemplate: true)));
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

            // Counted before building, so range(10**9) fails at once instead of after filling memory.
            var span = step > 0 ? (BigInteger)stop - start : (BigInteger)start - stop;
            var stride = BigInteger.Abs(step);
            var count = span.Sign <= 0 ? 0 : (long)BigInteger.Min((span + stride - 1) / stride, long.MaxValue);
            sandbox.NeedList(count);
            var items = new List<object?>((int)count);
            for (var i = 0L; i < count; i++)
            {
                items.Add(start + (i * step));
            }

            return items;
        }));
    }
}
