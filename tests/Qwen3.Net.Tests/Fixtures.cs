namespace Qwen3.Net.Tests;

/// <summary>Finds the repository's test fixtures from the test binaries, so tests run from any working directory.</summary>
internal static class Fixtures
{
    public static string Root { get; } = FindRoot();

    public static string TinyModelFolder => Path.Combine(Root, "tests", "fixtures", "tiny-qwen3");

    public static string TokenizerGoldenFolder => Path.Combine(Root, "tests", "fixtures", "qwen3-tokenizer");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No tests/fixtures folder above {AppContext.BaseDirectory}.");
    }
}
