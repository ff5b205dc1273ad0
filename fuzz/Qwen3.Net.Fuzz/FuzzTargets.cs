using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation;
using Qwen3.Net.Loading;
using Qwen3.Net.Loading.Gguf;
using Qwen3.Net.Model;
using Qwen3.Net.Server;

namespace Qwen3.Net.Fuzz;

/// <summary>
/// One fuzz target per parser of untrusted input. Each target feeds its input to the parser and lets only the
/// exceptions the entry point documents pass; any other exception escapes (the fuzzer records it as a crash), and so
/// does a broken invariant, reported as <see cref="FuzzInvariantException"/>. Shared by the AFL++ driver and the
/// corpus replay tests, so a test replays exactly what the fuzzer ran.
/// </summary>
internal sealed class FuzzTargets : IDisposable
{
    /// <summary>The target names, as given on the fuzz driver's command line and used as corpus folder names.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        "safetensors-header", "safetensors-index", "config", "generation-config", "tokenizer-json",
        "encode", "detokenize", "jinja-template", "jinja-data", "tool-call-parser", "server-request", "gguf", "json-schema",
        "retrieval-request",
    ];

    // Bytes after the fuzzed header: data_offsets inside it are valid, so well-formed headers get as far as the views.
    const int SafetensorsDataBytes = 4096;

    readonly string _modelFolder;
    readonly string _workFolder;
    readonly Lazy<Qwen3Tokenizer> _tokenizer;
    readonly Lazy<ChatTemplate> _qwenTemplate;
    int _sequence;

    /// <param name="tinyModelFolder">tests/fixtures/tiny-qwen3: the real Qwen3 tokenizer, chat template and a valid config.</param>
    /// <param name="workFolder">A folder this instance owns: fuzzed files are written there, and it is deleted on dispose.</param>
    public FuzzTargets(string tinyModelFolder, string workFolder)
    {
        _modelFolder = tinyModelFolder;
        _workFolder = workFolder;
        Directory.CreateDirectory(workFolder);
        _tokenizer = new(() => Qwen3Tokenizer.FromFile(Path.Combine(tinyModelFolder, "tokenizer.json")));
        _qwenTemplate = new(() => ChatTemplate.FromTokenizerConfig(Path.Combine(tinyModelFolder, "tokenizer_config.json")));
    }

    /// <summary>Loads what <paramref name="target"/> shares between inputs (the real tokenizer, the Qwen3 template).</summary>
    public void Warm(string target)
    {
        if (target is "encode" or "detokenize" or "retrieval-request")
            _ = _tokenizer.Value;
        if (target is "jinja-data" or "server-request")
            _ = _qwenTemplate.Value;
    }

    /// <summary>Runs one input through one target.</summary>
    public void Run(string target, ReadOnlySpan<byte> input)
    {
        switch (target)
        {
            case "safetensors-header": SafetensorsHeader(input); break;
            case "safetensors-index": SafetensorsIndex(input); break;
            case "config": Config(input); break;
            case "generation-config": GenerationConfig(input); break;
            case "tokenizer-json": TokenizerJson(input); break;
            case "encode": Encode(input); break;
            case "detokenize": Detokenize(input); break;
            case "jinja-template": JinjaTemplate(input); break;
            case "jinja-data": JinjaData(input); break;
            case "tool-call-parser": ToolCallParser(input); break;
            case "server-request": ServerRequest(input); break;
            case "gguf": Gguf(input); break;
            case "json-schema": JsonSchema(input); break;
            case "retrieval-request": RetrievalRequest(input); break;
            default: throw new ArgumentException($"unknown fuzz target '{target}'", nameof(target));
        }
    }

    /// <summary>The fuzzed header JSON, framed as a file: its length, the header, then a data section.</summary>
    unsafe void SafetensorsHeader(ReadOnlySpan<byte> header)
    {
        string folder = NewFolder();
        string path = Path.Combine(folder, "model.safetensors");
        var bytes = new byte[8 + header.Length + SafetensorsDataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes.AsSpan(8));
        File.WriteAllBytes(path, bytes);

        if (Accepted<SafetensorsFile, ModelLoadException>(() => SafetensorsFile.Open(path)) is not { } file)
            return;

        using (file)
        {
            long dataStart = (long)file.FileStart + 8 + header.Length;
            foreach (TensorView tensor in file.Tensors.Values)
            {
                CheckInside(tensor, dataStart, SafetensorsDataBytes);
                Touch(tensor);
            }
        }
    }

    /// <summary>
    /// The fuzzed bytes as a whole GGUF file: the container is parsed, every metadata value is read with every typed
    /// getter, every tensor is read through; then the file is loaded as a Qwen3 model (config, tokenizer, template, weights).
    /// </summary>
    unsafe void Gguf(ReadOnlySpan<byte> bytes)
    {
        string path = Path.Combine(NewFolder(), "model.gguf");
        File.WriteAllBytes(path, bytes.ToArray());

        if (Accepted<GgufFile, ModelLoadException>(() => GgufFile.Open(path)) is not { } file)
            return;

        using (file)
        {
            foreach (string key in file.Metadata.Keys)
            {
                Allow<ModelLoadException>(() => file.GetString(key));
                Allow<ModelLoadException>(() => file.GetInteger(key));
                Allow<ModelLoadException>(() => file.GetFloat(key));
                Allow<ModelLoadException>(() => file.GetBool(key));
                Allow<ModelLoadException>(() => file.GetStringArray(key));
                Allow<ModelLoadException>(() => file.GetInt32Array(key));
            }

            foreach (GgufTensor t in file.Tensors)
            {
                var view = new TensorView(t.Name, TensorDType.F32, t.RowMajorShape, file.DataOf(t), t.ByteLength, path);
                CheckInside(view, (long)file.FileStart + file.DataOffset, bytes.Length - file.DataOffset);
                Touch(view);
            }
        }

        Qwen3Gguf model;
        try
        {
            model = Qwen3Gguf.Open(path);
        }
        catch (Exception e) when (e is ModelLoadException or NotSupportedException)
        {
            return;
        }

        using (model.Store)
        {
            try
            {
                _ = Qwen3Weights.Bind(model.Store, model.Config);
            }
            catch (ModelLoadException)
            {
            }
        }
    }

    /// <summary>What <paramref name="open"/> returns, or null when it refuses the input the documented way, with a <typeparamref name="TRefusal"/>.</summary>
    static T? Accepted<T, TRefusal>(Func<T> open)
        where T : class
        where TRefusal : Exception
    {
        try
        {
            return open();
        }
        catch (TRefusal)
        {
            return null;
        }
    }

    static void Allow<TException>(Action action)
        where TException : Exception
    {
        try
        {
            action();
        }
        catch (TException)
        {
        }
    }

    /// <summary>The fuzzed model.safetensors.index.json beside two valid shards (tensors a, b in one.safetensors, c in two.safetensors).</summary>
    void SafetensorsIndex(ReadOnlySpan<byte> index)
    {
        string folder = NewFolder();
        WriteShard(Path.Combine(folder, "one.safetensors"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}", 16);
        WriteShard(Path.Combine(folder, "two.safetensors"), "{\"c\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6);
        File.WriteAllBytes(Path.Combine(folder, TensorStore.IndexFileName), index.ToArray());

        if (Accepted<TensorStore, ModelLoadException>(() => TensorStore.Open(folder)) is not { } store)
            return;

        using (store)
        {
            foreach (string name in store.TensorNames)
            {
                TensorView tensor = store.Get(name);
                if (Path.GetDirectoryName(tensor.FilePath) != folder)
                    throw new FuzzInvariantException($"tensor '{name}' resolved to '{tensor.FilePath}', outside the model folder");
                Touch(tensor);
            }
        }
    }

    static void WriteShard(string path, string header, int dataBytes)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
    }

    void Config(ReadOnlySpan<byte> config)
    {
        string folder = NewFolder();
        File.WriteAllBytes(Path.Combine(folder, "config.json"), config.ToArray());
        LoadConfig(folder);
    }

    /// <summary>The fuzzed generation_config.json beside the tiny model's valid config.json.</summary>
    void GenerationConfig(ReadOnlySpan<byte> generationConfig)
    {
        string folder = NewFolder();
        File.Copy(Path.Combine(_modelFolder, "config.json"), Path.Combine(folder, "config.json"));
        File.WriteAllBytes(Path.Combine(folder, "generation_config.json"), generationConfig.ToArray());
        LoadConfig(folder);
    }

    static void LoadConfig(string folder)
    {
        try
        {
            Qwen3Config.Load(folder);
        }
        catch (Exception e) when (e is ModelLoadException or NotSupportedException)
        {
        }
    }

    /// <summary>The fuzzed tokenizer.json; a tokenizer that loads must encode and decode without surprises.</summary>
    void TokenizerJson(ReadOnlySpan<byte> json)
    {
        string path = Path.Combine(NewFolder(), "tokenizer.json");
        File.WriteAllBytes(path, json.ToArray());
        if (Accepted<Qwen3Tokenizer, ModelLoadException>(() => Qwen3Tokenizer.FromFile(path)) is not { } tokenizer)
            return;

        IReadOnlyList<int> ids = tokenizer.Encode("Hello, world! <|im_start|>user\nhéllo 123 \u4F60\u597D <think>\n</think> \U0001F600");
        CheckDetokenizers(tokenizer, [.. ids]);
        int[] all = Enumerable.Range(0, Math.Min(tokenizer.VocabularySize, 4096)).ToArray();
        CheckDetokenizers(tokenizer, all);
    }

    /// <summary>Arbitrary text through the real Qwen3 tokenizer: first byte odd = the rest is raw UTF-16 (lone surrogates), even = UTF-8.</summary>
    void Encode(ReadOnlySpan<byte> input)
    {
        if (input.Length == 0)
            return;
        string text = (input[0] & 1) != 0
            ? new string(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, char>(input[1..(1 + ((input.Length - 1) & ~1))]))
            : Encoding.UTF8.GetString(input[1..]);

        Qwen3Tokenizer tokenizer = _tokenizer.Value;
        int[] ids = [.. tokenizer.Encode(text)];
        string decoded = CheckDetokenizers(tokenizer, ids);
        // Byte-level BPE is lossless up to the NFC normalizer; strings with lone surrogates have no NFC form, and .NET's
        // normalizer rejects U+FFFE (the tokenizer's tests cover how it is encoded).
        if (IsWellFormed(text) && !text.Contains('\uFFFE') && decoded.Normalize(NormalizationForm.FormC) != text.Normalize(NormalizationForm.FormC))
            throw new FuzzInvariantException($"Decode(Encode(text)) is not text: {Escape(text)} -> {Escape(decoded)}");
    }

    /// <summary>
    /// Arbitrary ids (3 bytes each, mapped to -1 ..= vocabulary size, so the ends of the range are hit) through
    /// <see cref="StreamingDetokenizer"/> and Decode; first byte odd = skip special tokens.
    /// </summary>
    void Detokenize(ReadOnlySpan<byte> input)
    {
        if (input.Length == 0)
            return;
        Qwen3Tokenizer tokenizer = _tokenizer.Value;
        bool skipSpecial = (input[0] & 1) != 0;
        var ids = new int[(input.Length - 1) / 3];
        for (int i = 0; i < ids.Length; i++)
        {
            int raw = input[1 + (3 * i)] | (input[2 + (3 * i)] << 8) | (input[3 + (3 * i)] << 16);
            ids[i] = (raw % (tokenizer.VocabularySize + 2)) - 1;
        }

        int firstBad = Array.FindIndex(ids, id => id < 0 || id >= tokenizer.VocabularySize);
        if (firstBad < 0)
        {
            CheckDetokenizers(tokenizer, ids, skipSpecial);
            return;
        }

        ExpectOutOfRange(() => tokenizer.Decode(ids, skipSpecial), "Decode");
        StreamingDetokenizer streaming = tokenizer.CreateStreamingDetokenizer(skipSpecial);
        for (int i = 0; i < firstBad; i++)
            streaming.Append(ids[i]);
        ExpectOutOfRange(() => streaming.Append(ids[firstBad]), "StreamingDetokenizer.Append");
    }

    static void ExpectOutOfRange(Action action, string what)
    {
        try
        {
            action();
        }
        catch (ArgumentOutOfRangeException)
        {
            return;
        }

        throw new FuzzInvariantException($"{what} accepted an id outside the vocabulary");
    }

    /// <summary>Decodes ids every way the API offers and checks they agree; returns the text.</summary>
    static string CheckDetokenizers(Qwen3Tokenizer tokenizer, int[] ids, bool skipSpecial = false)
    {
        string decoded = tokenizer.Decode(ids.AsSpan(), skipSpecial);
        if (tokenizer.Decode(new List<int>(ids), skipSpecial) != decoded)
            throw new FuzzInvariantException("Decode(List) differs from Decode(span)");
        var streamed = new StringBuilder();
        StreamingDetokenizer streaming = tokenizer.CreateStreamingDetokenizer(skipSpecial);
        foreach (int id in ids)
            streamed.Append(streaming.Append(id));
        streamed.Append(streaming.Flush());
        if (streamed.ToString() != decoded)
            throw new FuzzInvariantException($"streamed text {Escape(streamed.ToString())} differs from Decode {Escape(decoded)}");
        return decoded;
    }

    // A tenth of the default step budget (about a second of work), so a render the budget allows stays well inside the
    // 1 s hang limit even instrumented: a hang is then work the sandbox does not count, not the budget itself.
    readonly ChatTemplateLimits _templateLimits = new() { MaxSteps = 500_000 };

    /// <summary>The fuzzed template source, parsed and rendered with a fixed conversation that uses every message field.</summary>
    void JinjaTemplate(ReadOnlySpan<byte> source)
    {
        string text = Encoding.UTF8.GetString(source);
        if (Accepted<ChatTemplate, ChatTemplateException>(() => ChatTemplate.Parse(text, _templateLimits)) is not { } template)
            return;

        Render(template, _fixedConversation, _fixedTools, addGenerationPrompt: true, enableThinking: false);
        Render(template, _fixedConversation, null, addGenerationPrompt: false, enableThinking: null);
    }

    // Instance fields, not static: the driver must not run instrumented code before SharpFuzz has set up its trace map.
    readonly IReadOnlyList<Message> _fixedConversation =
    [
        Message.System("You are helpful."),
        Message.User("What is the weather in Paris?"),
        Message.Assistant("", "I should call the tool.", [ToolCall.FromJson("get_weather", "{\"city\": \"Paris\", \"days\": [1, 2.5, null, true]}")]),
        Message.Tool("{\"temperature\": 21}"),
        Message.Assistant("It is 21 °C.", "The tool said 21."),
        Message.User("Thanks! <tool_call>x</tool_call> /no_think"),
    ];

    readonly IReadOnlyList<ToolDefinition> _fixedTools =
    [
        ToolDefinition.FromJson("{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}"),
    ];

    /// <summary>
    /// The real Qwen3 template rendered with fuzzed data: {"messages": [{"role", "content", "reasoning_content",
    /// "tool_calls": [{"name", "arguments"}]}], "tools": [...], "add_generation_prompt": bool, "enable_thinking": bool}.
    /// Data the public API itself rejects (unknown role, reasoning on a user turn) is not a render input and is skipped.
    /// </summary>
    void JinjaData(ReadOnlySpan<byte> input)
    {
        byte[] json = input.ToArray();
        if (Accepted<JsonDocument, JsonException>(() => JsonDocument.Parse(json)) is not { } document)
            return;

        using (document)
        {
            if (!TryReadConversation(document.RootElement, out var messages, out var tools, out bool addGenerationPrompt, out bool? enableThinking))
                return;
            Render(_qwenTemplate.Value, messages, tools, addGenerationPrompt, enableThinking);
        }
    }

    static bool TryReadConversation(
        JsonElement root,
        out List<Message> messages,
        out List<ToolDefinition>? tools,
        out bool addGenerationPrompt,
        out bool? enableThinking)
    {
        messages = [];
        tools = null;
        addGenerationPrompt = true;
        enableThinking = null;
        if (root.ValueKind != JsonValueKind.Object)
            return false;
        if (root.TryGetProperty("add_generation_prompt", out var agp))
            addGenerationPrompt = agp.ValueKind == JsonValueKind.True;
        if (root.TryGetProperty("enable_thinking", out var et) && et.ValueKind is JsonValueKind.True or JsonValueKind.False)
            enableThinking = et.ValueKind == JsonValueKind.True;

        try
        {
            if (root.TryGetProperty("tools", out var toolArray) && toolArray.ValueKind == JsonValueKind.Array)
                tools = [.. toolArray.EnumerateArray().Select(ToolDefinition.FromJsonElement)];
            if (!root.TryGetProperty("messages", out var messageArray) || messageArray.ValueKind != JsonValueKind.Array)
                return false;
            foreach (JsonElement m in messageArray.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var roleElement)
                    || !Enum.TryParse(roleElement.ValueKind == JsonValueKind.String ? roleElement.GetString() : null, ignoreCase: true, out MessageRole role)
                    || !Enum.IsDefined(role))
                    return false;
                string content = m.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
                string? reasoning = m.TryGetProperty("reasoning_content", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                List<ToolCall>? calls = null;
                if (m.TryGetProperty("tool_calls", out var callArray) && callArray.ValueKind == JsonValueKind.Array)
                {
                    calls = [];
                    foreach (JsonElement item in callArray.EnumerateArray())
                    {
                        // Both the OpenAI shape {"type": "function", "function": {...}} and a bare {"name", "arguments"}.
                        JsonElement call = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("function", out var f) ? f : item;
                        if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                            || !call.TryGetProperty("arguments", out var arguments))
                            return false;
                        calls.Add(new ToolCall(name.GetString()!, arguments));
                    }
                }

                messages.Add(new Message(role, content, reasoning, calls));
            }
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            // A role, content or name that is not valid UTF-8 is no .NET string, so it never reaches the API; the JSON
            // elements (tools, arguments) do, and the API must check those itself.
            return false;
        }

        return true;
    }

    static void Render(ChatTemplate template, IReadOnlyList<Message> messages, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt, bool? enableThinking)
    {
        try
        {
            template.Render(messages, tools, addGenerationPrompt, enableThinking);
        }
        catch (ChatTemplateException)
        {
        }
    }

    /// <summary>
    /// The fuzzed bytes as a JSON Schema for constrained decoding: compiling either succeeds or throws
    /// <see cref="Generation.Constraints.SchemaException"/>. A compiled schema accepts something, and a walk that always
    /// takes an allowed byte (chosen by the input's hash) never reaches a dead end: a live matcher can always finish.
    /// </summary>
    static void JsonSchema(ReadOnlySpan<byte> input)
    {
        byte[] json = input.ToArray();
        if (Accepted<JsonDocument, JsonException>(() => JsonDocument.Parse(json)) is not { } document)
            return;

        using (document)
        {
            // Smaller than the default limits so one input stays well under the driver's 1 s CPU watchdog. Built here, not in a
            // static field: instrumented code must not run before the fuzzer has set up its coverage map.
            var limits = new Generation.Constraints.GrammarLimits { MaxStates = 20_000, MaxDepth = 8 };
            bool leadingNewlines = input.Length % 2 == 0;
            if (Accepted<Generation.Constraints.Automaton, Generation.Constraints.SchemaException>(
                () => Generation.Constraints.JsonSchemaCompiler.Compile(document.RootElement, limits, leadingNewlines)) is not { } automaton)
                return;

            var dfa = new Generation.Constraints.LazyDfa(automaton, 1024);
            var state = dfa.Start;
            uint choice = (uint)input.Length * 2654435761u;
            Span<byte> allowed = stackalloc byte[256];
            for (int step = 0; step < 64 && !(state.Accepting && state.Configs.Count == 0); step++)
            {
                int count = 0;
                for (int b = 0; b < 256; b++)
                {
                    if (!dfa.Step(state, (byte)b).IsDead)
                        allowed[count++] = (byte)b;
                }

                if (count == 0)
                {
                    if (!state.Accepting)
                        throw new FuzzInvariantException($"the walk reached a dead end after {step} bytes that do not form a document");
                    return;
                }

                choice = choice * 1664525u + 1013904223u;
                state = dfa.Step(state, allowed[(int)((choice >> 8) % (uint)count)]);
            }
        }
    }

    // Markers in tool-call-parser inputs; they never occur in UTF-8 text.
    const byte TokenBreak = 0xFF;
    const byte ThinkStartMarker = 0xFE;
    const byte ThinkEndMarker = 0xFD;
    const int ThinkStartId = 1;
    const int ThinkEndId = 2;
    const int TextId = 100;
    static readonly string[] StopStrings = ["</s>", "\n\nUser:", "ababc", "\u4F60\u597D"];

    /// <summary>
    /// Model output through <see cref="StopStringMatcher"/> and <see cref="ChatOutputParser"/>, as generation feeds them:
    /// first byte bit 0 = the prompt opened a think block, bit 1 = watch for stop strings; then text tokens separated by
    /// 0xFF (an empty one is a token whose character is not complete yet), with 0xFE / 0xFD standing for the
    /// &lt;think&gt; / &lt;/think&gt; tokens. The same output pushed one character at a time, without the empty tokens, must parse to the same result.
    /// </summary>
    static void ToolCallParser(ReadOnlySpan<byte> input)
    {
        if (input.Length == 0)
            return;
        bool startsInReasoning = (input[0] & 1) != 0;
        IReadOnlyList<string> stops = (input[0] & 2) != 0 ? StopStrings : [];
        var tokens = new List<(int Id, string Text)>();
        int start = 1;
        for (int i = 1; i < input.Length; i++)
        {
            byte b = input[i];
            if (b is TokenBreak or ThinkStartMarker or ThinkEndMarker)
            {
                tokens.Add((TextId, Encoding.UTF8.GetString(input[start..i])));
                if (b != TokenBreak)
                    tokens.Add((b == ThinkStartMarker ? ThinkStartId : ThinkEndId, ""));
                start = i + 1;
            }
        }

        tokens.Add((TextId, Encoding.UTF8.GetString(input[start..])));
        string whole = ParseOutput(tokens, startsInReasoning, stops);
        var perCharacter = new List<(int Id, string Text)>();
        foreach ((int id, string text) in tokens)
        {
            if (id != TextId)
            {
                perCharacter.Add((id, text));
                continue;
            }

            for (int i = 0; i < text.Length;)
            {
                int length = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
                perCharacter.Add((TextId, text.Substring(i, length)));
                i += length;
            }
        }

        string split = ParseOutput(perCharacter, startsInReasoning, stops);
        if (split != whole)
            throw new FuzzInvariantException($"output parse depends on how the text is split:\nwhole tokens: {whole}\none character at a time: {split}");
    }

    /// <summary>
    /// A <c>POST /v1/chat/completions</c> body through the server's parser, then what the server does next with an
    /// accepted request: its sampling options and the prompt rendered with the Qwen3 template. Refusals must be
    /// <see cref="OpenAIException"/> with a 4xx status (a 500 is a bug), and an accepted request must stay inside the limits.
    /// The first byte picks the default limits or small ones, so both the limit checks and deep inputs are reached.
    /// </summary>
    void ServerRequest(ReadOnlySpan<byte> input)
    {
        if (input.Length == 0)
            return;
        // Made per input: instrumented code must not run before the fuzzer has set up its coverage map.
        var options = (input[0] & 1) == 0 ? new Qwen3ServerOptions() : new Qwen3ServerOptions
        {
            MaxMessages = 4, MaxTools = 2, MaxStopStrings = 2, MaxStopStringLength = 8, MaxTokensLimit = 64, MaxJsonDepth = 8,
        };
        ChatCompletionRequest request;
        try
        {
            request = new ChatRequestParser(options).Parse(input[1..].ToArray());
        }
        catch (OpenAIException e)
        {
            CheckRefusal(e);
            return;
        }

        if (request.Messages.Count is 0 || request.Messages.Count > options.MaxMessages || request.Tools.Count > options.MaxTools
            || request.Stop.Count > options.MaxStopStrings || request.Stop.Any(s => s.Length > options.MaxStopStringLength)
            || request.MaxTokens is <= 0 || request.MaxTokens > options.MaxTokensLimit)
            throw new FuzzInvariantException($"an accepted request breaks a limit: {request.Messages.Count} messages, {request.Tools.Count} tools, {request.Stop.Count} stop strings, max_tokens {request.MaxTokens}");

        // The service builds these after parsing; an exception here would be a 500 for a request the parser let through.
        _ = request.ToSampling(request.MaxTokens ?? 1);
        try
        {
            _qwenTemplate.Value.Render(request.Messages, request.Tools.Count > 0 ? request.Tools : null, true, request.Thinking == ThinkingMode.Enabled);
        }
        catch (ChatTemplateException)
        {
        }
    }

    /// <summary>A refused request must be a 4xx (a 500 is a bug) with an error body that is JSON.</summary>
    static void CheckRefusal(OpenAIException e)
    {
        if (e.Status is < 400 or >= 500)
            throw new FuzzInvariantException($"a refused request got status {e.Status}: {e.Message}");
        using var errorBody = JsonDocument.Parse(TurnAccumulator.Write(e.WriteTo));
    }

    /// <summary>
    /// A <c>POST /v1/embeddings</c> (first byte bit 0 clear) or <c>POST /v1/rerank</c> (set) body through the checks the
    /// endpoint runs before the model: the JSON, <c>model</c>, then the request's fields, with the real tokenizer. Bit 1
    /// picks small limits (4 inputs or documents, 32 tokens, JSON 8 deep) so the limit checks are reached. Refusals must be
    /// 4xx <see cref="OpenAIException"/>s, and an accepted request must stay inside the limits.
    /// </summary>
    void RetrievalRequest(ReadOnlySpan<byte> input)
    {
        if (input.Length == 0)
            return;
        bool small = (input[0] & 2) != 0;
        var options = small ? new Qwen3ServerOptions { MaxEmbeddingInputs = 4, MaxRerankDocuments = 4, MaxJsonDepth = 8 } : new Qwen3ServerOptions();
        Qwen3Tokenizer tokenizer = _tokenizer.Value;
        var limits = new RetrievalModelLimits(tokenizer.VocabularySize, small ? 32 : 4096, 96);
        try
        {
            using var document = ChatRequestParser.ParseBody(input[1..].ToArray(), options.MaxJsonDepth);
            var root = document.RootElement;
            if (ChatRequestParser.Optional(root, "model", out var model))
                ChatRequestParser.ReadString(model, "model");
            if ((input[0] & 1) == 0)
                CheckAccepted(EmbeddingsRequest.Parse(root, options, limits, text => [.. tokenizer.Encode(text), tokenizer.EndOfTextId]), options, limits);
            else
                // The reranker's prompt format does not matter to the checks, only the prompt's length.
                CheckAccepted(RerankRequest.Parse(root, options, limits.MaxTokens, (query, document, instruction) => [.. tokenizer.Encode($"{instruction}\n{query}\n{document}")]), options, limits);
        }
        catch (OpenAIException e)
        {
            CheckRefusal(e);
        }
    }

    static void CheckAccepted(EmbeddingsRequest request, Qwen3ServerOptions options, RetrievalModelLimits limits)
    {
        if (request.Inputs.Count is 0 || request.Inputs.Count > options.MaxEmbeddingInputs || request.Dimensions < 1 || request.Dimensions > limits.Dimensions
            || request.Inputs.Any(tokens => tokens.Length is 0 || tokens.Length > limits.MaxTokens || tokens.Any(id => id < 0 || id >= limits.VocabularySize)))
            throw new FuzzInvariantException($"an accepted embeddings request breaks a limit: {request.Inputs.Count} inputs of up to {request.Inputs.Max(t => t.Length)} tokens, {request.Dimensions} dimensions");
    }

    static void CheckAccepted(RerankRequest request, Qwen3ServerOptions options, RetrievalModelLimits limits)
    {
        int count = request.Documents.Length;
        if (count is 0 || count > options.MaxRerankDocuments || request.Prompts.Length != count || request.TopN < 1 || request.TopN > count
            || request.Prompts.Any(tokens => tokens.Length > limits.MaxTokens))
            throw new FuzzInvariantException($"an accepted rerank request breaks a limit: {count} documents, {request.Prompts.Length} prompts, top_n {request.TopN}");
    }

    /// <summary>Runs the tokens through the stop matcher and the parser, and describes everything they report.</summary>
    static string ParseOutput(List<(int Id, string Text)> tokens, bool startsInReasoning, IReadOnlyList<string> stops)
    {
        var matcher = new StopStringMatcher(stops);
        var parser = new ChatOutputParser(ThinkStartId, ThinkEndId, startsInReasoning, streamToolCallText: true);
        var segments = new List<OutputSegment>();
        bool stopped = false;
        for (int i = 0; i < tokens.Count && !stopped; i++)
        {
            (int id, string text) = tokens[i];
            stopped = matcher.PushToken(special: id != TextId, text, out string released);
            // As the generator does: the text the matcher still holds comes out with the last token.
            parser.Push(id, stopped || i < tokens.Count - 1 ? released : released + matcher.Flush(), segments);
        }

        parser.Finish(segments);
        var pieces = new StringBuilder();
        foreach (var segment in segments)
        {
            if (segment.Kind == OutputSegmentKind.ToolCallText)
            {
                pieces.Append(segment.Text);
            }
            else if (segment.Kind is OutputSegmentKind.ToolCall or OutputSegmentKind.MalformedToolCall)
            {
                if (pieces.ToString() != segment.Text)
                    throw new FuzzInvariantException($"streamed tool-call pieces {Escape(pieces.ToString())} differ from the block {Escape(segment.Text)}");
                pieces.Clear();
            }
        }

        if (pieces.Length > 0)
            throw new FuzzInvariantException($"streamed tool-call pieces {Escape(pieces.ToString())} belong to no block");
        var summary = new StringBuilder();
        summary.Append("stopped=").Append(stopped).Append(" hasReasoning=").Append(parser.HasReasoning)
            .Append("\nreasoning=").Append(Escape(parser.Reasoning))
            .Append("\nanswer=").Append(Escape(parser.Answer))
            .Append("\nhistory=").Append(Escape(parser.HistoryContent));
        foreach (ToolCall call in parser.ToolCalls)
            summary.Append("\ncall ").Append(call.Name).Append(' ').Append(call.Arguments.GetRawText());
        foreach (MalformedToolCall bad in parser.MalformedToolCalls)
            summary.Append("\nmalformed ").Append(Escape(bad.Text)).Append(' ').Append(bad.Error);
        return summary.ToString();
    }

    static unsafe void CheckInside(TensorView tensor, long dataStart, long dataLength)
    {
        long begin = (long)tensor.Data;
        if (begin < dataStart || tensor.ByteLength < 0 || begin + tensor.ByteLength > dataStart + dataLength)
            throw new FuzzInvariantException(
                $"tensor '{tensor.Name}' spans [{begin - dataStart}, {begin - dataStart + tensor.ByteLength}) outside the data section of {dataLength} bytes");
    }

    /// <summary>Reads every byte of a tensor, as the forward pass would: a view outside the mapping faults here.</summary>
    static unsafe void Touch(TensorView tensor)
    {
        int sum = 0;
        for (long i = 0; i < tensor.ByteLength; i++)
            sum += tensor.Data[i];
        GC.KeepAlive(sum);
    }

    static bool IsWellFormed(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                i++;
            else if (char.IsSurrogate(text[i]))
                return false;
        }

        return true;
    }

    static string Escape(string text) => JsonSerializer.Serialize(text);

    string NewFolder()
    {
        // A fresh folder per input, so one input's files never leak into the next; the previous one is removed first.
        string previous = Path.Combine(_workFolder, _sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (Directory.Exists(previous))
            Directory.Delete(previous, recursive: true);
        _sequence++;
        string folder = Path.Combine(_workFolder, _sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(folder);
        return folder;
    }

    public void Dispose()
    {
        if (Directory.Exists(_workFolder))
            Directory.Delete(_workFolder, recursive: true);
    }
}

/// <summary>A parser broke one of its own guarantees: the fuzzer records it as a crash.</summary>
internal sealed class FuzzInvariantException(string message) : Exception(message);
