using System.Text;
using System.Text.Json;
using Qwen3.Net.Chat;
using Qwen3.Net.Generation.Constraints;

namespace Qwen3.Net.Generation;

/// <summary>What a <see cref="ResponseFormat"/> constrains the output to.</summary>
public enum ResponseFormatKind
{
    /// <summary>Free text: no constraint.</summary>
    Text,

    /// <summary>Any JSON object (OpenAI's <c>{"type": "json_object"}</c>).</summary>
    JsonObject,

    /// <summary>A JSON value that validates against a JSON Schema.</summary>
    JsonSchema,

    /// <summary>One or more tool calls in the Qwen3 template's <c>&lt;tool_call&gt;</c> form, with arguments that validate against the tool's parameters.</summary>
    ToolCalls,
}

/// <summary>
/// The shape generated output must take. A constrained generation masks, at every step, the tokens that would break
/// the shape, so the output always parses and validates (if it is not cut short by the token limit, a stop string or
/// cancellation). See docs/structured-output.md for the supported JSON Schema keywords.
/// </summary>
/// <remarks>
/// Instances are immutable and thread-safe. A schema is compiled when the format is created, so an unusable schema
/// fails before any generation; compiled schemas are cached (a bounded number), so creating the same format again is cheap.
/// </remarks>
public sealed class ResponseFormat
{
    /// <summary>Most compiled schemas kept for reuse, process-wide.</summary>
    private const int CachedAutomata = 64;

    private static readonly BoundedCache<string, Automaton> Automata = new(CachedAutomata);

    private ResponseFormat(ResponseFormatKind kind, string key, Automaton? automaton, JsonElement? schema = null, string? name = null)
    {
        Kind = kind;
        Key = key;
        Automaton = automaton;
        Schema = schema;
        Name = name;
    }

    /// <summary>Free text (no constraint).</summary>
    public static ResponseFormat Text { get; } = new(ResponseFormatKind.Text, "text", null);

    /// <summary>Any JSON object.</summary>
    public static ResponseFormat JsonObject { get; } = new(ResponseFormatKind.JsonObject, "json_object", JsonSchemaCompiler.CompileAnyObject(GrammarLimits.Default, leadingNewlines: true));

    /// <summary>What the output is constrained to.</summary>
    public ResponseFormatKind Kind { get; }

    /// <summary>The JSON Schema, for <see cref="ResponseFormatKind.JsonSchema"/>; null otherwise.</summary>
    public JsonElement? Schema { get; }

    /// <summary>The schema's name as the caller gave it (OpenAI's <c>json_schema.name</c>), or null.</summary>
    public string? Name { get; }

    /// <summary>Identifies the compiled automaton in caches: equal keys mean equal languages.</summary>
    internal string Key { get; }

    /// <summary>The compiled constraint (vocabulary-independent); null for <see cref="Text"/>.</summary>
    internal Automaton? Automaton { get; }

    /// <summary>Output that validates against <paramref name="schema"/>.</summary>
    /// <param name="schema">A JSON Schema document; it is cloned.</param>
    /// <param name="name">An optional name for the schema, kept for the caller.</param>
    /// <exception cref="SchemaException">The schema is invalid, uses an unsupported keyword, accepts nothing, or exceeds the size limits; <see cref="SchemaException.Pointer"/> says where.</exception>
    public static ResponseFormat ForJsonSchema(JsonElement schema, string? name = null)
    {
        JsonSchemaCompiler.ThrowIfNotUtf8(schema);
        string key = "schema:" + schema.GetRawText();
        var automaton = Automata.GetOrAdd(key, () => JsonSchemaCompiler.Compile(schema, GrammarLimits.Default, leadingNewlines: true));
        return new ResponseFormat(ResponseFormatKind.JsonSchema, key, automaton, schema.Clone(), name);
    }

    /// <summary>Output that validates against the JSON Schema <paramref name="schemaJson"/>.</summary>
    /// <param name="schemaJson">The schema as JSON text.</param>
    /// <param name="name">An optional name for the schema, kept for the caller.</param>
    /// <exception cref="SchemaException">The text is not JSON, or the schema cannot be used (see <see cref="ForJsonSchema(JsonElement, string?)"/>).</exception>
    public static ResponseFormat ForJsonSchema(string schemaJson, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(schemaJson);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(schemaJson);
        }
        catch (JsonException e)
        {
            throw new SchemaException("", $"the schema is not valid JSON: {e.Message}");
        }

        using (document)
        {
            return ForJsonSchema(document.RootElement, name);
        }
    }

    /// <summary>
    /// One tool call, or several when <paramref name="parallel"/>, to one of <paramref name="tools"/>, written as the
    /// Qwen3 template renders calls: <c>&lt;tool_call&gt;\n{"name": ..., "arguments": ...}\n&lt;/tool_call&gt;</c>.
    /// </summary>
    /// <param name="tools">The tools that may be called; each needs a name. A tool without <c>parameters</c> takes any JSON object.</param>
    /// <param name="parallel">Whether more than one call may be made.</param>
    /// <exception cref="ArgumentException"><paramref name="tools"/> is empty, or a tool has no name.</exception>
    /// <exception cref="SchemaException">A tool's parameters schema cannot be used; the message names the tool.</exception>
    public static ResponseFormat ForToolCalls(IReadOnlyList<ToolDefinition> tools, bool parallel = true)
    {
        ArgumentNullException.ThrowIfNull(tools);
        if (tools.Count == 0)
        {
            throw new ArgumentException("Forced tool calls need at least one tool.", nameof(tools));
        }

        var entries = new List<(string Name, JsonElement Parameters)>(tools.Count);
        var key = new StringBuilder(parallel ? "tools+:" : "tools:");
        foreach (var tool in tools)
        {
            ArgumentNullException.ThrowIfNull(tool, nameof(tools));
            string name = tool.Name ?? throw new ArgumentException("Every tool that may be called needs a name.", nameof(tools));
            JsonElement function = tool.Json.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object ? f : tool.Json;
            JsonElement parameters = function.TryGetProperty("parameters", out var p) ? p : AnyObjectSchema;
            entries.Add((name, parameters));
            key.Append(JsonSerializer.Serialize(name)).Append(':').Append(parameters.GetRawText()).Append('\n');
        }

        string cacheKey = key.ToString();
        var automaton = Automata.GetOrAdd(cacheKey, () => JsonSchemaCompiler.CompileToolCalls(
            entries, parallel, TokenVocabulary.ToolCallOpenByte, TokenVocabulary.ToolCallCloseByte, GrammarLimits.Default, leadingNewlines: true));
        return new ResponseFormat(ResponseFormatKind.ToolCalls, cacheKey, automaton);
    }

    private static JsonElement AnyObjectSchema { get; } = JsonDocument.Parse("""{"type":"object"}""").RootElement.Clone();
}
