using System.Text.Json;
using Qwen3.Net.Benchmarks.Checkpoints;

namespace Qwen3.Net.Benchmarks.Gguf;

/// <summary>
/// Writes a Qwen3 checkpoint as the BF16 GGUF that llama.cpp's <c>convert_hf_to_gguf.py --outtype bf16</c> would
/// produce: architecture <c>qwen3</c>, its hyperparameter keys, the full tokenizer, matrices in BF16 and the 1-D norm
/// weights in F32 (the converter keeps those in F32 whatever the output type).
/// </summary>
public static class Qwen3GgufExporter
{
    private const uint FileTypeAllF32 = 0;        // llama_ftype LLAMA_FTYPE_ALL_F32
    private const uint FileTypeMostlyBf16 = 32;   // llama_ftype LLAMA_FTYPE_MOSTLY_BF16
    private const uint QuantizationVersion = 2;   // GGML_QNT_VERSION, written by the converter unconditionally
    private const uint EndOfTextId = 151643;      // <|endoftext|>
    private const uint ImEndId = 151645;          // <|im_end|>

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
        gguf.AddString("general.architecture", "qwen3");
        gguf.AddString("general.type", "model");
        gguf.AddString("general.name", modelName);
        gguf.AddUInt32("general.quantization_version", QuantizationVersion);
        gguf.AddUInt32("general.file_type", matrixType == GgmlType.BF16 ? FileTypeMostlyBf16 : FileTypeAllF32);

        gguf.AddUInt32("qwen3.context_length", (uint)shape.MaxPositionEmbeddings);
        gguf.AddUInt32("qwen3.embedding_length", (uint)shape.HiddenSize);
        gguf.AddUInt32("qwen3.block_count", (uint)shape.NumLayers);
        gguf.AddUInt32("qwen3.feed_forward_length", (uint)shape.IntermediateSize);
        gguf.AddUInt32("qwen3.attention.head_count", (uint)shape.NumHeads);
        gguf.AddUInt32("qwen3.attention.head_count_kv", (uint)shape.NumKvHeads);
        gguf.AddFloat32("qwen3.rope.freq_base", (float)shape.RopeTheta);
        gguf.AddFloat32("qwen3.attention.layer_norm_rms_epsilon", (float)shape.RmsNormEps);
        // head_dim is not hidden/heads in Qwen3 (0.6B: 16 x 128 != 1024), so it must be explicit.
        gguf.AddUInt32("qwen3.attention.key_length", (uint)shape.HeadDim);
        gguf.AddUInt32("qwen3.attention.value_length", (uint)shape.HeadDim);

        var vocab = GgufVocabulary.FromTokenizerJson(Path.Combine(tokenizerFolder, "tokenizer.json"), shape.VocabSize);
        gguf.AddString("tokenizer.ggml.model", "gpt2");
        gguf.AddString("tokenizer.ggml.pre", "qwen2");
        gguf.AddStringArray("tokenizer.ggml.tokens", vocab.Tokens);
        gguf.AddInt32Array("tokenizer.ggml.token_type", vocab.TokenTypes);
        gguf.AddStringArray("tokenizer.ggml.merges", vocab.Merges);
        gguf.AddUInt32("tokenizer.ggml.eos_token_id", ImEndId);
        gguf.AddUInt32("tokenizer.ggml.padding_token_id", EndOfTextId);
        gguf.AddUInt32("tokenizer.ggml.bos_token_id", EndOfTextId);
        gguf.AddBool("tokenizer.ggml.add_bos_token", false);
        if (ReadChatTemplate(tokenizerFolder) is { } template)
        {
            gguf.AddString("tokenizer.chat_template", template);
        }

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

    private static string? ReadChatTemplate(string tokenizerFolder)
    {
        string path = Path.Combine(tokenizerFolder, "tokenizer_config.json");
        if (!File.Exists(path))
        {
            return null;
        }
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.TryGetProperty("chat_template", out var template) && template.ValueKind == JsonValueKind.String
            ? template.GetString()
            : null;
    }
}
