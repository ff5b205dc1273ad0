namespace Qwen3.Net.Benchmarks;

/// <summary>
/// Locates the repository root from the executable, so defaults (the tokenizer fixture, <c>generated-models/</c>)
/// work whatever the current directory is.
/// </summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string TinyQwen3Fixture => Path.Combine(Root, "tests", "fixtures", "tiny-qwen3");

    public static string GeneratedModels => Path.Combine(Root, "generated-models");

    private static string FindRoot()
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Qwen3.Net.sln")))
                {
                    return dir.FullName;
                }
            }
        }
        throw new DirectoryNotFoundException("Cannot find the repository root (no Qwen3.Net.sln above the executable or the current directory).");
    }
}
