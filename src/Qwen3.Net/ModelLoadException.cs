namespace Qwen3.Net;

/// <summary>
/// Thrown when model files (weights, configuration or tokenizer files) cannot be read or are inconsistent.
/// </summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="filePath">The file that could not be loaded, when known.</param>
    /// <param name="tensorName">The tensor involved, when the failure concerns one tensor.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public ModelLoadException(string message, string? filePath = null, string? tensorName = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The file that could not be loaded, or <see langword="null"/> when not tied to one file.</summary>
    public string? FilePath { get; }

    /// <summary>The tensor involved, or <see langword="null"/> when the failure does not concern a single tensor.</summary>
    public string? TensorName { get; }
}
