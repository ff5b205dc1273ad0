using System.Globalization;
using System.Text.Json;
using System.Text.Unicode;

// In the root namespace (though it lives in Loading/) because Qwen3Config.Load calls it unqualified.
namespace Qwen3.Net;

/// <summary>
/// Reads <c>config.json</c> and <c>generation_config.json</c> into a <see cref="Qwen3Config"/>, with the defaults
/// transformers' <c>Qwen3Config</c> applies to absent fields, and rejects anything the forward pass cannot run.
/// </summary>
internal static class Qwen3ConfigReader
{
    public const string ConfigFileName = "config.json";
    public const string GenerationConfigFileName = "generation_config.json";
    const string SupportedArchitecture = "Qwen3ForCausalLM";

    // A few MB is generous for a config; the cap only stops us from reading some huge unrelated file into memory.
    const long MaxConfigBytes = 16L * 1024 * 1024;

    public static Qwen3Config Read(string modelFolder)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        string folder = Path.GetFullPath(modelFolder);
        string configPath = Path.Combine(folder, ConfigFileName);
        if (!Directory.Exists(folder))
            throw new ModelLoadException($"model folder '{folder}' does not exist", configPath);
        if (!File.Exists(configPath))
            throw new ModelLoadException($"{ConfigFileName} not found: '{configPath}'", configPath);

        using JsonDocument doc = ParseJsonObject(configPath);
        var r = new FieldReader(doc.RootElement, configPath);

        string architecture = CheckArchitecture(r, configPath);

        int hiddenSize = r.RequiredPositiveInt("hidden_size");
        int intermediateSize = r.RequiredPositiveInt("intermediate_size");
        int layers = r.RequiredPositiveInt("num_hidden_layers");
        int heads = r.RequiredPositiveInt("num_attention_heads");
        // transformers' Qwen3Config defaults num_key_value_heads to num_attention_heads (plain multi-head attention).
        int kvHeads = r.OptionalPositiveInt("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw r.Invalid("num_attention_heads", $"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kvHeads})");

        // Qwen3 files always carry head_dim and it is NOT hidden_size / heads in general (0.6B: 16 × 128 ≠ 1024).
        // When it is absent we do what transformers does (head_dim = hidden_size // num_attention_heads), which is
        // the only value a file without the field can have been trained with.
        int? headDimField = r.OptionalPositiveInt("head_dim");
        int headDim;
        if (headDimField is int hd)
        {
            headDim = hd;
        }
        else
        {
            if (hiddenSize % heads != 0)
                throw r.Invalid("head_dim", $"head_dim is absent and hidden_size ({hiddenSize}) is not a multiple of num_attention_heads ({heads}), so it cannot be derived");
            headDim = hiddenSize / heads;
        }
        if (headDim % 2 != 0)
            throw r.Invalid("head_dim", $"head_dim ({headDim}) must be even for rotary embeddings");

        int vocabSize = r.RequiredPositiveInt("vocab_size");
        // Defaults below are those of transformers' Qwen3Config.__init__.
        bool tie = r.OptionalBool("tie_word_embeddings") ?? false;
        double ropeTheta = r.OptionalDouble("rope_theta") ?? 10000.0;
        if (!(ropeTheta > 1) || double.IsInfinity(ropeTheta))
            throw r.Invalid("rope_theta", $"rope_theta must be a finite number greater than 1, got {Fmt(ropeTheta)}");
        double eps = r.OptionalDouble("rms_norm_eps") ?? 1e-6;
        if (!(eps > 0) || double.IsInfinity(eps))
            throw r.Invalid("rms_norm_eps", $"rms_norm_eps must be a finite positive number, got {Fmt(eps)}");
        int maxPos = r.OptionalPositiveInt("max_position_embeddings") ?? 32768;
        string? torchDtype = r.OptionalString("torch_dtype");

        RopeScaling? ropeScaling = ReadRopeScaling(r, maxPos);

        IReadOnlyList<int> eos = ReadEosTokenIds(folder, r);

        return new Qwen3Config
        {
            Architecture = architecture,
            HiddenSize = hiddenSize,
            IntermediateSize = intermediateSize,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = vocabSize,
            TieWordEmbeddings = tie,
            RopeTheta = ropeTheta,
            RmsNormEps = eps,
            MaxPositionEmbeddings = maxPos,
            RopeScaling = ropeScaling,
            TorchDtype = torchDtype,
            EosTokenIds = eos,
        };
    }

    static string CheckArchitecture(FieldReader r, string configPath)
    {
        if (r.TryGet("architectures", out JsonElement archs))
        {
            if (archs.ValueKind != JsonValueKind.Array)
                throw r.WrongType("architectures", "an array of strings", archs);
            var names = new List<string>();
            foreach (JsonElement a in archs.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.String)
                    throw r.WrongType("architectures", "an array of strings", archs);
                names.Add(a.GetString()!);
            }
            if (names.Contains(SupportedArchitecture))
                return SupportedArchitecture;
            string listed = names.Count == 0 ? "(empty list)" : string.Join(", ", names);
            throw new NotSupportedException(
                $"architecture {listed} in '{configPath}' is not supported; only {SupportedArchitecture} (Qwen3 dense) models can be loaded");
        }

        // No architectures list (some hand-written configs): fall back to model_type, as transformers' AutoConfig does.
        string? modelType = r.OptionalString("model_type");
        if (modelType == "qwen3")
            return SupportedArchitecture;
        throw new NotSupportedException(modelType is null
            ? $"'{configPath}' names neither architectures nor model_type; only {SupportedArchitecture} (Qwen3 dense) models can be loaded"
            : $"model_type '{modelType}' in '{configPath}' is not supported; only {SupportedArchitecture} (model_type qwen3) models can be loaded");
    }

    static RopeScaling? ReadRopeScaling(FieldReader root, int maxPositionEmbeddings)
    {
        if (!root.TryGet("rope_scaling", out JsonElement rs))
            return null;
        if (rs.ValueKind != JsonValueKind.Object)
            throw root.WrongType("rope_scaling", "an object or null", rs);

        var r = new FieldReader(rs, root.FilePath, "rope_scaling.");
        // "type" is the older spelling of "rope_type"; transformers reads rope_type first.
        string? ropeType = r.OptionalString("rope_type") ?? r.OptionalString("type");
        if (ropeType is null)
            throw r.Missing("rope_type");
        if (ropeType == "default")
            return null;
        if (ropeType != "yarn")
            throw new NotSupportedException(
                $"rope_scaling type '{ropeType}' in '{root.FilePath}' is not supported; only 'yarn' (or 'default') is");

        // DeepSeek-style YaRN variants scale attention with mscale/mscale_all_dim; Qwen3 never does, and silently
        // ignoring them would give wrong logits.
        foreach (string unsupported in new[] { "mscale", "mscale_all_dim" })
            if (r.TryGet(unsupported, out _))
                throw new NotSupportedException(
                    $"rope_scaling.{unsupported} in '{root.FilePath}' is not supported for Qwen3 YaRN");

        double factor = r.RequiredDouble("factor");
        if (!(factor > 0) || double.IsInfinity(factor))
            throw r.Invalid("factor", $"rope_scaling.factor must be a finite positive number, got {Fmt(factor)}");
        // transformers uses config.max_position_embeddings when rope_scaling has no original_max_position_embeddings.
        int original = r.OptionalPositiveInt("original_max_position_embeddings") ?? maxPositionEmbeddings;

        // transformers reads these with `rope_scaling.get(...) or default`, so an explicit 0 also means the default.
        double betaFast = r.OptionalDouble("beta_fast") is double bf && bf != 0 ? bf : 32;
        double betaSlow = r.OptionalDouble("beta_slow") is double bs && bs != 0 ? bs : 1;
        if (!double.IsFinite(betaFast) || !double.IsFinite(betaSlow) || betaFast < 0 || betaSlow < 0)
            throw r.Invalid("beta_fast", $"rope_scaling.beta_fast ({Fmt(betaFast)}) and beta_slow ({Fmt(betaSlow)}) must be finite and positive");
        double? attentionFactor = r.OptionalDouble("attention_factor");
        if (attentionFactor is double af && (!(af > 0) || double.IsInfinity(af)))
            throw r.Invalid("attention_factor", $"rope_scaling.attention_factor must be a finite positive number, got {Fmt(af)}");
        bool truncate = r.OptionalBool("truncate") ?? true;

        return new RopeScaling
        {
            RopeType = ropeType,
            Factor = factor,
            OriginalMaxPositionEmbeddings = original,
            BetaFast = betaFast,
            BetaSlow = betaSlow,
            AttentionFactor = attentionFactor,
            Truncate = truncate,
        };
    }

    static IReadOnlyList<int> ReadEosTokenIds(string folder, FieldReader config)
    {
        string genPath = Path.Combine(folder, GenerationConfigFileName);
        if (File.Exists(genPath))
        {
            using JsonDocument gen = ParseJsonObject(genPath);
            var g = new FieldReader(gen.RootElement, genPath);
            // generation_config.json governs generation; a file without eos_token_id defers to config.json.
            if (g.TryGet("eos_token_id", out _))
                return g.IntOrIntList("eos_token_id");
        }
        return config.TryGet("eos_token_id", out _) ? config.IntOrIntList("eos_token_id") : Array.Empty<int>();
    }

    static JsonDocument ParseJsonObject(string path)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Length > MaxConfigBytes)
                throw new ModelLoadException($"'{path}' is {info.Length} bytes, too large for a config file", path);
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new ModelLoadException($"cannot read '{path}': {e.Message}", path, inner: e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ModelLoadException($"cannot read '{path}': {e.Message}", path, inner: e);
        }

        // JsonDocument checks the UTF-8 of strings only when they are read, and then throws InvalidOperationException.
        if (!Utf8.IsValid(bytes))
            throw new ModelLoadException($"'{path}' is not valid UTF-8", path);

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"'{path}' is not valid JSON: {e.Message}", path, inner: e);
        }
        JsonValueKind kind = doc.RootElement.ValueKind;
        if (kind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new ModelLoadException($"'{path}' must contain a JSON object, found {kind}", path);
        }
        return doc;
    }

    static string Fmt(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Typed access to one JSON object's fields, with errors that name the field and the file.</summary>
    readonly struct FieldReader(JsonElement obj, string filePath, string prefix = "")
    {
        public string FilePath => filePath;

        /// <summary>True when the field is present and not null (transformers treats null as "use the default").</summary>
        public bool TryGet(string name, out JsonElement value)
            => obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

        public ModelLoadException Missing(string name)
            => new($"required field '{prefix}{name}' is missing from '{filePath}'", filePath);

        public ModelLoadException Invalid(string name, string why)
            => new($"invalid field '{prefix}{name}' in '{filePath}': {why}", filePath);

        public ModelLoadException WrongType(string name, string expected, JsonElement actual)
        {
            string shown = actual.GetRawText();
            if (shown.Length > 60)
                shown = shown[..60] + "…";
            return new($"field '{prefix}{name}' in '{filePath}' must be {expected}, found {actual.ValueKind} {shown}", filePath);
        }

        public int RequiredPositiveInt(string name)
            => OptionalPositiveInt(name) ?? throw Missing(name);

        public int? OptionalPositiveInt(string name)
        {
            if (!TryGet(name, out JsonElement e))
                return null;
            int v = ToInt(name, e);
            if (v <= 0)
                throw Invalid(name, $"must be positive, got {v}");
            return v;
        }

        int ToInt(string name, JsonElement e)
        {
            if (e.ValueKind != JsonValueKind.Number)
                throw WrongType(name, "an integer", e);
            if (e.TryGetInt64(out long l))
            {
                if (l is < int.MinValue or > int.MaxValue)
                    throw Invalid(name, $"{l} is outside the 32-bit integer range");
                return (int)l;
            }
            // Python writes some integers as floats (40960.0); accept those, reject 1.5 and 1e300.
            double d = e.GetDouble();
            if (Math.Floor(d) != d)
                throw WrongType(name, "an integer", e);
            if (d is < int.MinValue or > int.MaxValue)
                throw Invalid(name, $"{e.GetRawText()} is outside the 32-bit integer range");
            return (int)d;
        }

        public double RequiredDouble(string name)
            => OptionalDouble(name) ?? throw Missing(name);

        public double? OptionalDouble(string name)
        {
            if (!TryGet(name, out JsonElement e))
                return null;
            if (e.ValueKind != JsonValueKind.Number)
                throw WrongType(name, "a number", e);
            double d = e.GetDouble();
            if (!double.IsFinite(d))
                throw Invalid(name, $"{e.GetRawText()} is not a finite number");
            return d;
        }

        public bool? OptionalBool(string name)
        {
            if (!TryGet(name, out JsonElement e))
                return null;
            return e.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw WrongType(name, "true or false", e),
            };
        }

        public string? OptionalString(string name)
        {
            if (!TryGet(name, out JsonElement e))
                return null;
            if (e.ValueKind != JsonValueKind.String)
                throw WrongType(name, "a string", e);
            return e.GetString();
        }

        public IReadOnlyList<int> IntOrIntList(string name)
        {
            TryGet(name, out JsonElement e);
            if (e.ValueKind == JsonValueKind.Number)
                return new[] { ToNonNegativeInt(name, e) };
            if (e.ValueKind != JsonValueKind.Array)
                throw WrongType(name, "an integer or an array of integers", e);
            var ids = new List<int>();
            foreach (JsonElement item in e.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Number)
                    throw WrongType(name, "an integer or an array of integers", e);
                int id = ToNonNegativeInt(name, item);
                if (!ids.Contains(id))
                    ids.Add(id);
            }
            return ids.AsReadOnly();
        }

        int ToNonNegativeInt(string name, JsonElement e)
        {
            int v = ToInt(name, e);
            if (v < 0)
                throw Invalid(name, $"token ids must be non-negative, got {v}");
            return v;
        }
    }
}
