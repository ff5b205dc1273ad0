using System.Buffers;
using System.Text.Json;

namespace Qwen3.Net.Chat;

/// <summary>
/// A function call made by the assistant. The template renders it as
/// <c>&lt;tool_call&gt;{"name": ..., "arguments": ...}&lt;/tool_call&gt;</c>.
/// </summary>
/// <remarks>
/// <see cref="Arguments"/> is usually a JSON object, which the template serializes with <c>tojson</c>.
/// It may also be a JSON string: the Qwen3 template then writes the string's value verbatim, which is how callers pass
/// arguments they already hold as JSON text exactly as the model produced it.
/// </remarks>
public sealed record ToolCall
{
    /// <summary>Creates a tool call.</summary>
    /// <param name="name">The function name.</param>
    /// <param name="arguments">The arguments: a JSON object (serialized by the template) or a JSON string (written as-is).</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty, or <paramref name="arguments"/> is undefined or holds text that is not valid UTF-8.</exception>
    public ToolCall(string name, JsonElement arguments)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (arguments.ValueKind == JsonValueKind.Undefined)
        {
            throw new ArgumentException("Tool call arguments must be a JSON value.", nameof(arguments));
        }

        JsonUtf8.ThrowIfInvalid(arguments, nameof(arguments));

        Name = name;
        // Clone so the element does not depend on a JsonDocument the caller may dispose.
        Arguments = arguments.Clone();
    }

    /// <summary>The function name.</summary>
    public string Name { get; }

    /// <summary>The arguments: a JSON object, or a JSON string holding pre-serialized arguments.</summary>
    public JsonElement Arguments { get; }

    /// <summary>Creates a tool call whose arguments are parsed from JSON text (normally an object).</summary>
    /// <param name="name">The function name.</param>
    /// <param name="argumentsJson">The arguments as JSON text, e.g. <c>{"location": "Paris"}</c>.</param>
    /// <exception cref="JsonException"><paramref name="argumentsJson"/> is not valid JSON.</exception>
    public static ToolCall FromJson(string name, string argumentsJson)
    {
        ArgumentNullException.ThrowIfNull(argumentsJson);
        using var document = JsonDocument.Parse(argumentsJson);
        return new ToolCall(name, document.RootElement);
    }

    /// <summary>
    /// Creates a tool call whose arguments are kept as an opaque string and rendered verbatim, without re-serialization.
    /// </summary>
    /// <param name="name">The function name.</param>
    /// <param name="rawArguments">The arguments text exactly as it should appear in the prompt.</param>
    public static ToolCall FromRawArguments(string name, string rawArguments)
    {
        ArgumentNullException.ThrowIfNull(rawArguments);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStringValue(rawArguments);
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return new ToolCall(name, document.RootElement);
    }

    /// <inheritdoc/>
    public bool Equals(ToolCall? other) =>
        other is not null && Name == other.Name && JsonElement.DeepEquals(Arguments, other.Arguments);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, Arguments.ValueKind);
}
