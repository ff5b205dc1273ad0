namespace Qwen3.Net.Tests.Tokenization;

/// <summary>One tokenizer for all tests, because loading the 11 MB tokenizer.json per test would dominate the run.</summary>
internal static class SharedTokenizer
{
    private static readonly Lazy<Qwen3Tokenizer> Loaded =
        new(() => Qwen3Tokenizer.FromFile(Path.Combine(Fixtures.TinyModelFolder, "tokenizer.json")));

    public static Qwen3Tokenizer Instance => Loaded.Value;
}
