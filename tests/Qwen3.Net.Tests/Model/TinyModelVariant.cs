using System.Text.Json.Nodes;
using Qwen3.Net.Loading;
using Qwen3.Net.ScriptedModel;
using Qwen3.Net.Tests.Loading;

namespace Qwen3.Net.Tests.Model;

/// <summary>
/// Rewrites the tiny fixture into other layouts a real checkpoint may have (other dtypes, shards, untied head, edited
/// config or tensors) in a temporary folder, so the loader and forward pass are tested beyond the fixture's own shape.
/// </summary>
internal sealed class TinyModelVariant : IDisposable
{
    private readonly TempFolder _folder = new();

    public string Path => _folder.Path;

    /// <summary>Writes the variant. <paramref name="tensors"/> maps each source tensor to zero or more (name, dtype, values) outputs.</summary>
    public static TinyModelVariant Create(
        Func<string, float[], int[], IEnumerable<(string Name, string DType, int[] Shape, float[] Values)>>? tensors = null,
        Action<JsonObject>? editConfig = null,
        int shards = 1)
    {
        var variant = new TinyModelVariant();
        string source = Fixtures.TinyModelFolder;
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            File.Copy(System.IO.Path.Combine(source, file), variant._folder.File(file));
        }

        var config = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(source, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        variant._folder.Write("config.json", config.ToJsonString());

        tensors ??= (name, values, shape) => [(name, "BF16", shape, values)];
        var outputs = new List<(string Name, string DType, int[] Shape, float[] Values)>();
        using (var store = TensorStore.Open(source))
        {
            foreach (string name in store.TensorNames.OrderBy(n => n, StringComparer.Ordinal))
            {
                var view = store.Get(name);
                var values = new float[view.ElementCount];
                int columns = view.Shape.Length == 1 ? view.Shape[0] : view.Shape[1];
                var matrix = Qwen3.Net.Kernels.WeightMatrix.From(view);
                for (int r = 0; r < matrix.Rows; r++)
                {
                    matrix.ReadRow(r, values.AsSpan(r * columns, columns));
                }

                outputs.AddRange(tensors(name, values, view.Shape));
            }
        }

        // Spread tensors over shards round-robin, so a shard holds tensors of every layer, as real checkpoints can.
        var builders = Enumerable.Range(0, shards).Select(_ => new SafetensorsBuilder()).ToArray();
        var weightMap = new JsonObject();
        for (int i = 0; i < outputs.Count; i++)
        {
            var (name, dtype, shape, values) = outputs[i];
            int shard = i % shards;
            _ = dtype switch
            {
                "F32" => builders[shard].AddF32(name, shape, values),
                "F16" => builders[shard].AddF16(name, shape, values),
                _ => builders[shard].AddBF16(name, shape, values),
            };
            weightMap[name] = ShardName(shard, shards);
        }

        if (shards == 1)
        {
            builders[0].WriteTo(variant._folder.File("model.safetensors"));
        }
        else
        {
            for (int s = 0; s < shards; s++)
            {
                builders[s].WriteTo(variant._folder.File(ShardName(s, shards)));
            }

            variant._folder.Write("model.safetensors.index.json", new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = weightMap }.ToJsonString());
        }

        return variant;
    }

    public void Dispose() => _folder.Dispose();

    private static string ShardName(int shard, int shards) => $"model-{shard + 1:D5}-of-{shards:D5}.safetensors";
}
