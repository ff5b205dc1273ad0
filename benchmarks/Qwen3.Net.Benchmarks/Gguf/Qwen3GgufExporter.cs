using Qwen3.Net.Benchmarks.Checkpoints;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Benchmarks.Gguf;

/// <summary>
/// Writes generated Qwen3 weights as the GGUF that llama.cpp's <c>convert_hf_to_gguf.py</c> would produce, with the
/// library's writer and metadata (<see cref="Qwen3GgufExport"/>), streaming the weights instead of mapping a checkpoint.
/// </summary>
internal static class Qwen3GgufExporter
{
    /// <param name="tokenizerFolder">Holds <c>tokenizer.json</c> (and optionally <c>tokenizer_config.json</c>).</param>
    /// <param name="matrixType">
    /// BF16 for benchmarking; F32 (the same values widened) lets llama.cpp compute without rounding activations to
    /// BF16, which is how the layout is checked against float64 golden logits to 1e-3.
    /// </param>
    public static void Export(string path, ModelShape shape, IWeightSource weights, string tokenizerFolder, string modelName,
        GgmlType matrixType = GgmlType.BF16)
    {
        if (matrixType is not (GgmlType.BF16 or GgmlType.F32))
        {
            throw new ArgumentOutOfRangeException(nameof(matrixType), matrixType, "Only BF16 and F32 are written.");
        }
        var gguf = new GgufWriter();
        Qwen3GgufExport.AddMetadata(gguf, ToConfig(shape), tokenizerFolder, modelName, matrixType);

        var data = new ChunkedTensorWriter(weights);
        foreach (var tensor in CheckpointTensor.EnumerateAll(shape))
        {
            long[] dims = tensor.Shape.Reverse().ToArray();
            if (tensor.Role == TensorRole.Norm || matrixType == GgmlType.F32)
            {
                gguf.AddTensor(tensor.GgufName, dims, GgmlType.F32, ChunkedTensorWriter.F32ByteCount(tensor),
                    stream => data.WriteF32(stream, tensor));
            }
            else
            {
                gguf.AddTensor(tensor.GgufName, dims, GgmlType.BF16, ChunkedTensorWriter.Bf16ByteCount(tensor),
                    stream => data.WriteBf16(stream, tensor));
            }
        }
        gguf.WriteTo(path);
    }

    private static Qwen3Config ToConfig(ModelShape shape) => new()
    {
        Architecture = "Qwen3ForCausalLM",
        HiddenSize = shape.HiddenSize,
        IntermediateSize = shape.IntermediateSize,
        NumHiddenLayers = shape.NumLayers,
        NumAttentionHeads = shape.NumHeads,
        NumKeyValueHeads = shape.NumKvHeads,
        HeadDim = shape.HeadDim,
        VocabSize = shape.VocabSize,
        TieWordEmbeddings = shape.TieWordEmbeddings,
        RopeTheta = shape.RopeTheta,
        RmsNormEps = shape.RmsNormEps,
        MaxPositionEmbeddings = shape.MaxPositionEmbeddings,
        EosTokenIds = [],
    };
}
