using System.Text.Json;

namespace Qwen3.Net.Tests.Model;

/// <summary>The tiny Qwen3 fixture loaded once per test class, with its golden outputs.</summary>
public class TinyModel : IDisposable
{
    public TinyModel()
        : this(new Qwen3ModelOptions { ThreadCount = 2 })
    {
    }

    protected TinyModel(Qwen3ModelOptions options)
    {
        Model = Qwen3Model.Load(Fixtures.TinyModelFolder, options);
        Cases = ReadCases();
    }

    public static string GoldenFolder => Path.Combine(Fixtures.TinyModelFolder, "golden");

    public Qwen3Model Model { get; }

    public IReadOnlyDictionary<string, GoldenCase> Cases { get; }

    /// <summary>The golden cases by name, read without loading the model.</summary>
    public static IReadOnlyDictionary<string, GoldenCase> ReadCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(GoldenFolder, "golden.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(GoldenCase.From).ToDictionary(c => c.Name);
    }

    public static float[] ReadFloats(string file)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(GoldenFolder, file));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public void Dispose()
    {
        Model.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The tiny fixture loaded with <see cref="Qwen3ModelOptions.PackedWeights"/>: the same goldens must hold.</summary>
public sealed class TinyPackedModel() : TinyModel(new Qwen3ModelOptions { ThreadCount = 2, PackedWeights = true });

public sealed record GoldenCase(
    string Name, int[] PromptIds, int[] LogitPositions, string LogitsFile, int[] GreedyNewIds,
    string DecodeLastLogitsFile, int DecodeLastPosition, int DecodeLastInputId)
{
    public static GoldenCase From(JsonElement e) => new(
        e.GetProperty("name").GetString()!,
        e.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
        e.GetProperty("logit_positions").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
        e.GetProperty("logits_file").GetString()!,
        e.GetProperty("greedy_new_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
        e.GetProperty("decode_last_logits_file").GetString()!,
        e.GetProperty("decode_last_position").GetInt32(),
        e.GetProperty("decode_last_input_id").GetInt32());

    public override string ToString() => Name;
}
