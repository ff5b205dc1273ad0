namespace Qwen3.Net.Generation.Constraints;

/// <summary>A JSON Schema cannot be used to constrain generation: it is invalid, uses an unsupported keyword, accepts nothing, or is too large.</summary>
public sealed class SchemaException : Exception
{
    /// <summary>Creates the exception for the schema location <paramref name="pointer"/>.</summary>
    /// <param name="pointer">JSON pointer of the offending keyword or subschema (empty for the root).</param>
    /// <param name="message">What is wrong there.</param>
    public SchemaException(string pointer, string message)
        : base($"Schema at '{(pointer.Length == 0 ? "#" : "#" + pointer)}': {message}")
    {
        Pointer = pointer;
    }

    private SchemaException(string pointer, string message, Exception inner)
        : base(message, inner)
    {
        Pointer = pointer;
    }

    /// <summary>JSON pointer (RFC 6901, without the leading <c>#</c>) of the keyword or subschema the error is about.</summary>
    public string Pointer { get; }

    /// <summary>The same error, its message prefixed with where the schema came from (a tool's parameters).</summary>
    internal SchemaException InContext(string context) => new(Pointer, $"In {context}: {Message}", this);
}
