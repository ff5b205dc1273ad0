using System.Text.Json;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// The <c>tokenizer.ggml.*</c> arrays for a byte-level BPE (gpt2-style) tokenizer, built from <c>tokenizer.json</c>
/// the way llama.cpp's <c>convert_hf_to_gguf.py</c> builds them, so llama.cpp tokenizes exactly as the original.
/// </summary>
internal sealed class GgufVocabulary
{
    // Values of gguf-py's TokenType.
    public const int Normal = 1;
    public const int Control = 3;
    public const int UserDefined = 4;
    public const int Unused = 5;

    public required IReadOnlyList<string> Tokens { get; init; }
    public required IReadOnlyList<int> TokenTypes { get; init; }
    public required IReadOnlyList<string> Merges { get; init; }

    /// <param name="tokenizerJsonPath">The <c>tokenizer.json</c>, already loaded once by <see cref="Qwen3Tokenizer.FromFile"/>.</param>
    /// <param name="vocabSize">
    /// The model's <c>vocab_size</c>; the embedding has more rows than the tokenizer has tokens, and every row needs
    /// a token, so ids the tokenizer never produces become <c>[PAD{id}]</c> entries of type unused.
    /// </param>
    public static GgufVocabulary FromTokenizerJson(string tokenizerJsonPath, int vocabSize)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath));
        var model = doc.RootElement.GetProperty("model");
        if (model.GetProperty("type").GetString() != "BPE")
        {
            throw new InvalidDataException($"{tokenizerJsonPath}: only BPE tokenizers are supported.");
        }

        var tokens = new string?[vocabSize];
        var types = new int[vocabSize];
        foreach (var entry in model.GetProperty("vocab").EnumerateObject())
        {
            int id = entry.Value.GetInt32();
            if (id < vocabSize)
            {
                tokens[id] = entry.Name;
                types[id] = Normal;
            }
        }
        foreach (var added in doc.RootElement.GetProperty("added_tokens").EnumerateArray())
        {
            int id = added.GetProperty("id").GetInt32();
            string content = added.GetProperty("content").GetString()!;
            if (id >= vocabSize)
            {
                continue;
            }
            tokens[id] = content;
            // The converter also promotes added tokens that merely look like control tokens (<|fim_prefix|> etc.
            // are not marked special in Qwen's tokenizer.json, yet are control tokens to llama.cpp).
            types[id] = added.GetProperty("special").GetBoolean() || LooksSpecial(content) ? Control : UserDefined;
        }
        for (int id = 0; id < vocabSize; id++)
        {
            if (tokens[id] is null)
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = Unused;
            }
        }

        return new GgufVocabulary
        {
            Tokens = tokens!,
            TokenTypes = types,
            Merges = ReadMerges(model.GetProperty("merges")),
        };
    }

    private static bool LooksSpecial(string token) =>
        token is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (token.StartsWith("<|", StringComparison.Ordinal) && token.EndsWith("|>", StringComparison.Ordinal))
        || (token.StartsWith("<｜", StringComparison.Ordinal) && token.EndsWith("｜>", StringComparison.Ordinal))
        || (token.StartsWith("<unused", StringComparison.Ordinal) && token.EndsWith('>'));

    /// <summary>
    /// GGUF stores each merge as "left right". Newer tokenizer.json files store pairs as two-element arrays so that
    /// a part may contain a space; such spaces are written as U+0120, the byte-level alphabet's space, as gguf-py does.
    /// </summary>
    private static List<string> ReadMerges(JsonElement merges)
    {
        var result = new List<string>(merges.GetArrayLength());
        foreach (var merge in merges.EnumerateArray())
        {
            if (merge.ValueKind == JsonValueKind.String)
            {
                result.Add(merge.GetString()!);
                continue;
            }
            string left = merge[0].GetString()!.Replace(' ', '\u0120');
            string right = merge[1].GetString()!.Replace(' ', '\u0120');
            result.Add(left + " " + right);
        }
        return result;
    }
}
