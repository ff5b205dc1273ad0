using Qwen3.Net.Fuzz;

namespace Qwen3.Net.Tests.Fuzzing;

/// <summary>Holds one <see cref="FuzzTargets"/> for all replays: loading the real tokenizer once keeps the replay fast.</summary>
public sealed class FuzzTargetsFixture : IDisposable
{
    internal FuzzTargets Targets { get; } = new(
        Fixtures.TinyModelFolder, Path.Combine(Path.GetTempPath(), $"qwen3net-corpus-replay-{Guid.NewGuid():N}"));

    public void Dispose() => Targets.Dispose();
}

/// <summary>
/// Runs every file of fuzz/corpus/TARGET/ (the seeds and every input the fuzzer ever found a bug with) through the same
/// target code the fuzzer runs: a parser that throws anything but its documented exceptions, or breaks an invariant
/// the target checks, fails here.
/// </summary>
public sealed class CorpusReplayTests(FuzzTargetsFixture fixture) : IClassFixture<FuzzTargetsFixture>
{
    static string CorpusRoot => Path.Combine(Fixtures.Root, "fuzz", "corpus");

    public static TheoryData<string, string> CorpusFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (string target in FuzzTargets.Names)
        {
            string folder = Path.Combine(CorpusRoot, target);
            if (!Directory.Exists(folder))
                continue;
            foreach (string file in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
                data.Add(target, Path.GetFileName(file));
        }

        return data;
    }

    [Fact]
    public void EveryTargetHasSeeds()
    {
        foreach (string target in FuzzTargets.Names)
            Directory.GetFiles(Path.Combine(CorpusRoot, target)).Should().NotBeEmpty($"fuzz/corpus/{target} holds the seeds of that target");
        Directory.GetDirectories(CorpusRoot).Select(Path.GetFileName).Should().BeSubsetOf(FuzzTargets.Names, "every corpus folder is a target");
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public void InputFailsOnlyAsDocumented(string target, string file)
    {
        byte[] input = File.ReadAllBytes(Path.Combine(CorpusRoot, target, file));
        fixture.Targets.Invoking(t => t.Run(target, input)).Should().NotThrow();
    }
}
