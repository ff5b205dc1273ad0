using System.Text.Json;
using System.Text.RegularExpressions;

namespace Qwen3.Net.Hub;

/// <summary>Which files of a repository a model needs: the safetensors layout's files, or one GGUF file.</summary>
internal static class ModelFiles
{
    public const string Config = "config.json";
    public const string Tokenizer = "tokenizer.json";
    public const string Index = "model.safetensors.index.json";
    public const string SingleWeights = "model.safetensors";

    /// <summary>Needed when present; a model folder works without them.</summary>
    public static readonly string[] Optional = ["generation_config.json", "tokenizer_config.json"];

    private const long MaxIndexBytes = 64L << 20;

    /// <summary>True when the repository (or snapshot) is a GGUF one: a file was named, or it has GGUF files and no safetensors.</summary>
    public static bool IsGguf(IReadOnlyCollection<string> files, string? selector) =>
        selector is not null || (!files.Any(f => f.EndsWith(".safetensors", StringComparison.Ordinal)) && files.Any(IsGgufName));

    /// <summary>Picks the GGUF file the selector names: a file name, or a quantization such as Q4_K_M; or the only one.</summary>
    /// <exception cref="HubException">No file matches, or several do.</exception>
    public static string ChooseGguf(IReadOnlyCollection<string> files, string? selector, string modelId)
    {
        var ggufs = files.Where(IsGgufName).Order(StringComparer.Ordinal).ToList();
        List<string> matches;
        if (selector is null)
        {
            matches = ggufs;
        }
        else if (IsGgufName(selector))
        {
            matches = ggufs.Where(f => f == selector).ToList() is { Count: > 0 } exact
                ? exact
                : ggufs.Where(f => string.Equals(f, selector, StringComparison.OrdinalIgnoreCase)).ToList();
        }
        else
        {
            // The quantization is a whole word of the file name: Q4_K matches Model-Q4_K.gguf but not Model-Q4_K_M.gguf.
            var word = new Regex("(^|[-_.])" + Regex.Escape(selector) + "([-_.]|$)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            matches = ggufs.Where(f => word.IsMatch(Path.GetFileNameWithoutExtension(f))).ToList();
        }

        // Multimodal projector files sit beside the language model in some repositories; they are never the model.
        if (matches.Count > 1)
        {
            matches = matches.Where(f => !Path.GetFileName(f).StartsWith("mmproj", StringComparison.OrdinalIgnoreCase)).ToList();
        }

        if (matches.Count == 1)
        {
            return matches[0];
        }

        string available = ggufs.Count == 0 ? "it has no .gguf file" : "it has " + string.Join(", ", ggufs.Take(30));
        string asked = selector is null ? "several GGUF files and no file or quantization named" : $"'{selector}' matches {(matches.Count == 0 ? "no GGUF file" : "several: " + string.Join(", ", matches))}";
        throw new HubException(
            HubErrorKind.FileNotFound,
            $"Cannot pick the GGUF file of '{modelId}': {asked}; {available}. Name one as org/name:file.gguf or org/name:QUANT (for example :Q4_K_M).",
            modelId,
            selector);
    }

    /// <summary>The shard files an index names, in order, each once.</summary>
    /// <exception cref="HubException">The index is too large, malformed, or names an unsafe path.</exception>
    public static IReadOnlyList<string> ReadShards(string indexPath, string modelId)
    {
        try
        {
            var info = new FileInfo(indexPath);
            if (info.Length > MaxIndexBytes)
            {
                throw Invalid($"{Index} is {info.Length} bytes, more than the {MaxIndexBytes} an index can be");
            }

            using var stream = File.OpenRead(indexPath);
            using var document = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 16 });
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map)
                || map.ValueKind != JsonValueKind.Object)
            {
                throw Invalid($"{Index} has no weight_map object");
            }

            var shards = new List<string>();
            foreach (var entry in map.EnumerateObject())
            {
                string file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : throw Invalid($"{Index}: weight_map[\"{entry.Name}\"] is not a file name");
                if (!HubModelId.IsSafeRelativePath(file))
                {
                    throw Invalid($"{Index}: weight_map[\"{entry.Name}\"] names '{file}', not a plain relative path");
                }

                if (!shards.Contains(file))
                {
                    shards.Add(file);
                }
            }

            return shards.Count > 0 ? shards : throw Invalid($"{Index}: weight_map is empty");
        }
        catch (JsonException e)
        {
            throw Invalid($"{Index} is not valid JSON ({e.Message})", e);
        }

        HubException Invalid(string message, Exception? inner = null) =>
            new(HubErrorKind.InvalidResponse, $"'{modelId}': {message} ({indexPath}).", modelId, Index, inner: inner);
    }

    /// <summary>
    /// The model's local path when a cached snapshot holds everything it needs (the folder, or the GGUF file picked);
    /// null when something is missing.
    /// </summary>
    public static string? SelectCached(string snapshot, string? selector, string modelId)
    {
        if (!Directory.Exists(snapshot))
        {
            return null;
        }

        var files = Directory.EnumerateFiles(snapshot, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(snapshot, f).Replace('\\', '/'))
            .ToList();
        if (IsGguf(files, selector))
        {
            try
            {
                return Path.Combine(snapshot, ChooseGguf(files, selector, modelId));
            }
            catch (HubException)
            {
                // The cache may hold other quantizations than the one asked for: the hub has the rest.
                return null;
            }
        }

        if (!files.Contains(Config) || !files.Contains(Tokenizer))
        {
            return null;
        }

        if (files.Contains(Index))
        {
            return ReadShards(Path.Combine(snapshot, Index), modelId).All(files.Contains) ? snapshot : null;
        }

        return files.Contains(SingleWeights) ? snapshot : null;
    }

    private static bool IsGgufName(string file) => file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);
}
