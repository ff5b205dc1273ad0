using System.Buffers;
using System.Text.Json;

namespace Qwen3.Net.Chat;

/// <summary>
/// A tool offered to the model, held as the JSON object the template writes into the <c>&lt;tools&gt;</c> section,
/// normally <c>{"type": "function", "function": {"name": ..., "description": ..., "parameters": ...}}</c>.
/// </summary>
/// <remarks>The JSON is kept as given so that key order, and therefore the rendered prompt, matches the source.</remarks>
public sealed record ToolDefinition
{
    private ToolDefinition(JsonElement json)
    {
        Json = json;
    }

    /// <summary>The tool's JSON object, exactly as it will be passed to the template.</summary>
    public JsonElement Json { get; }

    /// <summary>The function name (<c>function.name</c>, or a top-level <c>name</c>), or <see langword="null"/> when absent.</summary>
    public string? Name
    {
        get
        {
            if (Json.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object &&
                function.TryGetProperty("name", out var nested) && nested.ValueKind == JsonValueKind.String)
            {
                return nested.GetString();
            }

            return Json.TryGetProperty("name", out var flat) && flat.ValueKind == JsonValueKind.String ? flat.GetString() : null;
        }
    }

    /// <summary>Wraps an existing JSON object describing a tool.</summary>
    /// <param name="json">A JSON object; it is cloned, so the caller may dispose its document.</param>
    /// <exception cref="ArgumentException"><paramref name="json"/> is not a JSON object, or holds text that is not valid UTF-8.</exception>
    public static ToolDefinition FromJsonElement(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException($"A tool definition must be a JSON object, not {json.ValueKind}.", nameof(json));
        }

        JsonUtf8.ThrowIfInvalid(json, nameof(json));
        return new ToolDefinition(json.Clone());
    }

    /// <summary>Parses a tool definition from JSON text.</summary>
    /// <param name="json">A JSON object describing the tool.</param>
    /// <exception cref="JsonException"><paramref name="json"/> is not valid JSON.</exception>
    /// <exception cref="ArgumentException"><paramref name="json"/> is not a JSON object.</exception>
    public static ToolDefinition FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var document = JsonDocument.Parse(json);
        return FromJsonElement(document.RootElement);
    }

    /// <summary>
    /// Builds the OpenAI-style function tool
    /// <c>{"type": "function", "function": {"name": ..., "description": ..., "parameters": ...}}</c>.
    /// </summary>
    /// <param name="name">The function name.</param>
    /// <param name="description">What the function does, for the model.</param>
    /// <param name="parameters">The JSON Schema of the arguments, normally an object schema.</param>
    public static ToolDefinition Function(string name, string description, JsonElement parameters)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(description);
        if (parameters.ValueKind == JsonValueKind.Undefined)
        {
            throw new ArgumentException("Parameters must be a JSON value.", nameof(parameters));
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", "function");
            writer.WriteStartObject("function");
            writer.WriteString("name", name);
            writer.WriteString("description", description);
            writer.WritePropertyName("parameters");
            parameters.WriteTo(writer);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return new ToolDefinition(document.RootElement.Clone());
    }

    /// <inheritdoc/>
    public bool Equals(ToolDefinition? other) => other is not null && JsonElement.DeepEquals(Json, other.Json);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name);
}
