using System.Runtime.ExceptionServices;
using Qwen3.Net.Kernels;
using Qwen3.Net.Kernels.Quantized;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// The quantizer behind <see cref="Qwen3Quantizer"/>: the metadata of <see cref="Qwen3GgufExport"/>, each tensor's type
/// chosen as llama.cpp's <c>llama_tensor_get_type</c> chooses it for Qwen3, and the rows quantized by
/// <see cref="WeightQuantizer"/> in bounded chunks, streamed to the file one tensor after another.
/// </summary>
internal static class Qwen3GgufQuantizer
{
    // Output bytes quantized (in parallel) before they are written: bounds the memory whatever the tensor's size.
    private const int ChunkBytes = 4 << 20;

    /// <summary>llama.cpp's <c>llama_ftype</c> number of each file type (<c>general.file_type</c>).</summary>
    public static uint FileType(QuantizationType type) => type switch
    {
        QuantizationType.Q8_0 => 7,
        QuantizationType.Q4_K_M => 15,
        QuantizationType.Q5_K_M => 17,
        QuantizationType.Q6_K => 18,
        QuantizationType.Q5_0 => 8,
        QuantizationType.Q3_K_M => 12,
        QuantizationType.Q2_K => 10,
        QuantizationType.Q3_K_S => 11,
        QuantizationType.Q3_K_L => 13,
        QuantizationType.Q4_K_S => 14,
        QuantizationType.Q5_K_S => 16,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <inheritdoc cref="Qwen3Quantizer.QuantizeAsync"/>
    public static void Quantize(string modelFolder, string outputPath, QuantizationType type,
        IProgress<QuantizationProgress>? progress, CancellationToken cancellationToken)
    {
        Qwen3Config config = Qwen3Config.Load(modelFolder);
        using TensorStore store = TensorStore.Open(modelFolder);
        _ = Model.Qwen3Weights.Bind(store, config);

        List<string> names = InLlamaCppOrder(store.TensorNames);
        bool tiedEmbeddings = !names.Contains("lm_head.weight");
        string modelName = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder)));
        var gguf = new GgufWriter();
        Qwen3GgufExport.AddMetadata(gguf, config, modelFolder, modelName, GgmlType.BF16);

        // llama-quantize copies the source's keys and then sets these two, which moves them last: so do we, for its bytes.
        gguf.Remove("general.quantization_version");
        gguf.Remove("general.file_type");
        gguf.AddUInt32("general.quantization_version", Qwen3GgufExport.QuantizationVersion);
        gguf.AddUInt32("general.file_type", FileType(type));

        int done = 0;
        foreach (string name in names)
        {
            TensorView view = store.Get(name);
            string ggufName = GgufTensorNames.ToGguf(name);
            long[] dims = view.Shape.Reverse().Select(d => (long)d).ToArray();
            GgmlType target = TensorType(type, ggufName, view.Shape, config.NumHiddenLayers, config.QueryGroupSize, tiedEmbeddings);
            long rows = view.Shape.Length == 1 ? 1 : view.Shape[0];
            long bytes = rows * GgmlTypes.RowBytes(target, view.Shape[^1]);
            gguf.AddTensor(ggufName, dims, target, bytes, stream =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (target == GgmlType.F32)
                {
                    Qwen3GgufExport.WriteWidened(stream, view);
                }
                else
                {
                    WriteQuantized(stream, WeightMatrix.From(view), target, store.FileOf(name), ggufName, cancellationToken);
                }

                progress?.Report(new QuantizationProgress(++done, names.Count, ggufName, target.ToString()));
            });
        }

        // Written beside the target and moved over it only when complete, so a failure leaves no half file behind.
        string partial = outputPath + ".partial";
        try
        {
            gguf.WriteTo(partial);
            File.Move(partial, outputPath, overwrite: true);
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }

    /// <summary>
    /// llama.cpp's type for one Qwen3 tensor (llama-quant.cpp, no importance matrix): 1-D norms F32; the output head
    /// (the embedding when tied) Q6_K, or Q8_0 in Q8_0 files and when its rows do not fill 256-value blocks; the layers'
    /// attn_v, ffn_down and attn_output by <see cref="LayerType"/>; the rest the file's base type. Rows that do not fill
    /// the chosen type's 256-value blocks fall back as llama.cpp's do: Q2_K and Q3_K to Q4_0, Q4_K to Q5_0, Q6_K to
    /// Q8_0, and Q5_K to Q8_0 (llama.cpp takes Q5_1, which Qwen3.Net does not read; no released Qwen3 has such rows);
    /// to F32 when not even 32-value blocks fit.
    /// </summary>
    public static GgmlType TensorType(QuantizationType type, string ggufName, int[] shape, int layers, int queryGroupSize, bool tiedEmbeddings)
    {
        if (shape.Length < 2)
        {
            return GgmlType.F32;
        }

        GgmlType baseType = type switch
        {
            QuantizationType.Q8_0 => GgmlType.Q8_0,
            QuantizationType.Q5_0 => GgmlType.Q5_0,
            QuantizationType.Q6_K => GgmlType.Q6_K,
            QuantizationType.Q5_K_M or QuantizationType.Q5_K_S => GgmlType.Q5_K,
            QuantizationType.Q4_K_M or QuantizationType.Q4_K_S => GgmlType.Q4_K,
            QuantizationType.Q3_K_M or QuantizationType.Q3_K_S or QuantizationType.Q3_K_L => GgmlType.Q3_K,
            QuantizationType.Q2_K => GgmlType.Q2_K,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };
        int columns = shape[^1];
        GgmlType chosen = ggufName == "output.weight" || (tiedEmbeddings && ggufName == "token_embd.weight")
            ? baseType == GgmlType.Q8_0 || columns % GgmlTypes.BlockSize(baseType) != 0 ? GgmlType.Q8_0 : GgmlType.Q6_K
            : GgufTensorNames.LayerOf(ggufName) is int layer ? LayerType(type, baseType, ggufName, layer, layers, queryGroupSize)
            : baseType;

        return columns % GgmlTypes.BlockSize(chosen) == 0 ? chosen
            : columns % GgmlTypes.LegacyBlock != 0 ? GgmlType.F32
            : chosen == GgmlType.Q4_K ? GgmlType.Q5_0
            : chosen is GgmlType.Q3_K or GgmlType.Q2_K ? GgmlType.Q4_0
            : GgmlType.Q8_0;
    }

    /// <summary>
    /// llama.cpp's rules for a layer's matrix in each mix (llama_tensor_get_type_impl, a dense non-Falcon model): its
    /// counters of attn_v and ffn_down tensors are the layer numbers here, as Qwen3 has one of each per layer.
    /// </summary>
    private static GgmlType LayerType(QuantizationType type, GgmlType baseType, string ggufName, int layer, int layers, int queryGroupSize)
    {
        bool attnV = ggufName.EndsWith(".attn_v.weight", StringComparison.Ordinal);
        bool down = ggufName.EndsWith(".ffn_down.weight", StringComparison.Ordinal);
        bool attnOutput = ggufName.EndsWith(".attn_output.weight", StringComparison.Ordinal);
        return type switch
        {
            QuantizationType.Q4_K_M or QuantizationType.Q5_K_M when (attnV || down) && UseMoreBits(layer, layers) => GgmlType.Q6_K,
            QuantizationType.Q4_K_S when attnV && layer < 4 => GgmlType.Q5_K,
            QuantizationType.Q4_K_S when down && layer < layers / 8 => GgmlType.Q5_K,
            QuantizationType.Q3_K_M when attnV => layer < 2 ? GgmlType.Q5_K : GgmlType.Q4_K,
            QuantizationType.Q3_K_M when down => layer < layers / 16 ? GgmlType.Q5_K : GgmlType.Q4_K,
            QuantizationType.Q3_K_M when attnOutput => GgmlType.Q4_K,
            QuantizationType.Q3_K_L when attnV || down || attnOutput => GgmlType.Q5_K,
            QuantizationType.Q2_K when attnV => queryGroupSize >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K,
            QuantizationType.Q2_K when down || attnOutput => GgmlType.Q3_K,
            _ => baseType,
        };
    }

    /// <summary>
    /// Checkpoint names in the order llama.cpp's loader sorts GGUF names (weight_name_comparer) and so llama-quantize
    /// writes them: the global tensors first, then layer by layer, by name within each.
    /// </summary>
    public static List<string> InLlamaCppOrder(IEnumerable<string> checkpointNames) => checkpointNames
        .Select(name => (Name: name, Gguf: GgufTensorNames.ToGguf(name)))
        .OrderBy(t => GgufTensorNames.LayerOf(t.Gguf) ?? -1)
        .ThenBy(t => t.Gguf, StringComparer.Ordinal)
        .Select(t => t.Name)
        .ToList();

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers, and every third in between.</summary>
    public static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    private static void WriteQuantized(Stream stream, WeightMatrix matrix, GgmlType type, string file, string tensor, CancellationToken cancellationToken)
    {
        int rowBytes = (int)GgmlTypes.RowBytes(type, matrix.Columns);
        int rowsPerChunk = Math.Clamp(ChunkBytes / rowBytes, 1, matrix.Rows);
        byte[] chunk = new byte[rowsPerChunk * rowBytes];
        var options = new ParallelOptions { CancellationToken = cancellationToken };
        for (int start = 0; start < matrix.Rows; start += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, matrix.Rows - start);
            int first = start;
            try
            {
                Parallel.For(0, count, options, () => new float[matrix.Columns], (i, _, row) =>
                {
                    matrix.ReadRow(first + i, row);
                    int bad = IndexOfNonFinite(row);
                    if (bad >= 0)
                    {
                        throw new ModelLoadException(
                            $"Tensor '{tensor}' in {file} holds {row[bad]} at row {first + i}, column {bad}: a NaN or infinite weight cannot be quantized.",
                            file, tensor);
                    }

                    WeightQuantizer.Quantize(type, row, chunk.AsSpan(i * rowBytes, rowBytes));
                    return row;
                }, _ => { });
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }

            stream.Write(chunk, 0, count * rowBytes);
        }
    }

    private static int IndexOfNonFinite(float[] row)
    {
        for (int i = 0; i < row.Length; i++)
        {
            if (!float.IsFinite(row[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
