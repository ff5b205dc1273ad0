using System.Text.Json;

namespace Qwen3.Net.Tests.Tokenization;

/// <summary>One line of golden-tokenization.jsonl, produced by Hugging Face tokenizers.</summary>
internal sealed record GoldenTokenization(string Text, int[] Ids, string Decoded, string DecodedSkipSpecial, string Category)
{
    private static readonly Lazy<GoldenTokenization[]> All = new(Load);

    public static IReadOnlyList<GoldenTokenization> Cases => All.Value;

    /// <summary>Case numbers (1-based line numbers) with their category, so each theory row names its case.</summary>
    public static TheoryData<int, string> CaseNumbers()
    {
        var data = new TheoryData<int, string>();
        for (int i = 0; i < Cases.Count; i++)
        {
            data.Add(i + 1, Cases[i].Category);
        }

        return data;
    }

    private static GoldenTokenization[] Load()
    {
        string path = Path.Combine(Fixtures.TokenizerGoldenFolder, "golden-tokenization.jsonl");
        return File.ReadLines(path)
            .Where(line => line.Length > 0)
            .Select(line =>
            {
                using JsonDocument doc = JsonDocument.Parse(line);
                JsonElement e = doc.RootElement;
                return new GoldenTokenization(
                    e.GetProperty("text").GetString()!,
                    e.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray(),
                    e.GetProperty("decoded").GetString()!,
                    e.GetProperty("decoded_skip_special").GetString()!,
                    e.GetProperty("category").GetString()!);
            })
            .ToArray();
    }
}
