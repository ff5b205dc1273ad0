namespace Qwen3.Net;

/// <summary>
/// The model folder or one of its files is missing, malformed or inconsistent
/// (config.json, generation_config.json, safetensors files and their index, tokenizer files).
/// The message names the file and, where one is at fault, the tensor.
/// </summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the file and tensor.</param>
    /// <param name="filePath">The file at fault, if any.</param>
    /// <param name="tensorName">The tensor at fault, if any.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public ModelLoadException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file at fault, or null when the problem is not tied to one file.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor at fault, or null when the problem is not tied to one tensor.</summary>
    public string? TensorName { get; }
}
