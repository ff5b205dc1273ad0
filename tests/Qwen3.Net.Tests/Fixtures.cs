namespace Qwen3.Net.Tests;

/// <summary>Locates the repository's test fixtures independently of the test runner's working directory.</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No folder containing tests/fixtures above {AppContext.BaseDirectory}.");
    });

    public static string Root => RootPath.Value;

    public static string TinyModelFolder => Path.Combine(Root, "tests", "fixtures", "tiny-qwen3");

    public static string TokenizerGoldenFolder => Path.Combine(Root, "tests", "fixtures", "qwen3-tokenizer");
}
