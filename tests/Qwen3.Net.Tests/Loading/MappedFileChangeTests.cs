using Qwen3.Net.ScriptedModel;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Tests.Loading;

/// <summary>A model file that changes under its memory map (docs/architecture.md, "Mapped model files").</summary>
public sealed unsafe class MappedFileChangeTests : IDisposable
{
    const string Why = "Windows refuses to truncate or rename over a file that is open and mapped";

    readonly TempFolder _tmp = new();

    public void Dispose() => _tmp.Dispose();

    // FileShare.ReadWrite asks only for the shared advisory lock the loader's own handle holds, so Linux lets it in,
    // as it lets in every writer that is not .NET asking for exclusive access.
    static void Resize(string path, long length)
    {
        using var writer = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        writer.SetLength(length);
    }

    static string WriteModel(string path, float first) =>
        new SafetensorsBuilder().AddF32("a", [4], first, 2, 3, 4).AddF32("b", [2], 5, 6).WriteTo(path);

    [LinuxTheory(Why)]
    [InlineData("emptied")]
    [InlineData("cut inside the data")]
    [InlineData("grown")]
    public void FileChangedInSizeAfterMappingIsRefusedBeforeItIsRead(string change)
    {
        string path = WriteModel(_tmp.File("m.safetensors"), 1);
        long length = new FileInfo(path).Length;
        using SafetensorsFile file = SafetensorsFile.Map(path);

        // Emptied: reading even the header through the map would now kill the process with SIGBUS.
        long now = change switch
        {
            "emptied" => 0,
            "cut inside the data" => length - 4,
            _ => length + 4096,
        };
        Resize(path, now);

        var e = file.Invoking(f => f.Validate()).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(path);
        e.Message.Should().Contain(path).And.Contain($"{length} bytes were mapped, it now has {now}");
    }

    [LinuxFact(Why)]
    public void ShardCutShortAfterLoadingIsReportedByName()
    {
        new SafetensorsBuilder().AddF32("a", [2], 1, 2).WriteTo(_tmp.File("s1.safetensors"));
        string second = new SafetensorsBuilder().AddF32("b", [2], 3, 4).WriteTo(_tmp.File("s2.safetensors"));
        _tmp.Write(TensorStore.IndexFileName, """{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}""");
        using TensorStore store = TensorStore.Open(_tmp.Path);
        store.EnsureUnchanged();

        Resize(second, 8);

        var e = store.Invoking(s => s.EnsureUnchanged()).Should().Throw<ModelLoadException>().Which;
        e.FilePath.Should().Be(second);
        e.Message.Should().Contain(second).And.Contain("changed size");
    }

    [LinuxFact(Why)]
    public void FileRenamedOverTheMappedOneLeavesTheLoadedTensorsAsTheyWere()
    {
        string path = WriteModel(_tmp.File(TensorStore.SingleFileName), 1);
        using TensorStore store = TensorStore.Open(_tmp.Path);

        string replacement = new SafetensorsBuilder().AddF32("a", [8], 9, 9, 9, 9, 9, 9, 9, 9).WriteTo(_tmp.File("new.tmp"));
        File.Move(replacement, path, overwrite: true);

        // The map and the handle keep the old file alive, so its length still matches and its values are unchanged.
        store.EnsureUnchanged();
        new ReadOnlySpan<float>(store.Get("a", 4).Data, 4).ToArray().Should().Equal(1, 2, 3, 4);
        new ReadOnlySpan<float>(store.Get("b", 2).Data, 2).ToArray().Should().Equal(5, 6);
        using TensorStore reopened = TensorStore.Open(_tmp.Path);
        reopened.Get("a").Shape.Should().Equal(8);
    }
}
