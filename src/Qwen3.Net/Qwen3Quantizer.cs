using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net;

/// <summary>One tensor written by <see cref="Qwen3Quantizer"/>.</summary>
/// <param name="TensorsDone">Tensors written so far, this one included.</param>
/// <param name="TensorCount">Tensors in the file.</param>
/// <param name="TensorName">The tensor's GGUF name, such as <c>blk.0.attn_q.weight</c>.</param>
/// <param name="TensorType">The ggml type it was written in, such as <c>Q4_K</c> or <c>F32</c>.</param>
public readonly record struct QuantizationProgress(int TensorsDone, int TensorCount, string TensorName, string TensorType);

/// <summary>
/// Writes a quantized GGUF file from a Hugging Face Qwen3 model folder, with ggml's block formats, llama.cpp's type mix
/// and its reference quantizers (the bytes <c>llama-quantize</c> writes without an importance matrix), and the tokenizer
/// and chat template in the metadata, so the file loads alone in Qwen3.Net and in llama.cpp.
/// </summary>
public static class Qwen3Quantizer
{
    /// <summary>
    /// Quantizes the model in <paramref name="modelFolder"/> into <paramref name="outputPath"/>. Tensors are read from the
    /// memory map and written one at a time, in chunks of rows, so memory does not grow with the model; the file appears
    /// only when complete.
    /// </summary>
    /// <param name="modelFolder">A Hugging Face Qwen3 folder: config.json, safetensors weights, tokenizer.json (and tokenizer_config.json for the chat template).</param>
    /// <param name="outputPath">The GGUF file to write; an existing file is replaced once the new one is complete.</param>
    /// <param name="type">The file type.</param>
    /// <param name="progress">Told after each tensor; null for none.</param>
    /// <param name="cancellationToken">Stops between blocks of rows; nothing is left at <paramref name="outputPath"/>.</param>
    /// <exception cref="ModelLoadException">The folder does not load as a Qwen3 model, or a weight is NaN or infinite (the message names the tensor).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="type"/> is not a defined value.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    /// <exception cref="IOException">The output cannot be written.</exception>
    public static Task QuantizeAsync(string modelFolder, string outputPath, QuantizationType type,
        IProgress<QuantizationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelFolder);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        if (!Enum.IsDefined(type))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "Not a QuantizationType.");
        }

        return Task.Run(() => Qwen3GgufQuantizer.Quantize(modelFolder, outputPath, type, progress, cancellationToken), cancellationToken);
    }
}
