using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Loading.Gguf;

/// <summary>The tiny-qwen3 fixture converted to a BF16 GGUF (as llama.cpp's converter writes it) and loaded from it, once per test class.</summary>
public sealed class TinyGgufModel : IDisposable
{
    private readonly TempFolder _temp = new();

    public TinyGgufModel()
    {
        Path = _temp.File("tiny-qwen3-bf16.gguf");
        Qwen3GgufExport.ConvertFolder(Fixtures.TinyModelFolder, Path, "tiny-qwen3");
        Model = Qwen3Model.Load(Path, new Qwen3ModelOptions { ThreadCount = 2 });
    }

    public string Path { get; }

    public Qwen3Model Model { get; }

    /// <summary>Writes the fixture as GGUF to a new file of <paramref name="temp"/>, changed by <paramref name="edit"/>.</summary>
    internal static string Write(TempFolder temp, Action<GgufWriter>? edit = null)
    {
        string path = temp.File($"edited-{Guid.NewGuid():N}.gguf");
        Qwen3GgufExport.ConvertFolder(Fixtures.TinyModelFolder, path, "tiny-qwen3", edit: edit);
        return path;
    }

    public void Dispose()
    {
        Model.Dispose();
        _temp.Dispose();
    }
}
