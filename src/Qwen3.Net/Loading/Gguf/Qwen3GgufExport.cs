using System.Runtime.InteropServices;
using System.Text.Json;
using Qwen3.Net.Kernels;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// Writes Qwen3 models as GGUF the way llama.cpp's <c>convert_hf_to_gguf.py</c> does: architecture <c>qwen3</c>, its
/// hyperparameter keys, the full tokenizer and chat template, llama.cpp's tensor names, matrices in their stored type
/// and 1-D norm weights in F32 (the converter keeps those in F32 whatever the output type).
/// </summary>
internal static class Qwen3GgufExport
{
    const uint FileTypeAllF32 = 0;        // llama_ftype LLAMA_FTYPE_ALL_F32
    const uint FileTypeMostlyF16 = 1;     // llama_ftype LLAMA_FTYPE_MOSTLY_F16
    const uint FileTypeMostlyBf16 = 32;   // llama_ftype LLAMA_FTYPE_MOSTLY_BF16
    internal const uint QuantizationVersion = 2;   // GGML_QNT_VERSION, written by the converter unconditionally

    /// <summary>Adds the <c>general.*</c>, <c>qwen3.*</c> and <c>tokenizer.*</c> keys.</summary>
    /// <param name="gguf">The writer.</param>
    /// <param name="config">The hyperparameters.</param>
    /// <param name="tokenizerFolder">Holds <c>tokenizer.json</c> and optionally <c>tokenizer_config.json</c>.</param>
    /// <param name="modelName">Written as <c>general.name</c>.</param>
    /// <param name="matrixType">The type of the matrices, for <c>general.file_type</c>.</param>
    public static void AddMetadata(GgufWriter gguf, Qwen3Config config, string tokenizerFolder, string modelName, GgmlType matrixType)
    {
        gguf.AddString("general.architecture", Qwen3Gguf.Architecture);
        gguf.AddString("general.type", "model");
        gguf.AddString("general.name", modelName);
        gguf.AddUInt32("general.quantization_version", QuantizationVersion);
        gguf.AddUInt32("general.file_type", matrixType switch
        {
            GgmlType.F32 => FileTypeAllF32,
            GgmlType.F16 => FileTypeMostlyF16,
            GgmlType.BF16 => FileTypeMostlyBf16,
            _ => throw new ArgumentOutOfRangeException(nameof(matrixType), matrixType, "Only F32, F16 and BF16 files are written."),
        });

        const string p = Qwen3Gguf.Architecture + ".";
        gguf.AddUInt32(p + "context_length", (uint)config.MaxPositionEmbeddings);
        gguf.AddUInt32(p + "embedding_length", (uint)config.HiddenSize);
        gguf.AddUInt32(p + "block_count", (uint)config.NumHiddenLayers);
        gguf.AddUInt32(p + "feed_forward_length", (uint)config.IntermediateSize);
        gguf.AddUInt32(p + "attention.head_count", (uint)config.NumAttentionHeads);
        gguf.AddUInt32(p + "attention.head_count_kv", (uint)config.NumKeyValueHeads);
        gguf.AddFloat32(p + "rope.freq_base", (float)config.RopeTheta);
        gguf.AddFloat32(p + "attention.layer_norm_rms_epsilon", (float)config.RmsNormEps);
        // head_dim is not hidden/heads in Qwen3 (0.6B: 16 x 128 != 1024), so it must be explicit.
        gguf.AddUInt32(p + "attention.key_length", (uint)config.HeadDim);
        gguf.AddUInt32(p + "attention.value_length", (uint)config.HeadDim);
        if (config.RopeScaling is { } scaling)
        {
            gguf.AddString(p + "rope.scaling.type", scaling.RopeType);
            gguf.AddFloat32(p + "rope.scaling.factor", (float)scaling.Factor);
            gguf.AddUInt32(p + "rope.scaling.original_context_length", (uint)scaling.OriginalMaxPositionEmbeddings);
        }

        var tokenizer = Qwen3Tokenizer.FromFile(Path.Combine(tokenizerFolder, "tokenizer.json"));
        var vocab = GgufVocabulary.FromTokenizerJson(Path.Combine(tokenizerFolder, "tokenizer.json"), config.VocabSize);
        gguf.AddString("tokenizer.ggml.model", "gpt2");
        gguf.AddString("tokenizer.ggml.pre", "qwen2");
        gguf.AddStringArray("tokenizer.ggml.tokens", vocab.Tokens);
        gguf.AddInt32Array("tokenizer.ggml.token_type", vocab.TokenTypes);
        gguf.AddStringArray("tokenizer.ggml.merges", vocab.Merges);
        gguf.AddUInt32("tokenizer.ggml.eos_token_id", (uint)tokenizer.ImEndId);
        gguf.AddUInt32("tokenizer.ggml.padding_token_id", (uint)tokenizer.EndOfTextId);
        gguf.AddUInt32("tokenizer.ggml.bos_token_id", (uint)tokenizer.EndOfTextId);
        gguf.AddBool("tokenizer.ggml.add_bos_token", false);
        if (ReadChatTemplate(tokenizerFolder) is { } template)
        {
            gguf.AddString(Qwen3Gguf.ChatTemplateKey, template);
        }
    }

    /// <summary>
    /// Converts a Hugging Face model folder into one GGUF file. Matrices keep their stored type unless
    /// <paramref name="widenToF32"/> (which lets llama.cpp compute without rounding activations to BF16).
    /// </summary>
    /// <param name="folder">The Hugging Face model folder.</param>
    /// <param name="outputPath">The GGUF file to write.</param>
    /// <param name="modelName">Written as <c>general.name</c>.</param>
    /// <param name="widenToF32">Write every tensor as F32.</param>
    /// <param name="edit">Changes the file before it is written (tests derive malformed files this way); null for none.</param>
    /// <exception cref="ModelLoadException">The folder does not load as a Qwen3 model.</exception>
    public static unsafe void ConvertFolder(string folder, string outputPath, string modelName, bool widenToF32 = false, Action<GgufWriter>? edit = null)
    {
        Qwen3Config config = Qwen3Config.Load(folder);
        using TensorStore store = TensorStore.Open(folder);
        _ = Model.Qwen3Weights.Bind(store, config);

        var tensors = store.TensorNames.Order(StringComparer.Ordinal).Select(store.Get).ToList();
        TensorDType[] types = tensors.Select(t => t.DType).Distinct().ToArray();
        GgmlType fileType = widenToF32 ? GgmlType.F32 : types.Length == 1 ? ToGgml(types[0]) : GgmlType.BF16;

        var gguf = new GgufWriter();
        AddMetadata(gguf, config, folder, modelName, fileType);
        foreach (TensorView t in tensors)
        {
            long[] dims = t.Shape.Reverse().Select(d => (long)d).ToArray();
            string name = GgufTensorNames.ToGguf(t.Name);
            if (widenToF32 || t.Shape.Length == 1)
            {
                TensorView view = t;
                gguf.AddTensor(name, dims, GgmlType.F32, t.ElementCount * sizeof(float), stream => WriteWidened(stream, view));
            }
            else
            {
                nint data = (nint)t.Data;
                long length = t.ByteLength;
                gguf.AddTensor(name, dims, ToGgml(t.DType), length, stream => WriteBytes(stream, (byte*)data, length));
            }
        }

        edit?.Invoke(gguf);
        gguf.WriteTo(outputPath);
    }

    static GgmlType ToGgml(TensorDType type) => type switch
    {
        TensorDType.F32 => GgmlType.F32,
        TensorDType.F16 => GgmlType.F16,
        TensorDType.BF16 => GgmlType.BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    static unsafe void WriteBytes(Stream stream, byte* data, long length)
    {
        for (long done = 0; done < length;)
        {
            int chunk = (int)Math.Min(length - done, 1 << 24);
            stream.Write(new ReadOnlySpan<byte>(data + done, chunk));
            done += chunk;
        }
    }

    /// <summary>Writes a tensor widened to float32, row by row.</summary>
    public static void WriteWidened(Stream stream, in TensorView view)
    {
        var matrix = WeightMatrix.From(view);
        var row = new float[matrix.Columns];
        for (int r = 0; r < matrix.Rows; r++)
        {
            matrix.ReadRow(r, row);
            stream.Write(MemoryMarshal.AsBytes(row.AsSpan()));
        }
    }

    static string? ReadChatTemplate(string tokenizerFolder)
    {
        string path = Path.Combine(tokenizerFolder, "tokenizer_config.json");
        if (!File.Exists(path))
        {
            return null;
        }

        // Parsing it as a template first rejects a file the loader would reject.
        return Chat.ChatTemplate.FromTokenizerConfig(path).Source;
    }
}
