namespace Qwen3.Net.Tests;

/// <summary>Locates the checked-in test fixtures from wherever the test assembly runs.</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    /// <summary>The repository's <c>tests/fixtures</c> folder.</summary>
    public static string Root => RootPath.Value;

    /// <summary>The tiny random-weight Qwen3 model folder.</summary>
    public static string TinyModelFolder => Path.Combine(Root, "tiny-qwen3");

    /// <summary>The Qwen3 tokenizer golden cases.</summary>
    public static string TokenizerGoldenFolder => Path.Combine(Root, "qwen3-tokenizer");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"No tests/fixtures folder above {AppContext.BaseDirectory}.");
    }
}
