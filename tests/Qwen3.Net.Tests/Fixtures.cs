namespace Qwen3.Net.Tests;

/// <summary>Locates tests/fixtures by walking up from the test binaries to the repository root.</summary>
internal static class Fixtures
{
    static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The folder that contains <c>tests/fixtures</c> (the repository root).</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>tests/fixtures/tiny-qwen3: a random-weight Qwen3 model with golden outputs.</summary>
    public static string TinyModelFolder => Path.Combine(Root, "tests", "fixtures", "tiny-qwen3");

    /// <summary>tests/fixtures/qwen3-tokenizer: golden tokenization and chat-template cases.</summary>
    public static string TokenizerGoldenFolder => Path.Combine(Root, "tests", "fixtures", "qwen3-tokenizer");

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"no folder containing tests/fixtures above '{AppContext.BaseDirectory}'");
    }
}
