using System.Globalization;
using Qwen3.Net.Chat;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// Everything a Qwen3 model needs, read from one GGUF file as llama.cpp's converter writes it: the hyperparameters
/// (<c>qwen3.*</c> keys), the weights (still in the map), the tokenizer (<c>tokenizer.ggml.*</c>) and the chat template.
/// </summary>
internal sealed class Qwen3Gguf
{
    /// <summary>The only architecture that loads.</summary>
    public const string Architecture = "qwen3";

    /// <summary>The key holding the chat template.</summary>
    public const string ChatTemplateKey = "tokenizer.chat_template";

    // Values of gguf-py's TokenType (llama_token_type).
    const int NormalToken = 1;
    const int ControlToken = 3;
    const int UserDefinedToken = 4;
    const int UnusedToken = 5;

    Qwen3Gguf(Qwen3Config config, TensorStore store, Qwen3Tokenizer tokenizer, ChatTemplate? template)
    {
        Config = config;
        Store = store;
        Tokenizer = tokenizer;
        ChatTemplate = template;
    }

    public Qwen3Config Config { get; }

    /// <summary>The tensors keyed by their checkpoint names; owns the map.</summary>
    public TensorStore Store { get; }

    public Qwen3Tokenizer Tokenizer { get; }

    /// <summary>The template of <c>tokenizer.chat_template</c>; null when the file has none.</summary>
    public ChatTemplate? ChatTemplate { get; }

    /// <summary>Maps, validates and reads a GGUF file. The caller owns <see cref="Store"/>.</summary>
    /// <exception cref="ModelLoadException">The file is invalid or inconsistent; the message names the file and the key or tensor.</exception>
    /// <exception cref="NotSupportedException">The file holds another architecture than qwen3, or a RoPE scaling other than YaRN.</exception>
    public static Qwen3Gguf Open(string path)
    {
        GgufFile file = GgufFile.Open(path);
        try
        {
            string architecture = RequireString(file, "general.architecture");
            if (architecture != Architecture)
                throw new NotSupportedException(
                    $"GGUF file '{file.Path}' holds a '{architecture}' model; only '{Architecture}' (Qwen3 dense) models can be loaded");

            string[] tokens = file.GetStringArray("tokenizer.ggml.tokens") ?? throw Missing(file, "tokenizer.ggml.tokens");
            Qwen3Config config = ReadConfig(file, tokens);
            Qwen3Tokenizer tokenizer = ReadTokenizer(file, tokens);
            ChatTemplate? template = ReadChatTemplate(file, tokens);
            TensorStore store = BuildStore(file);
            return new Qwen3Gguf(config, store, tokenizer, template);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    static Qwen3Config ReadConfig(GgufFile file, string[] tokens)
    {
        const string p = Architecture + ".";
        int hidden = RequirePositive(file, p + "embedding_length");
        int layers = RequirePositive(file, p + "block_count");
        int intermediate = RequirePositive(file, p + "feed_forward_length");
        int heads = RequirePositive(file, p + "attention.head_count");
        int kvHeads = OptionalPositive(file, p + "attention.head_count_kv") ?? heads;
        if (heads % kvHeads != 0)
            throw file.Error($"{p}attention.head_count ({heads}) must be a multiple of {p}attention.head_count_kv ({kvHeads})", p + "attention.head_count_kv");

        // llama.cpp's default when key_length is absent; Qwen3 files always carry it, as head_dim is not hidden / heads.
        int? keyLength = OptionalPositive(file, p + "attention.key_length");
        if (keyLength is null && hidden % heads != 0)
            throw file.Error($"{p}attention.key_length is absent and {p}embedding_length ({hidden}) is not a multiple of the head count ({heads})", p + "attention.key_length");
        int headDim = keyLength ?? hidden / heads;
        if (OptionalPositive(file, p + "attention.value_length") is int valueLength && valueLength != headDim)
            throw file.Error($"{p}attention.value_length ({valueLength}) differs from the key length ({headDim}); Qwen3 uses one head size", p + "attention.value_length");
        if (headDim % 2 != 0)
            throw file.Error($"the head size {headDim} must be even for rotary embeddings", p + "attention.key_length");

        int contextLength = RequirePositive(file, p + "context_length");
        double ropeTheta = file.GetFloat(p + "rope.freq_base") ?? 10000.0;
        if (!(ropeTheta > 1) || double.IsInfinity(ropeTheta))
            throw file.Error($"{p}rope.freq_base must be a finite number greater than 1, got {Fmt(ropeTheta)}", p + "rope.freq_base");
        double eps = file.GetFloat(p + "attention.layer_norm_rms_epsilon") ?? throw Missing(file, p + "attention.layer_norm_rms_epsilon");
        if (!(eps > 0) || double.IsInfinity(eps))
            throw file.Error($"{p}attention.layer_norm_rms_epsilon must be a finite positive number, got {Fmt(eps)}", p + "attention.layer_norm_rms_epsilon");

        int vocab = tokens.Length;
        if (OptionalPositive(file, p + "vocab_size") is int declared && declared != vocab)
            throw file.Error($"{p}vocab_size is {declared} but tokenizer.ggml.tokens lists {vocab} tokens", p + "vocab_size");
        if (vocab == 0)
            throw file.Error("tokenizer.ggml.tokens is empty", "tokenizer.ggml.tokens");

        return new Qwen3Config
        {
            Architecture = "Qwen3ForCausalLM",
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = vocab,
            // The converter writes no output.weight for tied embeddings, and llama.cpp then reuses token_embd.
            TieWordEmbeddings = !file.Tensors.Any(t => t.Name == "output.weight"),
            RopeTheta = ropeTheta,
            RmsNormEps = eps,
            MaxPositionEmbeddings = contextLength,
            RopeScaling = ReadRopeScaling(file, contextLength),
            EosTokenIds = ReadEndOfGenerationIds(file, tokens),
        };
    }

    static RopeScaling? ReadRopeScaling(GgufFile file, int contextLength)
    {
        const string key = Architecture + ".rope.scaling.type";
        string? type = file.GetString(key);
        if (type is null or "none")
            return null;
        if (type != "yarn")
            throw new NotSupportedException($"{key} '{type}' in GGUF file '{file.Path}' is not supported; only 'yarn' (or 'none') is");

        double factor = file.GetFloat(Architecture + ".rope.scaling.factor") ?? throw Missing(file, Architecture + ".rope.scaling.factor");
        if (!(factor > 0) || double.IsInfinity(factor))
            throw file.Error($"{Architecture}.rope.scaling.factor must be a finite positive number, got {Fmt(factor)}", Architecture + ".rope.scaling.factor");
        int original = OptionalPositive(file, Architecture + ".rope.scaling.original_context_length") ?? contextLength;
        return new RopeScaling { RopeType = "yarn", Factor = factor, OriginalMaxPositionEmbeddings = original };
    }

    /// <summary>
    /// The eos token, the eot token if named, and <c>&lt;|endoftext|&gt;</c>: llama.cpp ends generation on all of them, as
    /// generation_config.json's list does for Qwen3.
    /// </summary>
    static List<int> ReadEndOfGenerationIds(GgufFile file, string[] tokens)
    {
        var ids = new List<int>();
        foreach (string key in new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id" })
        {
            if (TokenId(file, key, tokens.Length) is int id && !ids.Contains(id))
                ids.Add(id);
        }

        int endOfText = Array.IndexOf(tokens, Qwen3Tokenizer.EndOfTextToken);
        if (endOfText >= 0 && !ids.Contains(endOfText))
            ids.Add(endOfText);
        if (ids.Count == 0)
            throw Missing(file, "tokenizer.ggml.eos_token_id");
        return ids;
    }

    static Qwen3Tokenizer ReadTokenizer(GgufFile file, string[] tokens)
    {
        string model = RequireString(file, "tokenizer.ggml.model");
        if (model != "gpt2")
            throw file.Error($"tokenizer.ggml.model is '{model}'; Qwen3 uses the byte-level BPE tokenizer 'gpt2'", "tokenizer.ggml.model");
        // Files from before llama.cpp named pre-tokenizers lack the key; any other pre-tokenizer splits text differently.
        if (file.GetString("tokenizer.ggml.pre") is string pre && pre != "qwen2")
            throw file.Error($"tokenizer.ggml.pre is '{pre}'; Qwen3 splits text as 'qwen2'", "tokenizer.ggml.pre");

        int[] types = file.GetInt32Array("tokenizer.ggml.token_type") ?? throw Missing(file, "tokenizer.ggml.token_type");
        if (types.Length != tokens.Length)
            throw file.Error($"tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens", "tokenizer.ggml.token_type");
        string[] merges = file.GetStringArray("tokenizer.ggml.merges") ?? throw Missing(file, "tokenizer.ggml.merges");

        // The embedding's rows past the tokenizer's last token are written as unused [PAD{id}] entries; like
        // tokenizer.json, the tokenizer ends at its last real token.
        int count = tokens.Length;
        while (count > 0 && types[count - 1] == UnusedToken)
            count--;

        var vocab = new List<KeyValuePair<string, int>>(count);
        var added = new List<(string Content, int Id, bool Special)>();
        for (int id = 0; id < count; id++)
        {
            switch (types[id])
            {
                case NormalToken:
                    vocab.Add(new(tokens[id], id));
                    break;
                case ControlToken:
                case UserDefinedToken:
                    if (tokens[id].Length == 0)
                        throw file.Error($"token {id} of tokenizer.ggml.tokens is an empty added token", "tokenizer.ggml.tokens");
                    added.Add((tokens[id], id, types[id] == ControlToken));
                    break;
                default:
                    throw file.Error(
                        $"token {id} ('{tokens[id]}') has type {types[id]} in tokenizer.ggml.token_type; a byte-level BPE vocabulary has normal (1), control (3) and user-defined (4) tokens, and unused ones (5) only at the end",
                        "tokenizer.ggml.token_type");
            }
        }

        return Qwen3Tokenizer.FromParts(vocab, merges, added, file.Path);
    }

    static ChatTemplate? ReadChatTemplate(GgufFile file, string[] tokens)
    {
        string? source = file.GetString(ChatTemplateKey);
        if (source is null)
            return null;

        // The names transformers gives templates; Qwen3's tokenizer_config.json has no bos_token, and the converter's
        // bos id only counts when add_bos_token says it is used.
        var special = new Dictionary<string, string>(StringComparer.Ordinal);
        AddSpecial(file, special, "eos_token", "tokenizer.ggml.eos_token_id", tokens);
        AddSpecial(file, special, "pad_token", "tokenizer.ggml.padding_token_id", tokens);
        if (file.GetBool("tokenizer.ggml.add_bos_token") == true)
            AddSpecial(file, special, "bos_token", "tokenizer.ggml.bos_token_id", tokens);
        return ChatTemplate.FromModelFile(source, special, file.Path, ChatTemplateKey);
    }

    static void AddSpecial(GgufFile file, Dictionary<string, string> special, string name, string key, string[] tokens)
    {
        if (TokenId(file, key, tokens.Length) is int id)
            special[name] = tokens[id];
    }

    static int? TokenId(GgufFile file, string key, int vocab)
    {
        long? id = file.GetInteger(key);
        if (id is null)
            return null;
        if (id < 0 || id >= vocab)
            throw file.Error($"{key} is {id}, outside the {vocab} tokens of tokenizer.ggml.tokens", key);
        return (int)id;
    }

    static unsafe TensorStore BuildStore(GgufFile file)
    {
        var views = new Dictionary<string, TensorView>(StringComparer.Ordinal);
        var fileNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (GgufTensor t in file.Tensors)
        {
            TensorDType type = t.Type switch
            {
                GgmlType.F32 => TensorDType.F32,
                GgmlType.F16 => TensorDType.F16,
                GgmlType.BF16 => TensorDType.BF16,
                GgmlType.Q4_0 => TensorDType.Q4_0,
                GgmlType.Q5_0 => TensorDType.Q5_0,
                GgmlType.Q8_0 => TensorDType.Q8_0,
                GgmlType.Q4_K => TensorDType.Q4_K,
                GgmlType.Q5_K => TensorDType.Q5_K,
                GgmlType.Q6_K => TensorDType.Q6_K,
                GgmlType.Q3_K => TensorDType.Q3_K,
                GgmlType.Q2_K => TensorDType.Q2_K,
                _ => throw file.Error($"tensor '{t.Name}' has type {t.Type}, which Qwen3.Net cannot run (supported: F32, F16, BF16, Q4_0, Q5_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)", t.Name),
            };
            string key = GgufTensorNames.ToCheckpoint(t.Name);
            if (!views.TryAdd(key, new TensorView(t.Name, type, t.RowMajorShape, file.DataOf(t), t.ByteLength, file.Path)))
                throw file.Error($"tensors '{fileNames[key]}' and '{t.Name}' are the same weight", t.Name);
            fileNames.Add(key, t.Name);
        }

        return TensorStore.FromGguf(file, views, name => fileNames.TryGetValue(name, out string? n) ? n : GgufTensorNames.ToGguf(name));
    }

    static string RequireString(GgufFile file, string key) => file.GetString(key) ?? throw Missing(file, key);

    static int RequirePositive(GgufFile file, string key) => OptionalPositive(file, key) ?? throw Missing(file, key);

    static int? OptionalPositive(GgufFile file, string key)
    {
        long? value = file.GetInteger(key);
        if (value is null)
            return null;
        if (value is < 1 or > int.MaxValue)
            throw file.Error($"{key} is {value}; it must be a positive 32-bit integer", key);
        return (int)value;
    }

    static ModelLoadException Missing(GgufFile file, string key) => file.Error($"metadata key '{key}' is missing", key);

    static string Fmt(double d) => d.ToString("R", CultureInfo.InvariantCulture);
}
